//! The Train tab: model directory, export and hyper-parameters as a form; start (the trainer
//! runs on its own thread, its events come back as messages), a live chart of training and
//! validation loss with tokens/s and ETA, cancel; past runs; and after a run, what the student
//! now says to a few validation prompts.

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
            values: [v(""), v("export"), v("runs/tui"), v("16"), v("32"), v("2e-4"), v("2"), v("8192"), v("4096"), v(""), v("cpu")],
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

/// A run in progress, as its events tell it.
#[derive(Debug, Clone)]
pub struct Progress {
    pub cancel: CancelFlag,
    pub total: u64,
    pub step: u64,
    pub train: Vec<(f64, f64)>,
    pub validation: Vec<(f64, f64)>,
    pub tokens_per_s: f64,
    pub started: Instant,
    pub note: String,
}

/// What the tab shows besides the form.
#[derive(Debug, Clone, Default)]
pub struct TrainState {
    pub form: TrainForm,
    pub running: Option<Progress>,
    /// The last run: its loss curves stay on the chart.
    pub last: Option<Progress>,
    pub result: Option<Result<String, String>>,
    /// (id, status, base model, steps, last loss)
    pub past: Vec<crate::store::browse::PastRun>,
    /// The student's answers to validation prompts after the last run: (prompt, answer).
    pub answers: Vec<(String, String)>,
}

impl Progress {
    /// Seconds left at the pace so far.
    #[must_use]
    pub fn eta_s(&self) -> Option<f64> {
        (self.step > 0 && self.total > self.step)
            .then(|| self.started.elapsed().as_secs_f64() / self.step as f64 * (self.total - self.step) as f64)
    }
}

impl App {
    /// What to load on entering the tab.
    pub fn enter_train(&mut self) -> Vec<Effect> {
        vec![Effect::LoadRuns, Effect::LoadExports]
    }

    /// Keys on the Train tab: move among the fields, change one (enter), start or cancel.
    pub fn update_train(&mut self, action: Action) -> Vec<Effect> {
        let form = &mut self.train.form;
        if let Some(cursor) = action.moved_cursor(form.cursor, FIELDS.len()) {
            form.cursor = cursor;
            return Vec::new();
        }
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
                        self.train.running = Some(Progress {
                            cancel: cancel.clone(),
                            total: 0,
                            step: 0,
                            train: Vec::new(),
                            validation: Vec::new(),
                            tokens_per_s: 0.0,
                            started: Instant::now(),
                            note: "loading the model and encoding the export…".into(),
                        });
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
                let text = form.values[form.cursor].clone();
                self.input = Some(InputLine { kind: InputKind::TrainField, text, error: None });
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
            Event::Started { total_steps, train_rows, validation_rows, skipped, soft, device } => {
                p.total = total_steps;
                p.started = Instant::now();
                let loss = if soft { "KD loss" } else { "cross-entropy" };
                p.note = format!("{train_rows} rows ({validation_rows} validation, {skipped} skipped) on {device}, {loss}");
            }
            Event::Step { step, loss, tokens_per_s, .. } => {
                p.step = step;
                p.train.push((step as f64, loss));
                p.tokens_per_s = tokens_per_s;
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
        let mut effects = vec![Effect::LoadRuns];
        self.train.result = Some(match result {
            Ok(s) => {
                if let Ok(opts) = self.train.form.options() {
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
