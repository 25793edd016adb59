//! The Train tab: model directory, export and hyper-parameters as a form; start (the trainer
//! runs on its own thread, its events come back as messages), a live chart of training and
//! validation loss with tokens/s and ETA, cancel; past runs, each of which opens to its loss
//! chart; and after a run, what the student now says to a few validation prompts.
//!
//! The cursor runs down the form and on into the past runs: enter on a field changes it, on
//! the last row starts or cancels, on a past run shows its curves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::action::Action;
use super::app::{App, Effect, InputKind, InputLine};
use crate::train::model::{LoraSpec, PROJECTIONS};
use crate::train::run::{Event, TrainOptions};

/// The rows of the form, top to bottom.
pub const FIELDS: [&str; 12] = [
    "model dir",
    "export dir",
    "out dir",
    "LoRA r",
    "LoRA alpha",
    "learning rate",
    "epochs",
    "batch tokens",
    "max len",
    "max steps",
    "device",
    "▶ start / ■ cancel",
];

#[derive(Debug, Clone, PartialEq)]
pub struct TrainForm {
    pub values: [String; 11],
    pub cursor: usize,
}

impl Default for TrainForm {
    fn default() -> Self {
        let v = |s: &str| s.to_owned();
        Self {
            // No out dir: every run its own new `runs/<model>-N` (ops::train::new_run_dir).
            values: [v(""), v("export"), v(""), v("16"), v("32"), v("2e-4"), v("2"), v("8192"), v("4096"), v(""), v("cpu")],
            cursor: 0,
        }
    }
}

impl TrainForm {
    /// The options, or what is wrong with the form.
    pub fn options(&self) -> Result<TrainOptions, String> {
        let v = &self.values;
        let num =
            |i: usize| -> Result<f64, String> { v[i].trim().parse().map_err(|_| format!("{} {:?} is not a number", FIELDS[i], v[i])) };
        let whole = |i: usize| -> Result<u64, String> {
            v[i].trim().parse().map_err(|_| format!("{} {:?} is not a whole number", FIELDS[i], v[i]))
        };
        if v[0].trim().is_empty() {
            return Err("say which model: enter on \"model dir\" (a Hugging Face directory)".into());
        }
        Ok(TrainOptions {
            model: v[0].trim().into(),
            data: v[1].trim().into(),
            out: v[2].trim().into(),
            lora: LoraSpec {
                r: whole(3)? as usize,
                alpha: num(4)?,
                dropout: 0.05,
                targets: PROJECTIONS.iter().map(|p| (*p).to_owned()).collect(),
            },
            lr: num(5)?,
            weight_decay: 0.0,
            epochs: whole(6)? as u32,
            batch_tokens: whole(7)? as usize,
            grad_accum: 1,
            warmup: 0.03,
            max_len: whole(8)? as usize,
            max_grad_norm: Some(1.0),
            val_every: 0,
            save_every: 0,
            max_steps: if v[9].trim().is_empty() { None } else { Some(whole(9)?) },
            seed: 0,
            device: v[10].trim().to_owned(),
            kd_alpha: 0.5,
            temperature: 1.0,
        })
    }
}

/// A cancel flag an effect can carry (compared by identity).
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(pub Arc<AtomicBool>);

impl PartialEq for CancelFlag {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Finished,
    Cancelled,
    Failed,
}

/// A run in progress, as its events tell it.
#[derive(Debug, Clone)]
pub struct Progress {
    pub cancel: CancelFlag,
    pub total: u64,
    pub step: u64,
    pub train: Vec<(f64, f64)>,
    pub validation: Vec<(f64, f64)>,
    pub tokens_per_s: f64,
    pub note: String,
    /// Where the run writes (its own new directory unless the form named one).
    pub out: Option<String>,
    /// Seconds a step took on average in this run so far (a resumed run counts from its
    /// checkpoint), and when the last one ended.
    pub pace_s: Option<f64>,
    pub stepped_at: Instant,
    /// The step this run started after (0, or a checkpoint's).
    pub first_step: Option<u64>,
    pub ended: Option<Ended>,
}

impl Progress {
    fn new(cancel: CancelFlag) -> Self {
        Self {
            cancel,
            total: 0,
            step: 0,
            train: Vec::new(),
            validation: Vec::new(),
            tokens_per_s: 0.0,
            note: "loading the model and encoding the export…".into(),
            out: None,
            pace_s: None,
            stepped_at: Instant::now(),
            first_step: None,
            ended: None,
        }
    }

