//! The TUI's state and its update function: actions and messages in, effects out. Nothing here
//! awaits or touches the database; effects run in background tasks and answer with messages.

use std::collections::BTreeSet;

use super::action::Action;
use super::data::{Counts, Detail, ListFilter, ListRow, PageFrom, SortKey};
use super::keymap::KeyMap;
use super::search::{Hit, Target};
use super::text;
use crate::domain::{LabelType, Status};
use crate::ops::stats::Stats;

/// Rows read per page; the loaded window holds at most `WINDOW` rows.
pub const PAGE: i64 = 100;
const WINDOW: usize = 400;
/// Start reading the next page when the cursor is this close to the window's edge.
const PREFETCH: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Review,
    Rules,
    Export,
    Train,
    Stats,
}

impl Tab {
    pub const ALL: [Tab; 5] = [Tab::Review, Tab::Rules, Tab::Export, Tab::Train, Tab::Stats];

    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Tab::Review => "Review",
            Tab::Rules => "Rules",
            Tab::Export => "Export",
            Tab::Train => "Train",
            Tab::Stats => "Stats",
        }
    }
}

/// What a line of text typed at the bottom is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// `/`: fuzzy search over prompts and teachers.
    Search,
    /// `S`: full-text search.
    FullText,
    /// `f`: a filter in the rule language.
    Filter,
    /// `n`: the curator's note on the sample.
    Note,
    /// `e` / `+` on the Rules tab: a rule to save (`name: action where ...`).
    Rule,
    /// Enter on a text option of the Export tab.
    ExportField,
    /// Enter on a field of the Train tab.
    TrainField,
    /// `/` in the sample pane: a search inside the sample.
    TraceSearch,
    /// `:`: the command palette.
    Palette,
}

impl InputKind {
    #[must_use]
    pub fn prompt(self) -> &'static str {
        match self {
            InputKind::Search => "search: ",
            InputKind::FullText => "full text: ",
            InputKind::Filter => "filter: ",
            InputKind::Note => "note: ",
            InputKind::Rule => "rule: ",
            InputKind::ExportField | InputKind::TrainField => "value: ",
            InputKind::TraceSearch => "find in sample: ",
            InputKind::Palette => ":",
        }
    }
}

/// The line being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLine {
    pub kind: InputKind,
    pub text: String,
    /// Why the last Enter was refused (a filter's parse error, with its column).
    pub error: Option<String>,
}

/// A saved rule with its live dry-run count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    pub name: String,
    pub source: String,
    /// What applying the saved rules in order would have it change, after the rules above it
    /// (as `retort rules dry-run` counts a file); `Err` when it cannot run.
    pub count: Option<Result<u64, String>>,
    /// Where it would change back what a rule above it decided.
    pub overturns: Vec<String>,
}

/// Applying a rule from the Rules tab that changes at least this many samples asks first.
pub const CONFIRM_AT: u64 = 100;

/// A fuzzy search in progress or done.
#[derive(Debug, Clone, Default)]
pub struct SearchState {
    pub generation: u64,
    pub hits: Vec<Hit>,
    pub cursor: usize,
    /// Entries scanned of the corpus (equal when the ranking is complete).
    pub scanned: usize,
    pub total: usize,
    pub done: bool,
}

/// Work for a background task.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    PreviewExport(Box<crate::ops::export::ExportOptions>),
    RunExport(Box<crate::ops::export::ExportOptions>),
    LoadExports,
    LoadCharts,
    /// Count the saved rules in order, as `rules dry-run` counts a file.
    CountRules(Vec<crate::store::rules::SavedRule>),
    /// What applying this rule alone would change (before asking to confirm a large one).
    DryRunRule {
        name: String,
        source: String,
    },
    /// The verifiers the store has scores of, for checking a filter's names.
    LoadVerifiers,
    /// What the store holds now (polled): another writer's change shows.
    LoadStamp,
    /// The counts read again beside the decisions, kept only if none was made meanwhile.
    Recount {
        decided: u64,
        filter: ListFilter,
    },
    ApplyRule {
        name: String,
        source: String,
    },
    SaveRule {
        name: String,
        source: String,
    },
    LoadPage {
        from: PageFrom,
        generation: u64,
        filter: ListFilter,
        sort: SortKey,
    },
    LoadDetail {
        id: i64,
        generation: u64,
        /// Read its scored tokens too (the token view is on).
        tokens: bool,
    },
    LoadGroup {
        prompt_id: i64,
    },
    /// Where sample `id` is in the list (after a jump to it).
    LoadPosition {
        id: i64,
        generation: u64,
        filter: ListFilter,
        sort: SortKey,
    },
    /// Store a curator's edit of the answer (or the reference) as the sample's hard label.
    EditText {
        id: i64,
        reference: bool,
        text: String,
    },
    /// Accept `keep`, reject its siblings: one action.
    Pick {
        keep: i64,
        siblings: Vec<i64>,
    },
    LoadCounts(ListFilter),
    /// Which generations are running (polled every few seconds).
    LoadGenerations,
    /// Train with these options until done or cancelled.
    RunTrain(Box<crate::train::run::TrainOptions>, super::train_tab::CancelFlag),
    /// The past training runs.
    LoadRuns,
    /// One past run's loss curves (enter on it in the Train tab).
    LoadRunCurves(i64),
    /// What the student trained with these options says to a few validation prompts.
    StudentAnswers(Box<crate::train::run::TrainOptions>),
    LoadStats,
    LoadRules,
    Search {
        generation: u64,
        query: String,
    },
    SetStatus {
        ids: Vec<i64>,
        status: Status,
    },
    SetLabel {
        ids: Vec<i64>,
        label: LabelType,
    },
    SetNote {
        id: i64,
        text: String,
    },
    Undo,
    Redo,
    /// Read these rows again (after a decision).
    Refresh(Vec<i64>),
}

impl Effect {
    /// Whether the effect is a decision: it changes the store and answers with `Msg::Changed`
    /// (or `Msg::Failed`).
    #[must_use]
    pub fn changes(&self) -> bool {
        matches!(
            self,
            Effect::SetStatus { .. }
                | Effect::Pick { .. }
                | Effect::EditText { .. }
                | Effect::SetLabel { .. }
                | Effect::SetNote { .. }
                | Effect::Undo
                | Effect::Redo
                | Effect::ApplyRule { .. }
        )
    }

    /// Whether the effect runs in order with the curator's decisions (the decisions, a rule
    /// saved, and the reads that show their outcome: the rows read again, the counts): decisions
    /// are written one after another in the order they were made, so the last key pressed is
    /// the decision the store keeps, and what the screen shows of them is read after them.
    #[must_use]
    pub fn ordered(&self) -> bool {
        self.changes() || matches!(self, Effect::SaveRule { .. } | Effect::Refresh(_) | Effect::LoadCounts(_))
    }
}

