use std::process::ExitCode;

use clap::Parser;

// candle allocates a fresh buffer for every tensor op; glibc hands large ones back to the kernel
// and faults them in again each step (a sixth of a training step's time). mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its `mimalloc.h`, v2.3, which libmimalloc-sys 0.1.49
/// builds; the crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    let cli = retort::cli::Cli::parse();
    // candle sizes its CPU work by RAYON_NUM_THREADS on every op; unset, each op reads
    // /proc and cgroup files to count the cores, which cost the trainer a third of its time.
    // It is set here, before the runtime or any other thread exists.
    let threads = retort::cli::threads_wanted(&cli)
        .or_else(|| std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    // SAFETY: no other thread exists yet, so nothing can read the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    // mimalloc still returns freed memory to the kernel 10 ms after it is freed, and a training
    // step frees and reallocates the same large buffers (logits, activations) all the time: the
    // kernel then zero-fills every page again, a quarter of a CPU step on Qwen2-0.5B's shape
    // (5.5 -> 3.9 s a step at the same peak memory). Freed memory stays with the process.
    // SAFETY: sets an integer option of the allocator, which it reads atomically.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(retort::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`retort list | head`): nothing is wrong, and nothing to say.
        Err(e) if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            // An error may quote stored text (a rule's name, a server's answer): shown, not obeyed.
            eprintln!("error: {}", retort::tui::text::terminal_safe(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}