    /// Whether cancel was asked for (the run stops after the step in progress).
    #[must_use]
    pub fn cancelling(&self) -> bool {
        self.cancel.0.load(Ordering::SeqCst)
    }

    /// Seconds left: the steps left at the pace so far, less the time the step in progress
    /// has already taken (at most one step's worth, so it never runs out before the steps do).
    /// None once cancel is asked for or the run ended: no step is left to wait for.
    #[must_use]
    pub fn eta_s(&self) -> Option<f64> {
        let pace = self.pace_s?;
        if self.cancelling() || self.ended.is_some() || self.step >= self.total {
            return None;
        }
        let left = (self.total - self.step) as f64 * pace;
        Some((left - self.stepped_at.elapsed().as_secs_f64().min(pace)).max(0.0))
    }

    /// What the run is doing, for the line under the chart: the time left, or how it ended.
    #[must_use]
    pub fn state(&self) -> String {
        match self.ended {
            Some(Ended::Finished) => "finished".into(),
            Some(Ended::Cancelled) => "cancelled".into(),
            Some(Ended::Failed) => "failed".into(),
            None if self.cancelling() => "cancelling after this step".into(),
            None => self.eta_s().map_or_else(|| "eta -".into(), |s| format!("eta {}", duration(s))),
        }
    }
}

/// `42s`, `3m05s`, `2h10m`.
#[must_use]
pub fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A past run opened from the list: its row and its curves as the store keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedRun {
    pub run: crate::store::browse::PastRun,
    pub curves: crate::store::browse::RunCurves,
}

/// What the tab shows besides the form.
#[derive(Debug, Clone, Default)]
pub struct TrainState {
    pub form: TrainForm,
    pub running: Option<Progress>,
    /// The last run: its loss curves stay on the chart.
    pub last: Option<Progress>,
    pub result: Option<Result<String, String>>,
    /// The last runs, newest first.
    pub past: Vec<crate::store::browse::PastRun>,
    /// A past run opened with enter: the chart shows it until a run starts.
    pub opened: Option<OpenedRun>,
    /// The student's answers to validation prompts after the last run: (prompt, answer).
    pub answers: Vec<(String, String)>,
}

impl TrainState {
    /// The past run under the cursor, when the cursor is past the form.
    #[must_use]
    pub fn past_under_cursor(&self) -> Option<&crate::store::browse::PastRun> {
        self.form.cursor.checked_sub(FIELDS.len()).and_then(|i| self.past.get(i))
    }
}

impl App {
    /// What to load on entering the tab.
    pub fn enter_train(&mut self) -> Vec<Effect> {
        vec![Effect::LoadRuns, Effect::LoadExports]
    }

