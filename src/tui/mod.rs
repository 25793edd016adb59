//! The review TUI (DESIGN.md §The TUI), built as STYLE.md describes: keys map to actions,
//! `App::update` turns actions into effects, effects run as background tasks that answer with
//! messages, and the view is a pure function of the state, drawn at most once per 16 ms.

pub mod action;
pub mod app;
pub mod bench;
pub mod bench_concurrent;
pub use crate::store::browse as data;
pub mod export_tab;
pub mod group;
pub mod keymap;
pub mod outside;
pub mod palette;
pub mod pane;
pub mod search;
pub mod text;
pub mod train_tab;
pub mod views;

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyEventKind};
use tokio::sync::mpsc;

use app::{App, Effect, Msg};
use keymap::KeyMap;

use crate::ops;
use crate::store::Store;

/// Runs one effect against the store and returns its answer; `partial` receives answers that
/// come before it (a search's first results).
pub async fn run_effect(store: &Store, engine: &search::SearchEngine, effect: Effect, partial: &(dyn Fn(Msg) + Sync)) -> Msg {
    let changes = effect.changes();
    let result: Result<Msg, String> = async {
        let e = |e: crate::store::StoreError| e.to_string();
        Ok(match effect {
            Effect::LoadPage { from, generation, filter, sort } => {
                Msg::Page { from, generation, rows: data::page(store, from, app::PAGE, &filter, sort).await.map_err(e)? }
            }
            Effect::LoadDetail { id, generation, tokens } => {
                Msg::Detail { generation, detail: data::detail(store, id, tokens).await.map_err(e)?.map(Box::new) }
            }
            Effect::LoadGroup { prompt_id } => Msg::Group { prompt_id, samples: data::group(store, prompt_id).await.map_err(e)? },
            Effect::LoadPosition { id, generation, filter, sort } => {
                Msg::Position { generation, id, position: data::position(store, id, &filter, sort).await.map_err(e)? }
            }
            Effect::EditText { id, reference, text } => {
                let field = if reference { ops::edit::EditField::Reference } else { ops::edit::EditField::Answer };
                let edited = ops::edit::edit_text(store, id, field, &text).await.map_err(|e| e.to_string())?;
                let what = if reference { "reference" } else { "answer" };
                let message = if edited.is_some() {
                    format!("#{id}: the edited {what} is its hard label (u undoes)")
                } else {
                    format!("#{id}: the {what} is unchanged")
                };
                // A reference belongs to the prompt: every row of it is read again.
                Msg::Changed { ids: Vec::new(), message, moves: edited.map(|d| d.moves).unwrap_or_default() }
            }
            Effect::Pick { keep, siblings } => {
                let moves = ops::decide::pick(store, keep, &siblings).await.map_err(e)?.map(|d| d.moves).unwrap_or_default();
                let mut ids = siblings;
                ids.push(keep);
                let message = format!(
                    "picked #{keep}: accepted, {} sibling{} rejected (u undoes)",
                    ids.len() - 1,
                    if ids.len() == 2 { "" } else { "s" }
                );
                Msg::Changed { ids, message, moves }
            }
            Effect::LoadCounts(filter) => Msg::Counts(data::counts(store, &filter).await.map_err(e)?),
            Effect::PreviewExport(opts) => {
                Msg::ExportPreview(ops::export::export(store, &opts, true, &|_, _| {}).await.map_err(|e| e.to_string()))
            }
            Effect::RunExport(opts) => {
                let report = |done, total| partial(Msg::ExportProgress(done, total));
                Msg::ExportDone(ops::export::export(store, &opts, false, &report).await.map_err(|e| e.to_string()))
            }
            Effect::LoadExports => Msg::Exports(data::past_exports(store).await.map_err(e)?),
            Effect::LoadCharts => Msg::Charts(Box::new(data::charts(store).await.map_err(e)?)),
            Effect::LoadStats => Msg::Stats(Box::new(ops::stats::stats(store).await.map_err(e)?)),
            Effect::LoadRules => Msg::Rules(crate::store::rules::saved(store).await.map_err(e)?),
            Effect::Search { generation, query } => {
                let report = |hits, scanned, total| partial(Msg::Search { generation, hits, scanned, total, done: false });
                match engine.search(store, generation, query, &report).await.map_err(e)? {
                    Some(hits) => Msg::Search { generation, hits, scanned: 0, total: 0, done: true },
                    // A newer query took over: nothing to say.
                    None => Msg::Search { generation, hits: Vec::new(), scanned: 0, total: 0, done: false },
                }
            }
            Effect::DryRunRule { name, source } => {
                let count = match named_rule(&name, &source) {
                    Ok(rule) => ops::rules::dry_run(store, &rule, &ops::rules::RunOptions::default())
                        .await
                        .map(|r| r.changed)
                        .map_err(|e| first_line(&e.to_string())),
                    Err(e) => Err(e),
                };
                Msg::RuleCount { name, source, count }
            }
            Effect::CountRules(saved) => {
                let counts =
                    ops::rules::dry_run_saved(store, &saved, &ops::rules::RunOptions::default()).await.map_err(|e| e.to_string())?;
                Msg::RuleCounts(
                    saved
                        .iter()
                        .zip(counts)
                        .map(|(s, c)| app::RuleRow {
                            name: s.name.clone(),
                            source: s.source.clone(),
                            overturns: c
                                .outcome
                                .as_ref()
                                .map(|r| r.overturns.iter().map(|o| o.describe(&s.name)).collect())
                                .unwrap_or_default(),
                            count: Some(c.outcome.map(|r| r.changed).map_err(|e| first_line(&e))),
                        })
                        .collect(),
                )
            }
            Effect::LoadVerifiers => Msg::Verifiers(ops::rules::verifier_names(store).await.map_err(e)?),
            Effect::LoadStamp => Msg::Stamp(data::stamp(store).await.map_err(e)?),
            Effect::Recount { decided, filter } => Msg::Recounted { decided, counts: data::counts(store, &filter).await.map_err(e)? },
            Effect::ApplyRule { name, source } => {
                let rule = named_rule(&name, &source)?;
                let report = ops::rules::apply(store, &rule, &ops::rules::RunOptions::default()).await.map_err(|e| e.to_string())?;
                Msg::Changed {
                    ids: Vec::new(),
                    message: format!("{name}: {} samples changed (u undoes)", report.changed),
                    moves: report.moves,
                }
            }
            Effect::SaveRule { name, source } => {
                let rule = named_rule(&name, &source)?;
                ops::rules::save(store, &name, &rule).await.map_err(e)?;
                Msg::Rules(crate::store::rules::saved(store).await.map_err(e)?)
            }
            Effect::SetStatus { ids, status } => {
                let n = ids.len();
                let moves = ops::decide::set_status(store, &ids, status).await.map_err(e)?.map(|d| d.moves).unwrap_or_default();
                Msg::Changed { ids, message: format!("{status} {n} sample{}", if n == 1 { "" } else { "s" }), moves }
            }
            Effect::SetLabel { ids, label } => {
                let n = ids.len();
                let moves = ops::decide::set_label(store, &ids, label).await.map_err(e)?.map(|d| d.moves).unwrap_or_default();
                Msg::Changed { ids, message: format!("labelled {n} sample{} {label}", if n == 1 { "" } else { "s" }), moves }
            }
            Effect::SetNote { id, text } => {
                ops::decide::set_note(store, id, &text).await.map_err(e)?;
                let message = if text.is_empty() { "note removed".into() } else { "note saved".into() };
                Msg::Changed { ids: vec![id], message, moves: Vec::new() }
            }
            Effect::Undo => {
                let undone = ops::undo::undo(store, &ops::undo::UndoTarget::Last(1)).await.map_err(e)?;
                let message = undone.first().map_or_else(
                    || "nothing to undo".to_owned(),
                    |u| format!("undid {} ({}, {} samples)", u.description, u.actor, u.reverted),
                );
                let moves = undone.into_iter().flat_map(|u| u.moves).collect();
                Msg::Changed { ids: Vec::new(), message, moves }
            }
            Effect::Redo => {
                let redone = ops::undo::redo(store).await.map_err(e)?;
                let message = redone
                    .as_ref()
                    .map_or_else(|| "nothing to redo".to_owned(), |u| format!("redid {} ({} samples)", u.description, u.reverted));
                let moves = redone.map(|u| u.moves).unwrap_or_default();
                Msg::Changed { ids: Vec::new(), message, moves }
            }
            Effect::RunTrain(opts, cancel) => {
                let report = |e: &crate::train::run::Event| partial(Msg::TrainEvent(e.clone()));
                Msg::TrainDone(ops::train::run(store, *opts, None, cancel.0, &report).await.map_err(|e| format!("{e:#}")))
            }
            Effect::LoadRuns => Msg::Runs(data::past_runs(store).await.map_err(e)?),
            Effect::LoadRunCurves(id) => Msg::RunCurves(Box::new(data::run_curves(store, id).await.map_err(e)?)),
            Effect::StudentAnswers(opts) => Msg::Answers(
                tokio::task::spawn_blocking(move || crate::train::sample::validation_answers(&opts, 3))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string()),
            ),
            Effect::LoadGenerations => Msg::Generations(ops::generate::running(store).await.map_err(e)?),
            Effect::Refresh(ids) => Msg::Rows(data::rows(store, &ids).await.map_err(e)?),
        })
    }
    .await;
    // A decision that failed is answered as one: the screen reads the store again.
    result.unwrap_or_else(|e| if changes { Msg::Failed(e) } else { Msg::Error(e) })
}

