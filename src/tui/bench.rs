//! `retort bench tui`: the headless App over a generated store of N samples, timed.
//!
//! "Frame" times are what a key costs before its frame is on screen (update + draw); "settled"
//! adds the background reads it set off (the next page, the sample's detail), which the real UI
//! shows when they arrive without holding a frame.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::Headless;
use super::action::Action;
use crate::ops::bench::peak_rss_mib;
use crate::ops::bench_rules::{fresh, generate};

#[derive(Debug, clap::Args)]
pub struct TuiBenchArgs {
    /// Samples in the generated store.
    #[arg(long, default_value_t = 1_000_000)]
    pub samples: u64,
    /// Where to put the store (default: a temporary directory, removed after).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(what: &str, mut frame: Vec<Duration>, mut settled: Vec<Duration>) {
    frame.sort();
    settled.sort();
    println!(
        "{what:<34} frame p50 {:>6.2} ms  p99 {:>6.2} ms   settled p50 {:>6.2} ms  p99 {:>6.2} ms   ({} keys)",
        percentile(&frame, 0.5),
        percentile(&frame, 0.99),
        percentile(&settled, 0.5),
        percentile(&settled, 0.99),
        frame.len()
    );
}

async fn keys(h: &mut Headless, action: Action, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (mut frame, mut settled) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        let effects = h.app.update(action);
        let _ = h.render();
        frame.push(t.elapsed());
        h.settle(effects).await;
        settled.push(t.elapsed());
    }
    (frame, settled)
}

pub async fn tui_bench(args: &TuiBenchArgs) -> anyhow::Result<()> {
    let temp = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("retort-bench-tui-{}", std::process::id())));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("tui.db");
    let store = fresh(&path).await?;
    let t = Instant::now();
    generate(&store, args.samples).await?;
    // One long trace (100 KB of reasoning), to scroll through.
    crate::store::synthetic::long_trace(&store, 2).await?;
    store.checkpoint().await;
    store.close().await;
    println!("generated {} samples in {:.1}s\n", args.samples, t.elapsed().as_secs_f64());

    // A fresh process's view: open, first frame (before any data), first frame with data.
    let t = Instant::now();
    let store = crate::store::Store::open(&path).await?;
    let keymap = super::keymap::KeyMap::load(None).map_err(|e| anyhow::anyhow!(e))?;
    let app = super::app::App::new(keymap, (160, 48));
    let empty = Headless::from_app(app, store.clone());
    let _ = empty.render();
    let first_frame = t.elapsed();
    let mut h = Headless::new(store, (160, 48)).await?;
    let _ = h.render();
    let with_data = t.elapsed();
    println!(
        "first frame {:.1} ms (before the first query returns); first frame with samples {:.1} ms",
        first_frame.as_secs_f64() * 1000.0,
        with_data.as_secs_f64() * 1000.0
    );

    let (f, s) = keys(&mut h, Action::SelectNext, 2000).await;
    report("navigation (j, 2000 samples)", f, s);
    let (f, s) = keys(&mut h, Action::PageDown, 300).await;
    report("page down (300 pages)", f, s);
    let t = Instant::now();
    h.act(Action::SelectLast).await;
    println!("{:<34} {:>8.2} ms", "jump to the last sample (G)", t.elapsed().as_secs_f64() * 1000.0);
    let (f, s) = keys(&mut h, Action::Accept, 300).await;
    report("accept (300 samples)", f, s);
    h.act(Action::SelectFirst).await;
    h.act(Action::SelectNext).await; // sample 2: the 100 KB trace
    let (f, s) = keys(&mut h, Action::ScrollDetailDown, 500).await;
    report("scroll a 100 KB trace (500 keys)", f, s);

    // Sorted by tokens: no index orders them, so each page is a scan of the store.
    let t = Instant::now();
    h.act(Action::SelectFirst).await;
    h.act(Action::Sort).await;
    println!("{:<34} {:>8.0} ms", "sort by tokens (first page)", t.elapsed().as_secs_f64() * 1000.0);
    let (f, s) = keys(&mut h, Action::PageDown, 20).await;
    report("page down, sorted by tokens", f, s);
    h.act(Action::Sort).await;
    h.act(Action::Sort).await;
    h.act(Action::Sort).await;
    h.act(Action::Sort).await;
    h.act(Action::Sort).await;
    h.act(Action::Sort).await; // back to id order

    // Fuzzy search over every prompt preview.
    let engine = super::search::SearchEngine::default();
    let t = Instant::now();
    let first = std::sync::Mutex::new(None);
    let hits = engine
        .search(&h.store, 1, "problem 4242 find".into(), &|hits, scanned, total| {
            if let Ok(mut f) = first.lock() {
                f.get_or_insert((t.elapsed(), hits.len(), scanned, total));
            }
        })
        .await?
        .unwrap_or_default();
    let full = t.elapsed();
    if let Ok(Some((at, n, scanned, total))) = first.lock().map(|f| *f) {
        println!(
            "fuzzy search: first {n} results after {:.0} ms ({scanned}/{total} read, corpus load included)",
            at.as_secs_f64() * 1000.0
        );
    }
    println!("fuzzy search: full ranking {:.0} ms, {} hits kept", full.as_secs_f64() * 1000.0, hits.len());
    let t = Instant::now();
    let first = std::sync::Mutex::new(None);
    let again = engine
        .search(&h.store, 2, "problem 12345".into(), &|hits, _, _| {
            if let Ok(mut f) = first.lock() {
                f.get_or_insert((t.elapsed(), hits.len()));
            }
        })
        .await?
        .unwrap_or_default();
    if let Ok(Some((at, n))) = first.lock().map(|f| *f) {
        println!("fuzzy search again, corpus in memory: first {n} results after {:.0} ms", at.as_secs_f64() * 1000.0);
    }
    println!("fuzzy search again: {} hits", again.len());
    println!("fuzzy search again: full ranking {:.0} ms", t.elapsed().as_secs_f64() * 1000.0);

    // A filter: the first page and the count of what matches.
    let t = Instant::now();
    h.act(Action::Filter).await;
    let mut typed: Vec<_> = "score.math >= 0.9 and tokens < 2000"
        .chars()
        .map(|c| {
            ratatui::crossterm::event::KeyEvent::new(
                ratatui::crossterm::event::KeyCode::Char(c),
                ratatui::crossterm::event::KeyModifiers::NONE,
            )
        })
        .collect();
    typed.push(ratatui::crossterm::event::KeyEvent::new(
        ratatui::crossterm::event::KeyCode::Enter,
        ratatui::crossterm::event::KeyModifiers::NONE,
    ));
    h.type_keys(&typed).await;
    println!(
        "filter applied (first page and match count): {:.0} ms, {} matching",
        t.elapsed().as_secs_f64() * 1000.0,
        h.app.counts.matching
    );
    println!("\npeak RSS {}", peak_rss_mib().map_or_else(|| "-".into(), |m| format!("{m:.0} MiB")));
    h.store.clone().close().await;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
