// A new migration must never be silently left out of the binary that embeds them; and with the
// `cuda` feature, retort's own kernels (src/train/kernels.cu) become PTX for the binary to load.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        cuda_kernels();
    }
}

/// `nvcc -ptx` for the compute capability in CUDA_COMPUTE_CAP (default 90), as candle's
/// kernels are built (scripts/build-cuda.sh sets up nvcc).
fn cuda_kernels() {
    println!("cargo:rerun-if-changed=src/train/kernels.cu");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo:rerun-if-env-changed=NVCC");
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".to_owned());
    let cap: String = cap.chars().filter(char::is_ascii_digit).collect();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("retort_kernels.ptx");
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".to_owned());
    let status = std::process::Command::new(&nvcc)
        .args(["-ptx", "-O3", "-std=c++17", &format!("--gpu-architecture=compute_{cap}"), "-o"])
        .arg(&out)
        .arg("src/train/kernels.cu")
        .status()
        .unwrap_or_else(|e| panic!("cannot run {nvcc} for src/train/kernels.cu ({e}); build the cuda feature with scripts/build-cuda.sh"));
    assert!(status.success(), "{nvcc} failed on src/train/kernels.cu");
}