/// An error's first line: a rule's error goes on to quote the rule and point at the column.
fn first_line(e: &str) -> String {
    e.lines().next().unwrap_or_default().to_owned()
}

/// A saved rule parsed again under its name.
fn named_rule(name: &str, source: &str) -> Result<crate::rules::Rule, String> {
    let mut rule = crate::rules::parse_rule(source).map_err(|e| format!("rule {name}: {e}"))?;
    rule.name = Some(name.to_owned());
    Ok(rule)
}

/// Where terminal events and task answers meet.
pub enum Input {
    /// A key pressed.
    Key(event::KeyEvent),
    /// A click or a turn of the wheel.
    Mouse(event::MouseEvent),
    /// The terminal's new size.
    Resize(u16, u16),
    /// A background task's answer.
    Msg(Msg),
}

/// Runs effects off the UI thread. Reads each go to a task of their own and answer when they
/// are done (stale answers are dropped by their generation). Decisions go to one writer that
/// runs them one at a time in the order they were made: a key's write queued behind a busy store
/// can no longer finish after the next key's, and reverse it.
pub struct Runner {
    store: Store,
    engine: std::sync::Arc<search::SearchEngine>,
    answers: mpsc::UnboundedSender<Input>,
    decisions: mpsc::UnboundedSender<Effect>,
}

