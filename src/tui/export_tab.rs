//! The Export tab: the options of `retort export` as a form, a live preview (a dry run after
//! every change), the run with a progress gauge, and the exports made so far.

use super::action::Action;
use super::app::{App, Effect, InputKind, InputLine};
use crate::domain::Status;
use crate::export::{ExportFormat, ReasoningMode};
use crate::ops::export::{ExportOptions, ExportReport, parse_mix};

/// The rows of the form, top to bottom.
pub const FIELDS: [&str; 9] =
    ["format", "reasoning", "validation share", "seed", "statuses", "mix", "where", "out dir", "▶ run the export"];

/// The export's options as the curator sets them.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportForm {
    pub format: ExportFormat,
    pub reasoning: ReasoningMode,
    pub val: String,
    pub seed: String,
    pub statuses: String,
    pub mix: String,
    pub filter: String,
    pub out: String,
    pub cursor: usize,
}

impl Default for ExportForm {
    fn default() -> Self {
        Self {
            format: ExportFormat::Messages,
            reasoning: ReasoningMode::Inline,
            val: "0.02".into(),
            seed: "0".into(),
            statuses: "accepted".into(),
            mix: String::new(),
            filter: String::new(),
            out: "export".into(),
            cursor: 0,
        }
    }
}

impl ExportForm {
    /// The value shown on row `i`.
    #[must_use]
    pub fn value(&self, i: usize) -> String {
        match i {
            0 => self.format.as_str().to_owned(),
            1 => match self.reasoning {
                ReasoningMode::Inline => "inline <think>".into(),
                ReasoningMode::Field => "reasoning_content field".into(),
                ReasoningMode::Drop => "dropped".into(),
            },
            2 => self.val.clone(),
            3 => self.seed.clone(),
            4 => self.statuses.clone(),
            5 => {
                if self.mix.is_empty() {
                    "(none)".into()
                } else {
                    self.mix.clone()
                }
            }
            6 => {
                if self.filter.is_empty() {
                    "(all)".into()
                } else {
                    self.filter.clone()
                }
            }
            7 => self.out.clone(),
            _ => String::new(),
        }
    }

    /// The options, or what is wrong with the form.
    pub fn options(&self) -> Result<ExportOptions, String> {
        let val: f64 = self.val.trim().parse().map_err(|_| format!("validation share {:?} is not a number", self.val))?;
        let seed: u64 = self.seed.trim().parse().map_err(|_| format!("seed {:?} is not a whole number", self.seed))?;
        let statuses = self
            .statuses
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse::<Status>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let filter_expr = if self.filter.trim().is_empty() {
            None
        } else {
            Some(crate::rules::parse_expr(&self.filter).map_err(|e| format!("where, column {}: {}", e.column, e.message))?)
        };
        Ok(ExportOptions {
            format: self.format,
            out: self.out.trim().into(),
            filter: (!self.filter.trim().is_empty()).then(|| self.filter.clone()),
            filter_expr,
            statuses,
            labels: None,
            reasoning: self.reasoning,
            system: true,
            val,
            seed,
            mix: parse_mix(&self.mix)?,
            max_samples: None,
            max_tokens: None,
            name: "retort".into(),
            model: None,
            container: crate::export::Container::Jsonl,
            shard_rows: None,
        })
    }
}

/// What the tab shows besides the form.
#[derive(Debug, Clone, Default)]
pub struct ExportState {
    pub form: ExportForm,
    pub preview: Option<Result<ExportReport, String>>,
    /// (written, total) while an export runs.
    pub progress: Option<(u64, u64)>,
    /// The outcome of the last run, until the form changes.
    pub last: Option<Result<ExportReport, String>>,
    /// (id, created_at, format, samples, tokens, out_dir)
    pub past: Vec<crate::store::browse::PastExport>,
}

impl App {
    /// A new preview for a changed form (the last run's outcome no longer applies to it).
    fn preview(&mut self) -> Vec<Effect> {
        self.export.last = None;
        match self.export.form.options() {
            Ok(opts) => vec![Effect::PreviewExport(Box::new(opts))],
            Err(e) => {
                self.export.preview = Some(Err(e));
                Vec::new()
            }
        }
    }

    /// What to load on entering the tab.
    pub fn enter_export(&mut self) -> Vec<Effect> {
        let mut effects = self.preview();
        effects.push(Effect::LoadExports);
        effects
    }

    /// Keys on the Export tab: move among the options, change one (enter), run.
    pub fn update_export(&mut self, action: Action) -> Vec<Effect> {
        let form = &mut self.export.form;
        match action {
            Action::SelectNext | Action::SelectPrevious => {
                form.cursor = action.moved_cursor(form.cursor, FIELDS.len()).unwrap_or(form.cursor);
                Vec::new()
            }
            Action::ApplyRule => match form.cursor {
                0 => {
                    let all = ExportFormat::ALL;
                    let i = all.iter().position(|f| *f == form.format).unwrap_or(0);
                    form.format = all[(i + 1) % all.len()];
                    self.preview()
                }
                1 => {
                    form.reasoning = match form.reasoning {
                        ReasoningMode::Inline => ReasoningMode::Field,
                        ReasoningMode::Field => ReasoningMode::Drop,
                        ReasoningMode::Drop => ReasoningMode::Inline,
                    };
                    self.preview()
                }
                8 => {
                    if self.export.progress.is_some() {
                        return Vec::new();
                    }
                    match self.export.form.options() {
                        Ok(opts) if opts.format == ExportFormat::Kd => {
                            self.message =
                                Some("the kd export needs --model (the student's directory): run it from the command line".into());
                            Vec::new()
                        }
                        Ok(opts) => {
                            self.export.progress = Some((0, 0));
                            vec![Effect::RunExport(Box::new(opts))]
                        }
                        Err(e) => {
                            self.message = Some(e);
                            Vec::new()
                        }
                    }
                }
                i => {
                    let text = match i {
                        2 => form.val.clone(),
                        3 => form.seed.clone(),
                        4 => form.statuses.clone(),
                        5 => form.mix.clone(),
                        6 => form.filter.clone(),
                        _ => form.out.clone(),
                    };
                    self.input = Some(InputLine { kind: InputKind::ExportField, text, error: None });
                    Vec::new()
                }
            },
            _ => Vec::new(),
        }
    }

    /// Enter on an export field being typed.
    pub fn submit_export_field(&mut self, text: String) -> Vec<Effect> {
        self.input = None;
        let form = &mut self.export.form;
        match form.cursor {
            2 => form.val = text,
            3 => form.seed = text,
            4 => form.statuses = text,
            5 => form.mix = text,
            6 => form.filter = text,
            _ => form.out = text,
        }
        self.preview()
    }
}