/// A background task's answer.
#[derive(Debug, Clone)]
pub enum Msg {
    ExportPreview(Result<crate::ops::export::ExportReport, String>),
    ExportProgress(u64, u64),
    ExportDone(Result<crate::ops::export::ExportReport, String>),
    Exports(Vec<crate::store::browse::PastExport>),
    Charts(Box<super::data::Charts>),
    RuleCounts(Vec<RuleRow>),
    /// What applying the rule alone would change.
    RuleCount {
        name: String,
        source: String,
        count: Result<u64, String>,
    },
    Verifiers(Vec<String>),
    Stamp(crate::store::browse::Stamp),
    Recounted {
        decided: u64,
        counts: Counts,
    },
    /// A decision that could not be written (the screen reads the store again).
    Failed(String),
    Page {
        from: PageFrom,
        generation: u64,
        rows: Vec<ListRow>,
    },
    /// Search hits: partial (the first chunk) or final.
    Search {
        generation: u64,
        hits: Vec<Hit>,
        scanned: usize,
        total: usize,
        done: bool,
    },
    Detail {
        generation: u64,
        detail: Option<Box<Detail>>,
    },
    Group {
        prompt_id: i64,
        samples: Vec<crate::store::samples::Sample>,
    },
    /// The list position of the window's first row, read after a jump.
    Position {
        generation: u64,
        id: i64,
        position: Option<i64>,
    },
    Counts(Counts),
    Stats(Box<Stats>),
    Rules(Vec<crate::store::rules::SavedRule>),
    /// A decision or an undo changed these samples (all loaded rows when none are named).
    Changed {
        ids: Vec<i64>,
        message: String,
        /// What the change moved between statuses and labels, from the store's history: the
        /// counts follow it exactly.
        moves: Vec<crate::store::actions::Move>,
    },
    Rows(Vec<ListRow>),
    /// The generations running now.
    Generations(Vec<crate::ops::generate::Running>),
    TrainEvent(crate::train::run::Event),
    TrainDone(Result<crate::ops::train::RunSummary, String>),
    /// (id, status, base model, steps, last loss)
    Runs(Vec<crate::store::browse::PastRun>),
    RunCurves(Box<crate::store::browse::RunCurves>),
    /// (prompt, answer)
    Answers(Result<Vec<(String, String)>, String>),
    Error(String),
}

/// Which pane of the Review tab the movement keys move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    #[default]
    List,
    Detail,
}

/// What the TUI asks of the terminal itself, carried out by the event loop (the TUI suspends
/// for a pager or an editor and comes back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outside {
    /// Copy to the clipboard with OSC 52 (works over SSH and in tmux with `set-clipboard on`).
    Clipboard { what: String, text: String },
    /// Show the text in `$PAGER`.
    Pager(String),
    /// Edit sample `id`'s answer (or reference) in `$EDITOR`, starting from `text`.
    Editor { id: i64, reference: bool, text: String },
    /// Capture the mouse (true), or leave it to the terminal.
    Mouse(bool),
}

// Independent UI flags (help shown, quitting, window at either end, reasoning unfolded).
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug)]
pub struct App {
    pub keymap: KeyMap,
    pub tab: Tab,
    pub help: bool,
    pub quit: bool,
    /// The loaded window of the sample list, in the list's order.
    pub rows: Vec<ListRow>,
    pub cursor: usize,
    pub at_start: bool,
    pub at_end: bool,
    /// A page read in flight (one at a time).
    pub loading: Option<PageFrom>,
    /// Bumped when the list starts over (a jump, a new filter): older pages are dropped.
    list_generation: u64,
    pub filter: ListFilter,
    pub sort: SortKey,
    /// How the filter reads on the status line.
    pub filter_label: Option<String>,
    pub input: Option<InputLine>,
    pub search: Option<SearchState>,
    search_generation: u64,
    pub marks: BTreeSet<i64>,
    pub counts: Counts,
    pub detail: Option<Detail>,
    detail_generation: u64,
    /// The sample laid out, its scroll and a search inside it.
    pub pane: super::pane::Pane,
    pub focus: Focus,
    pub show_reasoning: bool,
    /// The token view: the completion token by token, coloured by the teacher's confidence.
    pub show_tokens: bool,
    pub group: Option<super::group::Group>,
    /// The list position of `rows[0]`, when known.
    pub offset: Option<i64>,
    /// `y` was pressed: the next key says what to copy.
    pub yanking: bool,
    /// The mouse is captured (clicks select, the wheel scrolls).
    pub mouse: bool,
    /// What the event loop is to do with the terminal.
    pub outside: Vec<Outside>,
    /// The palette's choices for what is typed after `:`.
    pub palette: Vec<super::palette::Choice>,
    pub palette_cursor: usize,
    /// The Stats tab's scroll.
    pub stats_scroll: usize,
    /// The help's scroll, in entries.
    pub help_scroll: usize,
    pub stats: Option<Stats>,
    pub charts: Option<super::data::Charts>,
    pub export: super::export_tab::ExportState,
    pub train: super::train_tab::TrainState,
    pub rules: Vec<RuleRow>,
    /// A rule whose apply waits for a second Enter (it changes many samples).
    pub confirm: Option<String>,
    /// The verifiers with scores in the store (read when a filter is typed).
    pub verifiers: Option<Vec<String>>,
    /// What the store held at the last poll.
    pub stamp: Option<crate::store::browse::Stamp>,
    /// Decisions sent and not answered yet, and those answered: a count read beside them is
    /// kept only when none was in flight or answered while it was read.
    pub unanswered: usize,
    pub decided: u64,
    pub rule_cursor: usize,
    pub message: Option<String>,
    /// Generations running now (`retort generate` in another terminal), for the status line.
    pub generating: Vec<crate::ops::generate::Running>,
    /// The terminal's size, for paging and for wrapping the detail.
    pub size: (u16, u16),
}

impl App {
    #[must_use]
    pub fn new(keymap: KeyMap, size: (u16, u16)) -> Self {
        Self {
            keymap,
            tab: Tab::Review,
            help: false,
            quit: false,
            rows: Vec::new(),
            cursor: 0,
            at_start: false,
            at_end: false,
            loading: None,
            list_generation: 0,
            filter: ListFilter::All,
            sort: SortKey::Id,
            filter_label: None,
            input: None,
            search: None,
            search_generation: 0,
            marks: BTreeSet::new(),
            counts: Counts::default(),
            detail: None,
            detail_generation: 0,
            pane: super::pane::Pane::default(),
            focus: Focus::List,
            show_reasoning: true,
            show_tokens: false,
            group: None,
            offset: None,
            yanking: false,
            mouse: true,
            outside: Vec::new(),
            palette: Vec::new(),
            palette_cursor: 0,
            stats_scroll: 0,
            help_scroll: 0,
            stats: None,
            charts: None,
            export: super::export_tab::ExportState::default(),
            train: super::train_tab::TrainState::default(),
            rules: Vec::new(),
            confirm: None,
            verifiers: None,
            stamp: None,
            unanswered: 0,
            decided: 0,
            rule_cursor: 0,
            message: None,
            generating: Vec::new(),
            size,
        }
    }