impl Runner {
    /// A runner whose answers go to `answers`; starts the writer.
    #[must_use]
    pub fn new(store: Store, engine: std::sync::Arc<search::SearchEngine>, answers: mpsc::UnboundedSender<Input>) -> Self {
        let (decisions, mut queue) = mpsc::unbounded_channel::<Effect>();
        {
            let (store, engine, answers) = (store.clone(), std::sync::Arc::clone(&engine), answers.clone());
            // The curator's writes get the lock the moment another writer (an import) lets go
            // of it; the rows and counts read again behind them wait as any reader does.
            let writer = store.eager().unwrap_or_else(|_| store.clone());
            let mut folded = std::time::Instant::now();
            tokio::spawn(async move {
                while let Some(effect) = queue.recv().await {
                    let early = answers.clone();
                    let partial = move |m: Msg| {
                        let _ = early.send(Input::Msg(m));
                    };
                    let reads = matches!(effect, Effect::Refresh(_) | Effect::LoadCounts(_));
                    let msg = run_effect(if reads { &store } else { &writer }, &engine, effect, &partial).await;
                    // The writer leaves the log to grow; it is folded back off the keys' path.
                    if !reads && folded.elapsed() >= FOLD_EVERY {
                        folded = std::time::Instant::now();
                        let store = store.clone();
                        tokio::spawn(async move { store.checkpoint().await });
                    }
                    if answers.send(Input::Msg(msg)).is_err() {
                        break;
                    }
                }
            });
        }
        Self { store, engine, answers, decisions }
    }