    /// Keys on the Train tab: move among the fields, change one (enter), start or cancel.
    pub fn update_train(&mut self, action: Action) -> Vec<Effect> {
        let rows = FIELDS.len() + self.train.past.len();
        let form = &mut self.train.form;
        if let Some(cursor) = action.moved_cursor(form.cursor, rows) {
            form.cursor = cursor;
            return Vec::new();
        }
        if action == Action::ApplyRule
            && let Some(run) = self.train.past_under_cursor()
        {
            return vec![Effect::LoadRunCurves(run.id)];
        }
        let form = &mut self.train.form;
        match action {
            Action::ApplyRule if form.cursor == FIELDS.len() - 1 => {
                if let Some(p) = &self.train.running {
                    p.cancel.0.store(true, Ordering::SeqCst);
                    self.message = Some("cancelling: the run stops after this step with a checkpoint".into());
                    return Vec::new();
                }
                match self.train.form.options() {
                    Ok(opts) => {
                        let cancel = CancelFlag::default();
                        self.train.running = Some(Progress::new(cancel.clone()));
                        self.train.opened = None;
                        self.train.answers.clear();
                        self.train.result = None;
                        vec![Effect::RunTrain(Box::new(opts), cancel)]
                    }
                    Err(e) => {
                        self.message = Some(e);
                        Vec::new()
                    }
                }
            }
            Action::ApplyRule => {
                // Past the form with no run under the cursor (the list just got shorter): nothing.
                if let Some(text) = form.values.get(form.cursor).cloned() {
                    self.input = Some(InputLine { kind: InputKind::TrainField, text, error: None });
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Enter on a train field being typed.
    pub fn submit_train_field(&mut self, text: &str) -> Vec<Effect> {
        self.input = None;
        let form = &mut self.train.form;
        if form.cursor < form.values.len() {
            text.trim().clone_into(&mut form.values[form.cursor]);
        }
        Vec::new()
    }

    /// An event of the running trainer.
    pub fn train_event(&mut self, event: Event) -> Vec<Effect> {
        let Some(p) = &mut self.train.running else { return Vec::new() };
        match event {
            Event::Started { total_steps, train_rows, validation_rows, skipped, soft, device, out } => {
                p.total = total_steps;
                let loss = if soft { "KD loss" } else { "cross-entropy" };
                p.note = format!("{train_rows} rows ({validation_rows} validation, {skipped} skipped) on {device}, {loss}");
                p.out = Some(out.display().to_string());
            }
            Event::Step { step, loss, tokens_per_s, elapsed_s, .. } => {
                let first = *p.first_step.get_or_insert(step.saturating_sub(1));
                p.step = step;
                p.train.push((step as f64, loss));
                p.tokens_per_s = tokens_per_s;
                // The pace of the steps taken, from the trainer's own clock: what is left is
                // counted in steps, so it never grows while no step is taken (after a cancel).
                p.pace_s = Some(elapsed_s / step.saturating_sub(first).max(1) as f64);
                p.stepped_at = Instant::now();
            }
            Event::Validation { step, loss } => p.validation.push((step as f64, loss)),
            Event::Warning { message } => self.message = Some(format!("warning: {message}")),
            Event::Checkpoint { .. } | Event::Done { .. } => {}
        }
        Vec::new()
    }

    /// The run ended: keep its curves, list it, and ask the student a few validation prompts.
    pub fn train_done(&mut self, result: Result<crate::ops::train::RunSummary, String>) -> Vec<Effect> {
        self.train.last = self.train.running.take();
        if let Some(last) = &mut self.train.last {
            last.ended = Some(match &result {
                Ok(s) if s.cancelled => Ended::Cancelled,
                Ok(_) => Ended::Finished,
                Err(_) => Ended::Failed,
            });
        }
        let mut effects = vec![Effect::LoadRuns];
        self.train.result = Some(match result {
            Ok(s) => {
                if let Ok(mut opts) = self.train.form.options() {
                    // The adapter is where the run wrote it: its own new directory, when the
                    // form named none.
                    opts.out = s.adapter.clone().into();
                    effects.push(Effect::StudentAnswers(Box::new(opts)));
                }
                let status = if s.cancelled { "cancelled" } else { "finished" };
                Ok(format!("run #{} {status}: {} steps, adapter in {}", s.run_id, s.steps, s.adapter))
            }
            Err(e) => Err(e),
        });
        self.message = self.train.result.clone().map(|r| r.unwrap_or_else(|e| e));
        effects
    }
}

impl App {
    /// A past run's curves, read after enter on it.
    pub fn run_curves(&mut self, curves: crate::store::browse::RunCurves) -> Vec<Effect> {
        match self.train.past.iter().find(|r| r.id == curves.run_id) {
            Some(run) => self.train.opened = Some(OpenedRun { run: run.clone(), curves }),
            None => self.message = Some(format!("run #{} is no longer in the list", curves.run_id)),
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7_800.0), "2h10m");
    }

    #[test]
    fn the_eta_counts_the_steps_left_and_stops_at_a_cancel() {
        let mut p = Progress::new(CancelFlag::default());
        p.total = 10;
        assert_eq!(p.eta_s(), None, "no step yet: no pace");
        p.step = 4;
        p.pace_s = Some(2.0);
        p.stepped_at = Instant::now();
        let eta = p.eta_s().unwrap();
        assert!((10.0..=12.0).contains(&eta), "{eta}");
        // Long after the last step the steps left still count: at most one step is taken off.
        p.stepped_at = Instant::now().checked_sub(std::time::Duration::from_mins(1)).unwrap();
        assert!((p.eta_s().unwrap() - 10.0).abs() < 1e-9);
        p.cancel.0.store(true, Ordering::SeqCst);
        assert_eq!(p.eta_s(), None);
        assert_eq!(p.state(), "cancelling after this step");
        p.ended = Some(Ended::Cancelled);
        assert_eq!(p.state(), "cancelled");
    }
}