    /// Opens a tab, and reads what it shows.
    pub fn enter_tab(&mut self, tab: Tab) -> Vec<Effect> {
        self.tab = tab;
        match tab {
            Tab::Stats => vec![Effect::LoadStats, Effect::LoadCharts],
            Tab::Rules => vec![Effect::LoadRules],
            Tab::Export => self.enter_export(),
            Tab::Train => self.enter_train(),
            Tab::Review => Vec::new(),
        }
    }

    /// Notes the decisions among effects about to run (their answers are counted back).
    pub fn sent(&mut self, effects: &[Effect]) {
        self.unanswered += effects.iter().filter(|e| e.changes()).count();
    }

    /// Reads the sample under the cursor again, and its group when open.
    pub(super) fn reload_current(&mut self) -> Vec<Effect> {
        let Some((id, prompt_id)) = self.current().map(|r| (r.id, r.prompt_id)) else { return Vec::new() };
        self.detail_generation += 1;
        let mut effects = vec![Effect::LoadDetail { id, generation: self.detail_generation, tokens: self.show_tokens }];
        if self.group.is_some() {
            effects.push(Effect::LoadGroup { prompt_id });
        }
        effects
    }

    /// The store's stamp, polled: when a writer (another terminal's import, rule run, verify or
    /// undo, or this TUI) changed it, the rows shown, the sample and the counts are read again,
    /// so every number on screen is the store's.
    fn stamped(&mut self, stamp: crate::store::browse::Stamp) -> Vec<Effect> {
        let before = self.stamp.replace(stamp);
        if before.is_none_or(|b| b == stamp) {
            return Vec::new();
        }
        let mut effects = vec![Effect::Refresh(self.rows.iter().map(|r| r.id).collect())];
        effects.extend(self.reload_current());
        if self.unanswered == 0 {
            effects.push(Effect::Recount { decided: self.decided, filter: self.filter.clone() });
        }
        if before.is_some_and(|b| b.last_sample != stamp.last_sample) {
            // New samples: the list may read past its old end (at once when it was empty).
            self.at_end = false;
            if self.rows.is_empty() {
                if self.loading.is_none() {
                    effects.extend(self.load(PageFrom::Start));
                }
            } else {
                effects.extend(self.prefetch());
            }
        }
        effects
    }

    /// The terminal's new size: the sample is laid out again for it.
    pub fn resize(&mut self, width: u16, height: u16) {
        self.size = (width, height);
        self.relayout();
    }

    /// What to load before the first frame.
    #[must_use]
    pub fn start(&mut self) -> Vec<Effect> {
        let mut effects = self.load(PageFrom::Start);
        effects.push(Effect::LoadCounts(self.filter.clone()));
        effects
    }

    /// Starts the list over from `from` (the first or last samples).
    fn load(&mut self, from: PageFrom) -> Vec<Effect> {
        self.list_generation += 1;
        self.loading = Some(from);
        vec![Effect::LoadPage { from, generation: self.list_generation, filter: self.filter.clone(), sort: self.sort }]
    }

    /// Shows only the samples `filter` lets through.
    fn set_filter(&mut self, filter: ListFilter, label: Option<String>) -> Vec<Effect> {
        self.filter = filter;
        self.filter_label = label;
        self.rows.clear();
        self.cursor = 0;
        self.detail = None;
        self.group = None;
        let mut effects = self.load(PageFrom::Start);
        effects.push(Effect::LoadCounts(self.filter.clone()));
        effects
    }

    #[must_use]
    pub fn current(&self) -> Option<&ListRow> {
        self.rows.get(self.cursor)
    }

    /// List rows that fit on screen (tabs, borders, status and hints aside).
    #[must_use]
    pub fn list_height(&self) -> usize {
        usize::from(self.size.1.saturating_sub(5)).max(1)
    }

    /// The detail view's text width.
    #[must_use]
    pub fn detail_width(&self) -> usize {
        let (list, _) = super::views::review::split_width(self.size.0);
        usize::from(self.size.0.saturating_sub(list).saturating_sub(2)).max(10)
    }

    /// The key context: the group view's keys, the sample pane's, or only those of everywhere.
    #[must_use]
    pub fn context(&self) -> super::keymap::Context {
        use super::keymap::Context;
        match (self.tab, &self.group, self.focus) {
            (Tab::Review, Some(_), _) => Context::Group,
            (Tab::Review, None, Focus::Detail) => Context::Detail,
            _ => Context::Global,
        }
    }

    /// The cursor moved in the list: read its sample (and its group, when open).
    pub(super) fn moved(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some((id, prompt_id)) = self.current().map(|r| (r.id, r.prompt_id)) {
            if self.detail.as_ref().is_none_or(|d| d.sample.id != id) {
                self.pane.scroll = 0;
                self.detail_generation += 1;
                effects.push(Effect::LoadDetail { id, generation: self.detail_generation, tokens: self.show_tokens });
            }
            if let Some(g) = &self.group
                && g.prompt_id != prompt_id
            {
                effects.push(Effect::LoadGroup { prompt_id });
            }
        }
        effects.extend(self.prefetch());
        effects
    }

    /// Reads the next page when the cursor nears an edge of the window that is not the list's.
    fn prefetch(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.loading.is_none() {
            let from = if self.cursor + PREFETCH >= self.rows.len() && !self.at_end {
                self.rows.last().map(|r| PageFrom::After(r.id))
            } else if self.cursor < PREFETCH && !self.at_start {
                self.rows.first().map(|r| PageFrom::Before(r.id))
            } else {
                None
            };
            if let Some(from) = from {
                self.loading = Some(from);
                effects.push(Effect::LoadPage { from, generation: self.list_generation, filter: self.filter.clone(), sort: self.sort });
            }
        }
        effects
    }

    fn move_by(&mut self, delta: isize) -> Vec<Effect> {
        if self.rows.is_empty() {
            return Vec::new();
        }
        let target = (self.cursor as isize + delta).clamp(0, self.rows.len() as isize - 1) as usize;
        if target == self.cursor {
            return self.moved();
        }
        self.cursor = target;
        self.moved()
    }

    fn jump(&mut self, from: PageFrom) -> Vec<Effect> {
        let already = match from {
            PageFrom::Start => self.at_start,
            _ => self.at_end,
        };
        if already && !self.rows.is_empty() {
            self.cursor = if from == PageFrom::Start { 0 } else { self.rows.len() - 1 };
            return self.moved();
        }
        self.load(from)
    }