    pub fn run(&self, effects: Vec<Effect>) {
        for effect in effects {
            if effect.ordered() {
                let _ = self.decisions.send(effect);
                continue;
            }
            let (store, tx, engine) = (self.store.clone(), self.answers.clone(), std::sync::Arc::clone(&self.engine));
            tokio::spawn(async move {
                let early = tx.clone();
                let partial = move |m: Msg| {
                    let _ = early.send(Input::Msg(m));
                };
                let _ = tx.send(Input::Msg(run_effect(&store, &engine, effect, &partial).await));
            });
        }
    }
}

/// How often the TUI folds the write-ahead log its decisions wrote back into the store.
const FOLD_EVERY: Duration = Duration::from_secs(2);

/// Restores the terminal on panic before the message prints.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Gives the terminal back as it was: the mouse released, the screen and modes restored.
fn restore() {
    let _ = ratatui::crossterm::execute!(std::io::stdout(), ratatui::crossterm::event::DisableMouseCapture);
    ratatui::restore();
}

/// Takes the terminal: raw mode, the alternate screen, and the mouse when `mouse`.
fn take_terminal(mouse: bool) -> ratatui::DefaultTerminal {
    let terminal = ratatui::init();
    if mouse {
        let _ = ratatui::crossterm::execute!(std::io::stdout(), ratatui::crossterm::event::EnableMouseCapture);
    }
    terminal
}

/// Opens the TUI on the store until the curator quits.
pub async fn run(store: Store, keymap: KeyMap) -> anyhow::Result<()> {
    install_panic_hook();
    let mut terminal = take_terminal(true);
    let result = event_loop(&mut terminal, store, keymap).await;
    restore();
    result
}

/// Lets the terminal-event thread stop reading while a pager or an editor has the terminal:
/// a key meant for them must not be read by the TUI.
#[derive(Default)]
struct Gate {
    paused: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Gate {
    /// Blocks while paused; `parked` hears once when the thread stops.
    fn wait_open(&self, parked: &std::sync::mpsc::Sender<()>) {
        let Ok(mut paused) = self.paused.lock() else { return };
        if *paused {
            let _ = parked.send(());
        }
        while *paused {
            match self.changed.wait(paused) {
                Ok(p) => paused = p,
                Err(_) => return,
            }
        }
    }

    fn set(&self, paused: bool) {
        if let Ok(mut p) = self.paused.lock() {
            *p = paused;
        }
        self.changed.notify_all();
    }
}

/// Carries out what the App asked of the terminal: a copy, the mouse, a pager or an editor
/// (for which the TUI steps aside and comes back). Returns effects to run (an edit to save).
fn outside(terminal: &mut ratatui::DefaultTerminal, app: &mut App, gate: &Gate, parked: &std::sync::mpsc::Receiver<()>) -> Vec<Effect> {
    use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
    let mut effects = Vec::new();
    for request in std::mem::take(&mut app.outside) {
        match request {
            app::Outside::Clipboard { what, text } => {
                if let Err(e) = outside::copy(&text) {
                    app.message = Some(format!("could not copy {what}: {e}"));
                }
            }
            app::Outside::Mouse(on) => {
                let _ = if on {
                    ratatui::crossterm::execute!(std::io::stdout(), EnableMouseCapture)
                } else {
                    ratatui::crossterm::execute!(std::io::stdout(), DisableMouseCapture)
                };
            }
            app::Outside::Pager(text) => {
                let result = aside(terminal, app.mouse, gate, parked, || outside::page(&text));
                if let Err(e) = result {
                    app.message = Some(text::terminal_safe(&format!("{e:#}")).into_owned());
                }
            }
            app::Outside::Editor { id, reference, text } => {
                let suffix = format!("-{id}-{}.md", if reference { "reference" } else { "answer" });
                match aside(terminal, app.mouse, gate, parked, || Ok(crate::ops::edit::edit_in_editor(&text, &suffix)?)) {
                    Ok(Some(edited)) if edited != text => effects.push(Effect::EditText { id, reference, text: edited }),
                    Ok(_) => app.message = Some("no change: nothing saved".into()),
                    Err(e) => app.message = Some(text::terminal_safe(&format!("{e:#}")).into_owned()),
                }
            }
        }
    }
    effects
}

/// Runs `work` with the terminal given back (the event thread parked), then takes it again.
fn aside<T>(
    terminal: &mut ratatui::DefaultTerminal,
    mouse: bool,
    gate: &Gate,
    parked: &std::sync::mpsc::Receiver<()>,
    work: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    gate.set(true);
    // The thread polls every 50 ms; wait until it has stopped reading.
    let _ = parked.recv_timeout(Duration::from_millis(500));
    restore();
    let result = work();
    *terminal = take_terminal(mouse);
    let _ = terminal.clear();
    gate.set(false);
    result
}

async fn event_loop(terminal: &mut ratatui::DefaultTerminal, store: Store, keymap: KeyMap) -> anyhow::Result<()> {
    let size = terminal.size()?;
    let mut app = App::new(keymap, (size.width, size.height));
    let theme = views::Theme::from_env();
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    // Terminal events on their own thread: reading them never blocks a frame. It stops
    // reading while a pager or an editor has the terminal.
    let keys = tx.clone();
    let gate = std::sync::Arc::new(Gate::default());
    let (parked_tx, parked) = std::sync::mpsc::channel();
    {
        let gate = std::sync::Arc::clone(&gate);
        std::thread::spawn(move || {
            loop {
                gate.wait_open(&parked_tx);
                match event::poll(Duration::from_millis(50)) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(_) => break,
                }
                let input = match event::read() {
                    Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => Input::Key(k),
                    Ok(Event::Mouse(m)) => Input::Mouse(m),
                    Ok(Event::Resize(w, h)) => Input::Resize(w, h),
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if keys.send(input).is_err() {
                    break;
                }
            }
        });
    }
    let engine = std::sync::Arc::new(search::SearchEngine::default());
    let runner = Runner::new(store.clone(), std::sync::Arc::clone(&engine), tx.clone());
    // Samples left out of the full-text index (`import --index later`, a background indexer
    // that was killed) are indexed now, in the background: short transactions that a key's
    // write goes before, and nothing written when the index is complete. Stopped with the TUI,
    // it resumes from its watermark next time.
    {
        let store = store.clone();
        tokio::spawn(async move {
            let _ = crate::store::fts::catch_up(&store, |_| {}).await;
        });
    }
    let spawn = |app: &mut App, effects: Vec<Effect>| {
        app.sent(&effects);
        runner.run(effects);
    };
    // A generation running in another terminal shows on the status line as it goes.
    {
        let (store, tx) = (store.clone(), tx.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(2));
            loop {
                every.tick().await;
                // A failed poll says nothing: the status line just keeps what it showed.
                if let Ok(runs) = ops::generate::running(&store).await
                    && tx.send(Input::Msg(Msg::Generations(runs))).is_err()
                {
                    break;
                }
                if let Ok(stamp) = data::stamp(&store).await
                    && tx.send(Input::Msg(Msg::Stamp(stamp))).is_err()
                {
                    break;
                }
            }
        });
    }
    // Paint the first frame before the first query returns.
    terminal.draw(|f| views::draw(f, &app, theme))?;
    let first = app.start();
    spawn(&mut app, first);
    {
        let (store, engine) = (store.clone(), std::sync::Arc::clone(&engine));
        tokio::spawn(async move { engine.preload(&store).await });
    }
    let frame_time = Duration::from_millis(16);
    let mut last_draw = Instant::now();
    let mut dirty = false;
    loop {
        let input = if dirty {
            // No input before the next frame is due: draw it.
            tokio::time::timeout(frame_time.saturating_sub(last_draw.elapsed()), rx.recv()).await.unwrap_or_default()
        } else {
            rx.recv().await
        };
        match input {
            Some(Input::Key(k)) => {
                let effects = app.key(&k);
                spawn(&mut app, effects);
                dirty = true;
            }
            Some(Input::Mouse(m)) => {
                let effects = app.mouse(&m);
                dirty |= !effects.is_empty() || m.kind != event::MouseEventKind::Moved;
                spawn(&mut app, effects);
            }
            Some(Input::Resize(w, h)) => {
                app.resize(w, h);
                dirty = true;
            }
            Some(Input::Msg(m)) => {
                let effects = app.receive(m);
                spawn(&mut app, effects);
                dirty = true;
            }
            None => {}
        }
        if app.quit {
            return Ok(());
        }
        if !app.outside.is_empty() {
            let effects = outside(terminal, &mut app, &gate, &parked);
            spawn(&mut app, effects);
            dirty = true;
        }
        if dirty && last_draw.elapsed() >= frame_time {
            terminal.draw(|f| views::draw(f, &app, theme))?;
            last_draw = Instant::now();
            dirty = false;
        }
    }
}