    fn targets(&self) -> Vec<i64> {
        self.current().map(|r| vec![r.id]).unwrap_or_default()
    }

    /// Carries out an action.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.message = None;
        if self.help {
            // The movement keys scroll the help; any other closes it, `q` among them.
            let entries = super::views::help_entries(self).len();
            let (rows, columns) = super::views::help_layout(entries, self.size);
            let max = entries.saturating_sub(rows * columns);
            match action {
                Action::SelectNext | Action::PageDown => self.help_scroll = (self.help_scroll + rows).min(max),
                Action::SelectPrevious | Action::PageUp => self.help_scroll = self.help_scroll.saturating_sub(rows),
                _ => self.help = false,
            }
            return Vec::new();
        }
        if self.tab == Tab::Review {
            // The group view's keys, then the sample pane's, before the list's.
            if self.group.is_some()
                && let Some(effects) = self.update_group(action)
            {
                return effects;
            }
            if self.group.is_none() && self.focus == Focus::Detail && self.update_pane(action) {
                return Vec::new();
            }
        }
        match action {
            Action::Quit => {
                self.quit = true;
                Vec::new()
            }
            Action::Help => {
                self.help = true;
                self.help_scroll = 0;
                Vec::new()
            }
            Action::Palette => {
                self.input = Some(InputLine { kind: InputKind::Palette, text: String::new(), error: None });
                self.palette = super::palette::choices("");
                self.palette_cursor = 0;
                Vec::new()
            }
            Action::ToggleMouse => {
                self.mouse = !self.mouse;
                self.outside.push(Outside::Mouse(self.mouse));
                self.message = Some(if self.mouse {
                    "mouse on: click selects, the wheel scrolls".into()
                } else {
                    format!("mouse off: the terminal selects text; {} takes it back", self.keymap.keys_of(Action::ToggleMouse))
                });
                Vec::new()
            }
            Action::NextTab | Action::PreviousTab => {
                let i = Tab::ALL.iter().position(|t| *t == self.tab).unwrap_or(0);
                let n = Tab::ALL.len();
                self.enter_tab(Tab::ALL[if action == Action::NextTab { (i + 1) % n } else { (i + n - 1) % n }])
            }
            _ if self.tab == Tab::Rules => self.update_rules(action),
            _ if self.tab == Tab::Export => self.update_export(action),
            _ if self.tab == Tab::Train => self.update_train(action),
            _ if self.tab == Tab::Stats => {
                self.update_stats(action);
                Vec::new()
            }
            Action::SelectNext => self.move_by(1),
            Action::SelectPrevious => self.move_by(-1),
            Action::PageDown => self.move_by(self.list_height() as isize),
            Action::PageUp => self.move_by(-(self.list_height() as isize)),
            Action::SelectFirst => self.jump(PageFrom::Start),
            Action::SelectLast => self.jump(PageFrom::End),
            Action::Accept | Action::Reject | Action::Reset => {
                let status = match action {
                    Action::Accept => Status::Accepted,
                    Action::Reject => Status::Rejected,
                    _ => Status::Pending,
                };
                let ids = self.targets();
                if ids.is_empty() {
                    return Vec::new();
                }
                let mut effects = vec![Effect::SetStatus { ids, status }];
                // Move on to the next sample: deciding is the common case.
                if status != Status::Pending {
                    effects.extend(self.move_by(1));
                }
                effects
            }
            Action::LabelHard | Action::LabelSoft | Action::LabelPseudo => {
                let label = match action {
                    Action::LabelHard => LabelType::Hard,
                    Action::LabelSoft => LabelType::Soft,
                    _ => LabelType::Pseudo,
                };
                let ids = if self.marks.is_empty() { self.targets() } else { self.marks.iter().copied().collect() };
                if ids.is_empty() { Vec::new() } else { vec![Effect::SetLabel { ids, label }] }
            }
            Action::ToggleMark => {
                if let Some(id) = self.current().map(|r| r.id)
                    && !self.marks.remove(&id)
                {
                    self.marks.insert(id);
                }
                self.move_by(1)
            }
            Action::AcceptMarked | Action::RejectMarked => {
                if self.marks.is_empty() {
                    self.message = Some(format!("no marked samples: mark with {}", self.keymap.keys_of(Action::ToggleMark)));
                    return Vec::new();
                }
                let ids: Vec<i64> = std::mem::take(&mut self.marks).into_iter().collect();
                let status = if action == Action::AcceptMarked { Status::Accepted } else { Status::Rejected };
                vec![Effect::SetStatus { ids, status }]
            }
            Action::Undo => vec![Effect::Undo],
            Action::Redo => vec![Effect::Redo],
            Action::Search | Action::FullText | Action::Filter | Action::Note => {
                let kind = match action {
                    Action::Search => InputKind::Search,
                    Action::FullText => InputKind::FullText,
                    Action::Filter => InputKind::Filter,
                    _ => InputKind::Note,
                };
                if kind == InputKind::Note && self.current().is_none() {
                    return Vec::new();
                }
                let text = match (kind, &self.filter) {
                    (InputKind::Note, _) => self.detail.as_ref().and_then(|d| d.note.clone()).unwrap_or_default(),
                    (InputKind::Filter, ListFilter::Expr(e)) => e.to_string(),
                    _ => String::new(),
                };
                self.input = Some(InputLine { kind, text, error: None });
                // A filter's verifier names are checked against the store's, read afresh.
                if kind == InputKind::Filter { vec![Effect::LoadVerifiers] } else { Vec::new() }
            }
            Action::Sort => {
                self.sort = self.sort.next();
                self.rows.clear();
                self.cursor = 0;
                self.message = Some(format!("sorted by {}", self.sort.label()));
                self.load(PageFrom::Start)
            }
            Action::ClearFilter => {
                if self.filter == ListFilter::All {
                    return Vec::new();
                }
                self.set_filter(ListFilter::All, None)
            }
            Action::ToggleReasoning => {
                self.show_reasoning = !self.show_reasoning;
                self.pane.scroll = 0;
                self.relayout();
                Vec::new()
            }
            Action::ToggleTokens => self.toggle_tokens(),
            Action::ScrollDetailDown => {
                self.scroll_pane(3);
                Vec::new()
            }
            Action::ScrollDetailUp => {
                self.scroll_pane(-3);
                Vec::new()
            }
            Action::GroupView => {
                if self.group.take().is_some() {
                    return Vec::new();
                }
                self.current().map(|r| vec![Effect::LoadGroup { prompt_id: r.prompt_id }]).unwrap_or_default()
            }
            Action::FocusDetail => {
                if self.current().is_some() {
                    self.focus = Focus::Detail;
                }
                Vec::new()
            }
            Action::FocusList => {
                self.focus = Focus::List;
                Vec::new()
            }
            Action::Back => {
                if self.group.take().is_none() {
                    self.focus = Focus::List;
                }
                Vec::new()
            }
            Action::SearchTrace => {
                if self.detail.is_some() {
                    self.focus = Focus::Detail;
                    let text = self.pane.search.as_ref().map(|s| s.query.clone()).unwrap_or_default();
                    self.input = Some(InputLine { kind: InputKind::TraceSearch, text, error: None });
                }
                Vec::new()
            }
            Action::Yank => {
                if self.detail.is_some() || self.group.is_some() {
                    self.yanking = true;
                    self.message = Some("copy: a answer · r reasoning · p prompt · s the whole sample (JSON) · esc nothing".into());
                }
                Vec::new()
            }
            Action::Pager => {
                if let Some(text) = self.sample_text() {
                    self.outside.push(Outside::Pager(text));
                }
                Vec::new()
            }
            Action::EditAnswer | Action::EditReference => {
                let reference = action == Action::EditReference;
                let sample = self.group.as_ref().and_then(|g| g.current()).or(self.detail.as_ref().map(|d| &d.sample));
                if let Some(s) = sample {
                    let text = if reference { s.text.reference.clone().unwrap_or_default() } else { s.text.answer.clone() };
                    self.outside.push(Outside::Editor { id: s.id, reference, text });
                }
                Vec::new()
            }
            // The token moves from the list (the palette): they move in the pane, focused.
            Action::NextToken | Action::PreviousToken | Action::NextUnsure | Action::PreviousUnsure => {
                if self.tab == Tab::Review && self.group.is_none() {
                    self.focus = Focus::Detail;
                    self.update_pane(action);
                }
                Vec::new()
            }
            // Keys of the sample pane and the group view, where they are not open.
            Action::NextMatch
            | Action::PreviousMatch
            | Action::GroupPrevious
            | Action::GroupNext
            | Action::Pick
            | Action::Diff
            | Action::LinkScroll
            | Action::NextPrompt
            | Action::PreviousPrompt
            // Keys of the Rules tab.
            | Action::ApplyRule
            | Action::EditRule
            | Action::NewRule => Vec::new(),
        }
    }

    /// Takes in a background task's answer.
    pub fn receive(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Page { from, generation, rows } => {
                if generation != self.list_generation {
                    return Vec::new();
                }
                self.take_page(from, rows)
            }
            Msg::Search { generation, hits, scanned, total, done } => {
                if let Some(search) = &mut self.search
                    && search.generation == generation
                {
                    search.hits = hits;
                    search.cursor = search.cursor.min(search.hits.len().saturating_sub(1));
                    search.scanned = scanned;
                    search.total = total;
                    search.done = done;
                }
                Vec::new()
            }
            Msg::Detail { generation, detail } => {
                if generation == self.detail_generation {
                    if detail.as_ref().map(|d| d.sample.id) != self.detail.as_ref().map(|d| d.sample.id) {
                        self.pane.token_cursor = 0;
                    }
                    self.detail = detail.map(|d| *d);
                    self.pane.forget_layout();
                    self.relayout();
                }
                Vec::new()
            }
            Msg::Group { prompt_id, samples } => {
                if self.current().is_some_and(|r| r.prompt_id == prompt_id) {
                    match &mut self.group {
                        Some(g) if g.prompt_id == prompt_id => g.refresh(samples),
                        _ => {
                            let mut g = super::group::Group::new(prompt_id, samples);
                            // Open on the sample the list is on.
                            let id = self.current().map(|r| r.id);
                            g.cursor = g.samples.iter().position(|s| Some(s.id) == id).unwrap_or(0);
                            self.group = Some(g);
                        }
                    }
                    self.relayout();
                }
                Vec::new()
            }
            Msg::Position { generation, id, position } => {
                // Rows read before it since (a page above) moved where the sample is in the window.
                if generation == self.list_generation
                    && let Some(at) = self.rows.iter().position(|r| r.id == id)
                {
                    self.offset = position.map(|p| p - at as i64);
                }
                Vec::new()
            }
            Msg::Counts(c) => {
                self.counts = c;
                Vec::new()
            }
            Msg::Stats(s) => {
                self.stats = Some(*s);
                Vec::new()
            }
            Msg::Rules(r) => {
                self.rules = r
                    .iter()
                    .map(|r| RuleRow { name: r.name.clone(), source: r.source.clone(), count: None, overturns: Vec::new() })
                    .collect();
                self.rule_cursor = self.rule_cursor.min(self.rules.len().saturating_sub(1));
                if r.is_empty() { Vec::new() } else { vec![Effect::CountRules(r)] }
            }
            Msg::RuleCounts(rows) => {
                if rows.iter().map(|r| &r.name).eq(self.rules.iter().map(|r| &r.name)) {
                    self.rules = rows;
                }
                Vec::new()
            }
            Msg::Verifiers(names) => {
                self.verifiers = Some(names);
                Vec::new()
            }
            Msg::Stamp(stamp) => self.stamped(stamp),
            Msg::Recounted { decided, counts } => {
                if self.unanswered == 0 && decided == self.decided {
                    self.counts = counts;
                }
                Vec::new()
            }
            Msg::Failed(e) => {
                self.unanswered = self.unanswered.saturating_sub(1);
                self.decided += 1;
                self.message = Some(e);
                // What the store holds, whatever the failed write left.
                let mut effects = vec![Effect::Refresh(self.rows.iter().map(|r| r.id).collect()), Effect::LoadCounts(self.filter.clone())];
                effects.extend(self.reload_current());
                effects
            }
            Msg::ExportPreview(p) => {
                self.export.preview = Some(p);
                Vec::new()
            }
            Msg::ExportProgress(done, total) => {
                if self.export.progress.is_some() {
                    self.export.progress = Some((done, total));
                }
                Vec::new()
            }
            Msg::ExportDone(result) => {
                self.export.progress = None;
                self.message = Some(match &result {
                    Ok(r) => format!("export #{} written: {} samples, {} tokens", r.export_id.unwrap_or(0), r.samples, r.tokens),
                    Err(e) => e.clone(),
                });
                self.export.last = Some(result);
                vec![Effect::LoadExports]
            }
            Msg::Exports(past) => {
                // The Train tab starts from the newest export.
                if let Some(newest) = past.first()
                    && self.train.form.values[1] == super::train_tab::TrainForm::default().values[1]
                {
                    self.train.form.values[1].clone_from(&newest.out_dir);
                }
                self.export.past = past;
                Vec::new()
            }
            Msg::TrainEvent(e) => self.train_event(e),
            Msg::TrainDone(r) => self.train_done(r),
            Msg::RunCurves(c) => self.run_curves(*c),
            Msg::Runs(r) => {
                self.train.past = r;
                Vec::new()
            }
            Msg::Answers(a) => {
                match a {
                    Ok(a) => self.train.answers = a,
                    Err(e) => self.message = Some(format!("the student's answers: {e}")),
                }
                Vec::new()
            }
            Msg::Charts(c) => {
                self.charts = Some(*c);
                Vec::new()
            }
            Msg::RuleCount { name, source, count } => match count {
                Ok(n) if n >= CONFIRM_AT => {
                    let in_order = self.rules.iter().find(|r| r.name == name).and_then(|r| r.count.clone()).and_then(Result::ok);
                    let order = match in_order {
                        Some(k) if k != n => format!(" ({k} after the rules above it)"),
                        _ => String::new(),
                    };
                    self.message = Some(format!(
                        "apply {}? it changes {n} samples{order}: {} applies, any other key cancels",
                        text::sanitize(&name),
                        self.keymap.keys_of(Action::ApplyRule)
                    ));
                    self.confirm = Some(name);
                    Vec::new()
                }
                Ok(_) => vec![Effect::ApplyRule { name, source }],
                Err(e) => {
                    self.message = Some(e);
                    Vec::new()
                }
            },
            Msg::Changed { ids, message, moves } => {
                self.unanswered = self.unanswered.saturating_sub(1);
                self.decided += 1;
                self.message = Some(message);
                // The counts move as the store's history says the change moved them (recounting
                // a million samples per key press would take 200 ms); with a filter, what it
                // lets through may change too, and is counted again.
                for m in &moves {
                    self.counts.shift(m);
                }
                let recount = self.counts.matching != self.counts.total;
                let ids = if ids.is_empty() { self.rows.iter().map(|r| r.id).collect() } else { ids };
                let mut effects = vec![Effect::Refresh(ids)];
                if self.tab == Tab::Rules {
                    effects.push(Effect::LoadRules);
                }
                if recount {
                    effects.push(Effect::LoadCounts(self.filter.clone()));
                }
                effects.extend(self.reload_current());
                effects
            }
            Msg::Rows(fresh) => {
                for f in fresh {
                    if let Some(i) = self.rows.iter().position(|r| r.id == f.id) {
                        self.rows[i] = f;
                    }
                }
                Vec::new()
            }
            Msg::Generations(now) => {
                let stored = |runs: &[crate::ops::generate::Running]| runs.iter().map(|r| r.samples).sum::<u64>();
                let (before, after) = (stored(&self.generating), stored(&now));
                let finished = !self.generating.is_empty() && now.is_empty();
                let scoring = self.generating.iter().all(|r| r.scoring);
                self.generating = now;
                if finished {
                    self.message = Some(if scoring { "scoring finished" } else { "generation finished" }.into());
                }
                if after == before && !finished {
                    return Vec::new();
                }
                // New samples arrived: count them, and let the list read past its old end (at
                // once when the cursor is near it, or the list was empty).
                self.at_end = false;
                let mut effects = vec![Effect::LoadCounts(self.filter.clone())];
                if self.rows.is_empty() {
                    if self.loading.is_none() {
                        effects.extend(self.load(PageFrom::Start));
                    }
                } else {
                    effects.extend(self.prefetch());
                }
                if finished && self.tab == Tab::Stats {
                    effects.push(Effect::LoadStats);
                }
                effects
            }
            Msg::Error(e) => {
                self.loading = None;
                self.message = Some(e);
                Vec::new()
            }
        }
    }

    fn take_page(&mut self, from: PageFrom, rows: Vec<ListRow>) -> Vec<Effect> {
        if self.loading != Some(from) {
            return Vec::new(); // stale: a jump replaced this request
        }
        self.loading = None;
        let before = self.current().map(|r| r.id);
        let full = rows.len() as i64 >= PAGE;
        let mut effects = Vec::new();
        match from {
            PageFrom::Start | PageFrom::End => {
                self.at_start = from == PageFrom::Start || !full;
                self.at_end = from == PageFrom::End || !full;
                self.cursor = if from == PageFrom::End { rows.len().saturating_sub(1) } else { 0 };
                // From the end, the window's place follows from the count of what matches.
                self.offset = if from == PageFrom::Start || self.at_start {
                    Some(0)
                } else {
                    Some((self.counts.matching - rows.len() as i64).max(0))
                };
                self.rows = rows;
            }
            PageFrom::At(id) => {
                if rows.first().map(|r| r.id) != Some(id) {
                    self.message = Some(format!(
                        "no sample #{id} in this list{}",
                        if self.filter_label.is_some() { " (c clears the filter)" } else { "" }
                    ));
                    return Vec::new();
                }
                self.at_start = false;
                self.at_end = !full;
                self.cursor = 0;
                self.rows = rows;
                self.offset = None;
                effects.push(Effect::LoadPosition { id, generation: self.list_generation, filter: self.filter.clone(), sort: self.sort });
            }
            PageFrom::After(_) => {
                self.at_end = !full;
                self.rows.extend(rows);
                if self.rows.len() > WINDOW {
                    let cut = self.rows.len() - WINDOW;
                    self.rows.drain(..cut);
                    self.cursor = self.cursor.saturating_sub(cut);
                    self.offset = self.offset.map(|o| o + cut as i64);
                    self.at_start = false;
                }
            }
            PageFrom::Before(_) => {
                self.at_start = !full;
                let n = rows.len();
                self.rows.splice(0..0, rows);
                self.cursor += n;
                self.offset = if self.at_start { Some(0) } else { self.offset.map(|o| (o - n as i64).max(0)) };
                if self.rows.len() > WINDOW {
                    self.rows.truncate(WINDOW);
                    self.at_end = false;
                }
            }
        }
        // Rows read around the same sample (new samples arriving) leave its detail and scroll be.
        effects.extend(if before.is_some() && self.current().map(|r| r.id) == before { self.prefetch() } else { self.moved() });
        effects
    }

    /// Keys on the Rules tab: move among the saved rules, apply one, edit or add one.
    fn update_rules(&mut self, action: Action) -> Vec<Effect> {
        let selected = self.rules.get(self.rule_cursor).cloned();
        if action != Action::ApplyRule && self.confirm.take().is_some() {
            self.message = Some("not applied".into());
            return Vec::new();
        }
        match action {
            Action::SelectNext | Action::SelectPrevious => {
                self.rule_cursor = action.moved_cursor(self.rule_cursor, self.rules.len()).unwrap_or(self.rule_cursor);
                Vec::new()
            }
            Action::ApplyRule => {
                let confirmed = self.confirm.take();
                match selected {
                    Some(r) if confirmed.as_ref() == Some(&r.name) => vec![Effect::ApplyRule { name: r.name, source: r.source }],
                    // Count what it would change alone first: a large change asks.
                    Some(r) => vec![Effect::DryRunRule { name: r.name, source: r.source }],
                    None => Vec::new(),
                }
            }
            Action::EditRule | Action::NewRule => {
                let text = match (action, selected) {
                    (Action::EditRule, Some(r)) => format!("{}: {}", r.name, r.source),
                    _ => String::new(),
                };
                self.input = Some(InputLine { kind: InputKind::Rule, text, error: None });
                Vec::new()
            }
            Action::Undo => vec![Effect::Undo],
            Action::Redo => vec![Effect::Redo],
            _ => Vec::new(),
        }
    }

    /// A key pressed: the line being typed takes it, else what to copy after `y`, else its
    /// action in the key context (the group view's, the sample pane's, everywhere's).
    pub fn key(&mut self, key: &ratatui::crossterm::event::KeyEvent) -> Vec<Effect> {
        if self.input.is_some() {
            return self.key_input(key);
        }
        if std::mem::take(&mut self.yanking) {
            self.yank(key);
            return Vec::new();
        }
        match self.keymap.action(key, self.context()) {
            Some(action) => self.update(action),
            // Any key closes the help, bound or not.
            None if self.help => {
                self.help = false;
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Jumps the list to sample `id` (the filter and order stay).
    pub fn jump_to(&mut self, id: i64) -> Vec<Effect> {
        self.group = None;
        self.load(PageFrom::At(id))
    }

    /// A key while a line is being typed: text editing, Enter to submit, Esc to cancel, and
    /// ↑/↓ to pick among search hits or palette lines.
    pub fn key_input(&mut self, key: &ratatui::crossterm::event::KeyEvent) -> Vec<Effect> {
        use ratatui::crossterm::event::{KeyCode, KeyModifiers};
        let Some(input) = &mut self.input else { return Vec::new() };
        let kind = input.kind;
        match key.code {
            KeyCode::Esc => {
                self.input = None;
                self.search = None;
                if kind == InputKind::TraceSearch {
                    self.pane.search = None;
                }
                return Vec::new();
            }
            KeyCode::Enter => return self.submit(),
            KeyCode::Up | KeyCode::Down if kind == InputKind::Search => {
                if let Some(s) = &mut self.search {
                    let last = s.hits.len().saturating_sub(1);
                    s.cursor = if key.code == KeyCode::Up { s.cursor.saturating_sub(1) } else { (s.cursor + 1).min(last) };
                }
                return Vec::new();
            }
            KeyCode::Up | KeyCode::Down if kind == InputKind::Palette => {
                let last = self.palette.len().saturating_sub(1);
                self.palette_cursor =
                    if key.code == KeyCode::Up { self.palette_cursor.saturating_sub(1) } else { (self.palette_cursor + 1).min(last) };
                return Vec::new();
            }
            KeyCode::Backspace => {
                input.text.pop();
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => input.text.clear(),
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => input.text.push(c),
            _ => return Vec::new(),
        }
        input.error = None;
        match kind {
            InputKind::Palette => {
                let text = input.text.clone();
                self.palette = super::palette::choices(&text);
                self.palette_cursor = 0;
                return Vec::new();
            }
            InputKind::TraceSearch => {
                // The pane follows the search as it is typed.
                let text = input.text.clone();
                self.search_pane(&text);
                return Vec::new();
            }
            InputKind::Search => {}
            _ => return Vec::new(),
        }
        let query = input.text.clone();
        if query.trim().is_empty() {
            self.search = None;
            return Vec::new();
        }
        // Every keystroke starts a new search; the previous scan stops at its next chunk.
        self.search_generation += 1;
        let generation = self.search_generation;
        let keep = self.search.take().map(|s| s.hits).unwrap_or_default();
        self.search = Some(SearchState { generation, hits: keep, ..SearchState::default() });
        vec![Effect::Search { generation, query }]
    }

    fn submit(&mut self) -> Vec<Effect> {
        let Some(input) = self.input.clone() else { return Vec::new() };
        let text = input.text.trim().to_owned();
        match input.kind {
            InputKind::Filter => {
                if text.is_empty() {
                    self.input = None;
                    return self.set_filter(ListFilter::All, None);
                }
                let names = self.verifiers.as_deref().map_or(Ok(()), |known| crate::rules::check_names(&text, known));
                match names.and_then(|()| crate::rules::parse_expr(&text)) {
                    Ok(expr) => {
                        self.input = None;
                        let label = format!("`{expr}`");
                        self.set_filter(ListFilter::Expr(expr), Some(label))
                    }
                    Err(e) => {
                        if let Some(i) = &mut self.input {
                            i.error = Some(format!("column {}: {}", e.column, e.message));
                        }
                        Vec::new()
                    }
                }
            }
            InputKind::FullText => {
                self.input = None;
                if text.is_empty() {
                    return self.set_filter(ListFilter::All, None);
                }
                let label = format!("text \"{text}\"");
                self.set_filter(ListFilter::Text(text), Some(label))
            }
            InputKind::Rule => match crate::rules::parse_rule(&text) {
                Ok(rule) => {
                    let Some(name) = rule.name.clone() else {
                        if let Some(i) = &mut self.input {
                            i.error = Some("name the rule: `name: reject where ...`".into());
                        }
                        return Vec::new();
                    };
                    self.input = None;
                    let mut bare = rule;
                    bare.name = None;
                    vec![Effect::SaveRule { name, source: bare.to_string() }]
                }
                Err(e) => {
                    if let Some(i) = &mut self.input {
                        i.error = Some(format!("column {}: {}", e.column, e.message));
                    }
                    Vec::new()
                }
            },
            InputKind::ExportField => self.submit_export_field(text),
            InputKind::TraceSearch => {
                self.input = None;
                self.search_pane(&text);
                Vec::new()
            }
            InputKind::Palette => {
                self.input = None;
                let choice = self.palette.get(self.palette_cursor).cloned();
                self.palette.clear();
                match choice {
                    Some(super::palette::Choice::Run(action)) => self.update(action),
                    Some(super::palette::Choice::Jump(id)) => self.jump_to(id),
                    None => {
                        self.message = Some(format!("no action matches \"{}\"", text::sanitize(&text)));
                        Vec::new()
                    }
                }
            }
            InputKind::TrainField => self.submit_train_field(&text),
            InputKind::Note => {
                self.input = None;
                self.current().map(|r| vec![Effect::SetNote { id: r.id, text }]).unwrap_or_default()
            }
            InputKind::Search => {
                self.input = None;
                let Some(search) = self.search.take() else { return Vec::new() };
                let Some(hit) = search.hits.get(search.cursor) else { return Vec::new() };
                match hit.target {
                    Target::Teacher(id) => {
                        let label = format!("teacher {}", hit.text);
                        self.set_filter(ListFilter::Teacher(id), Some(label))
                    }
                    Target::Prompt(_) => {
                        let ids: Vec<i64> =
                            search.hits.iter().filter_map(|h| if let Target::Prompt(id) = h.target { Some(id) } else { None }).collect();
                        let label = format!("search \"{text}\" ({} prompts)", ids.len());
                        self.set_filter(ListFilter::Prompts(std::sync::Arc::new(ids)), Some(label))
                    }
                }
            }
        }
    }

    /// The status line's text.
    #[must_use]
    pub fn status_line(&self) -> String {
        let c = &self.counts;
        let pos = match (self.current(), self.offset) {
            (None, _) => "no samples".to_owned(),
            (Some(_), Some(o)) => (o + self.cursor as i64 + 1).to_string(),
            (Some(r), None) => format!("#{}", r.id),
        };
        let id = match (self.current(), self.offset) {
            (Some(r), Some(_)) => format!(" · #{}", r.id),
            _ => String::new(),
        };
        let marks = if self.marks.is_empty() { String::new() } else { format!(" │ {} marked", self.marks.len()) };
        let of = match &self.filter_label {
            Some(label) => format!("{} matching {label}", c.matching),
            None => c.total.to_string(),
        };
        let mut generating = String::new();
        for g in &self.generating {
            use std::fmt::Write as _;
            let failed = if g.failures == 0 { String::new() } else { format!(", {} failed", g.failures) };
            if g.scoring {
                let _ = write!(generating, " │ scoring {}: {}/{} samples, {} scored{failed}", g.teacher, g.requests, g.total, g.samples);
            } else {
                let _ =
                    write!(generating, " │ generating {}: {}/{} requests, {} samples{failed}", g.teacher, g.requests, g.total, g.samples);
            }
        }
        let decisions = format!(" {pos} of {of}{id} │ pending {} accepted {} rejected {}", c.pending, c.accepted, c.rejected);
        let labels = format!(" │ hard {} soft {} pseudo {}", c.hard, c.soft, c.pseudo);
        let full = format!("{decisions}{labels}{marks}{generating}");
        if generating.is_empty() {
            return full;
        }
        // A narrow terminal: the running generation matters more than the counts.
        let width = usize::from(self.size.0);
        [full, format!("{decisions}{marks}{generating}")]
            .into_iter()
            .find(|line| line.chars().count() <= width)
            .unwrap_or_else(|| format!(" {pos} of {of}{id}{marks}{generating}"))
    }

    /// The one-line key hints of the current tab (and pane).
    #[must_use]
    pub fn hints(&self) -> String {
        use super::keymap::Context;
        const REVIEW: &[(Action, &str)] = &[
            (Action::SelectNext, "move"),
            (Action::FocusDetail, "read"),
            (Action::Accept, "accept"),
            (Action::Reject, "reject"),
            (Action::LabelHard, "label"),
            (Action::ToggleMark, "mark"),
            (Action::Undo, "undo"),
            (Action::GroupView, "group"),
            (Action::Search, "search"),
            (Action::Filter, "filter"),
            (Action::Sort, "sort"),
            (Action::Yank, "copy"),
            (Action::Palette, "palette"),
        ];
        const DETAIL: &[(Action, &str)] = &[
            (Action::SelectNext, "scroll"),
            (Action::PageDown, "page"),
            (Action::SelectLast, "end"),
            (Action::SearchTrace, "find"),
            (Action::NextMatch, "next"),
            (Action::PreviousMatch, "previous"),
            (Action::FocusList, "list"),
            (Action::Accept, "accept"),
            (Action::Reject, "reject"),
            (Action::Yank, "copy"),
            (Action::Pager, "pager"),
            (Action::ToggleTokens, "tokens"),
        ];
        const GROUP: &[(Action, &str)] = &[
            (Action::GroupNext, "sample"),
            (Action::SelectNext, "scroll"),
            (Action::Accept, "accept"),
            (Action::Reject, "reject"),
            (Action::Pick, "pick"),
            (Action::Diff, "diff"),
            (Action::LinkScroll, "link"),
            (Action::NextPrompt, "next prompt"),
            (Action::Back, "close"),
        ];
        const RULES: &[(Action, &str)] = &[
            (Action::SelectNext, "move"),
            (Action::ApplyRule, "apply"),
            (Action::EditRule, "edit"),
            (Action::NewRule, "new"),
            (Action::Undo, "undo"),
        ];
        const EXPORT: &[(Action, &str)] = &[(Action::SelectNext, "move"), (Action::ApplyRule, "change / run")];
        const TRAIN: &[(Action, &str)] = &[(Action::SelectNext, "move"), (Action::ApplyRule, "change / start / cancel / open")];
        const STATS: &[(Action, &str)] = &[(Action::SelectNext, "scroll"), (Action::PageDown, "page"), (Action::SelectFirst, "top")];
        const ALWAYS: &[(Action, &str)] = &[(Action::NextTab, "tabs"), (Action::Help, "help"), (Action::Quit, "quit")];
        let context = self.context();
        let tab = match (self.tab, context) {
            (Tab::Rules, _) => RULES,
            (Tab::Export, _) => EXPORT,
            (Tab::Train, _) => TRAIN,
            (Tab::Stats, _) => STATS,
            (Tab::Review, Context::Group) => GROUP,
            (Tab::Review, Context::Detail) => DETAIL,
            (Tab::Review, Context::Global) => REVIEW,
        };
        // The first key only: the bar has room for more actions than keys.
        let keys = |a: Action| self.keymap.first_key_in(a, context);
        // Help first: a narrow terminal cuts the bar's end.
        let text: Vec<String> = ALWAYS[1..2]
            .iter()
            .chain(tab)
            .chain([ALWAYS[0], ALWAYS[2]].iter())
            .map(|(a, what)| {
                let keys = match *a {
                    // The three labels share one hint, as do the pairs of moves.
                    Action::LabelHard => [Action::LabelHard, Action::LabelSoft, Action::LabelPseudo].map(keys).join("/"),
                    Action::SelectNext => format!("{}/{}", keys(Action::SelectNext), keys(Action::SelectPrevious)),
                    Action::GroupNext => format!("{}/{}", keys(Action::GroupPrevious), keys(Action::GroupNext)),
                    Action::NextPrompt => format!("{}/{}", keys(Action::PreviousPrompt), keys(Action::NextPrompt)),
                    Action::PageDown => format!("{}/{}", keys(Action::PageDown), keys(Action::PageUp)),
                    a => keys(a),
                };
                format!("{keys} {what}")
            })
            .collect();
        text::truncate(&text.join("  "), usize::from(self.size.0))
    }
}