/// Drives the App without a terminal: actions in, effects run to completion, for tests and the
/// TUI benchmark.
pub struct Headless {
    pub app: App,
    pub store: Store,
    engine: search::SearchEngine,
}

impl Headless {
    pub async fn new(store: Store, size: (u16, u16)) -> anyhow::Result<Self> {
        let keymap = KeyMap::load(None).map_err(|e| anyhow::anyhow!(e))?;
        let mut h = Self { app: App::new(keymap, size), store, engine: search::SearchEngine::default() };
        let effects = h.app.start();
        h.settle(effects).await;
        Ok(h)
    }

    /// An App not started yet (for timing the first frame).
    #[must_use]
    pub fn from_app(app: App, store: Store) -> Self {
        Self { app, store, engine: search::SearchEngine::default() }
    }

    /// Runs effects, feeding their answers back, until nothing is left to do.
    pub async fn settle(&mut self, mut effects: Vec<Effect>) {
        while !effects.is_empty() {
            self.app.sent(&effects);
            let mut next = Vec::new();
            for effect in effects {
                let early = std::sync::Mutex::new(Vec::new());
                let msg = run_effect(&self.store, &self.engine, effect, &|m| {
                    if let Ok(mut v) = early.lock() {
                        v.push(m);
                    }
                })
                .await;
                for m in early.into_inner().unwrap_or_default() {
                    next.extend(self.app.receive(m));
                }
                next.extend(self.app.receive(msg));
            }
            effects = next;
        }
    }

    /// Types keys into the input line (after `/`, `f`, `S`, `n`), Enter and Esc included.
    pub async fn type_keys(&mut self, keys: &[ratatui::crossterm::event::KeyEvent]) {
        for k in keys {
            let effects = self.app.key_input(k);
            self.settle(effects).await;
        }
    }

    /// Presses keys as the terminal would send them: through the key map, in its context.
    pub async fn press(&mut self, keys: &[ratatui::crossterm::event::KeyEvent]) {
        for k in keys {
            let effects = self.app.key(k);
            self.settle(effects).await;
        }
    }

    /// A mouse event, and everything it sets off.
    pub async fn mouse(&mut self, ev: ratatui::crossterm::event::MouseEvent) {
        let effects = self.app.mouse(&ev);
        self.settle(effects).await;
    }

    /// One action, and everything it sets off.
    pub async fn act(&mut self, action: action::Action) {
        let effects = self.app.update(action);
        self.settle(effects).await;
    }

    /// The screen as text, drawn on a test backend.
    #[must_use]
    pub fn render(&self) -> String {
        let (w, h) = self.app.size;
        let buffer = self.buffer(false);
        let mut out = String::new();
        for y in 0..h {
            let line: String = (0..w).map(|x| buffer[(x, y)].symbol().to_owned()).collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The screen drawn on a test backend, with its styles (in colour, or as `NO_COLOR` has it).
    #[must_use]
    pub fn buffer(&self, color: bool) -> ratatui::buffer::Buffer {
        let (w, h) = self.app.size;
        let Ok(mut terminal) = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h));
        let _ = terminal.draw(|f| views::draw(f, &self.app, views::Theme { color }));
        terminal.backend().buffer().clone()
    }
}
