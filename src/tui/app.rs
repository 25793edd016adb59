//! The TUI's state and its update function: actions and messages in, effects out. Nothing here
//! awaits or touches the database; effects run in background tasks and answer with messages.

use std::collections::BTreeSet;

use super::action::Action;
use super::data::{Counts, Detail, ListRow, PageFrom};
use super::keymap::KeyMap;
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

/// Work for a background task.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    LoadPage(PageFrom),
    LoadDetail {
        id: i64,
        generation: u64,
    },
    LoadGroup {
        prompt_id: i64,
    },
    LoadCounts,
    LoadStats,
    LoadRules,
    SetStatus {
        ids: Vec<i64>,
        status: Status,
    },
    SetLabel {
        ids: Vec<i64>,
        label: LabelType,
    },
    Undo,
    /// Read these rows again (after a decision).
    Refresh(Vec<i64>),
}

/// A background task's answer.
#[derive(Debug, Clone)]
pub enum Msg {
    Page {
        from: PageFrom,
        rows: Vec<ListRow>,
    },
    Detail {
        generation: u64,
        detail: Option<Box<Detail>>,
    },
    Group {
        prompt_id: i64,
        samples: Vec<(ListRow, String)>,
    },
    Counts(Counts),
    Stats(Box<Stats>),
    Rules(Vec<(String, String)>),
    /// A decision or an undo changed these samples (all loaded rows when none are named).
    Changed {
        ids: Vec<i64>,
        message: String,
    },
    Rows(Vec<ListRow>),
    Error(String),
}

// Independent UI flags (help shown, quitting, window at either end, reasoning unfolded).
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug)]
pub struct App {
    pub keymap: KeyMap,
    pub tab: Tab,
    pub help: bool,
    pub quit: bool,
    /// The loaded window of the sample list, in id order.
    pub rows: Vec<ListRow>,
    pub cursor: usize,
    pub at_start: bool,
    pub at_end: bool,
    /// A page read in flight (one at a time).
    pub loading: Option<PageFrom>,
    pub marks: BTreeSet<i64>,
    pub counts: Counts,
    pub detail: Option<Detail>,
    detail_generation: u64,
    pub detail_scroll: usize,
    pub show_reasoning: bool,
    pub group: Option<(i64, Vec<(ListRow, String)>)>,
    pub stats: Option<Stats>,
    pub rules: Vec<(String, String)>,
    pub message: Option<String>,
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
            marks: BTreeSet::new(),
            counts: Counts::default(),
            detail: None,
            detail_generation: 0,
            detail_scroll: 0,
            show_reasoning: true,
            group: None,
            stats: None,
            rules: Vec::new(),
            message: None,
            size,
        }
    }

    /// What to load before the first frame.
    #[must_use]
    pub fn start(&mut self) -> Vec<Effect> {
        self.loading = Some(PageFrom::Start);
        vec![Effect::LoadPage(PageFrom::Start), Effect::LoadCounts]
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

    /// The detail, as wrapped lines (recomputed per frame only for the visible part's source).
    #[must_use]
    pub fn detail_lines(&self) -> Vec<(super::views::review::Part, String)> {
        super::views::review::detail_lines(self)
    }

    fn moved(&mut self) -> Vec<Effect> {
        self.detail_scroll = 0;
        let mut effects = Vec::new();
        if let Some((id, prompt_id)) = self.current().map(|r| (r.id, r.prompt_id)) {
            self.detail_generation += 1;
            effects.push(Effect::LoadDetail { id, generation: self.detail_generation });
            if let Some((pid, _)) = &self.group
                && *pid != prompt_id
            {
                effects.push(Effect::LoadGroup { prompt_id });
            }
        }
        if self.loading.is_none() {
            if self.cursor + PREFETCH >= self.rows.len() && !self.at_end {
                if let Some(last) = self.rows.last() {
                    let from = PageFrom::After(last.id);
                    self.loading = Some(from);
                    effects.push(Effect::LoadPage(from));
                }
            } else if self.cursor < PREFETCH
                && !self.at_start
                && let Some(first) = self.rows.first()
            {
                let from = PageFrom::Before(first.id);
                self.loading = Some(from);
                effects.push(Effect::LoadPage(from));
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
        self.loading = Some(from);
        vec![Effect::LoadPage(from)]
    }

    fn targets(&self) -> Vec<i64> {
        self.current().map(|r| vec![r.id]).unwrap_or_default()
    }

    /// Carries out an action.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.message = None;
        if self.help && !matches!(action, Action::Help | Action::Quit) {
            self.help = false;
            return Vec::new();
        }
        match action {
            Action::Quit => {
                self.quit = true;
                Vec::new()
            }
            Action::Help => {
                self.help = !self.help;
                Vec::new()
            }
            Action::NextTab | Action::PreviousTab => {
                let i = Tab::ALL.iter().position(|t| *t == self.tab).unwrap_or(0);
                let n = Tab::ALL.len();
                self.tab = Tab::ALL[if action == Action::NextTab { (i + 1) % n } else { (i + n - 1) % n }];
                match self.tab {
                    Tab::Stats => vec![Effect::LoadStats],
                    Tab::Rules => vec![Effect::LoadRules],
                    _ => Vec::new(),
                }
            }
            _ if self.tab != Tab::Review => Vec::new(),
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
            Action::ToggleReasoning => {
                self.show_reasoning = !self.show_reasoning;
                self.detail_scroll = 0;
                Vec::new()
            }
            Action::ScrollDetailDown => {
                let max = self.detail_lines().len().saturating_sub(1);
                self.detail_scroll = (self.detail_scroll + 3).min(max);
                Vec::new()
            }
            Action::ScrollDetailUp => {
                self.detail_scroll = self.detail_scroll.saturating_sub(3);
                Vec::new()
            }
            Action::GroupView => {
                if self.group.take().is_some() {
                    return Vec::new();
                }
                self.current().map(|r| vec![Effect::LoadGroup { prompt_id: r.prompt_id }]).unwrap_or_default()
            }
        }
    }

    /// Takes in a background task's answer.
    pub fn receive(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Page { from, rows } => self.take_page(from, rows),
            Msg::Detail { generation, detail } => {
                if generation == self.detail_generation {
                    self.detail = detail.map(|d| *d);
                }
                Vec::new()
            }
            Msg::Group { prompt_id, samples } => {
                if self.current().is_some_and(|r| r.prompt_id == prompt_id) {
                    self.group = Some((prompt_id, samples));
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
                self.rules = r;
                Vec::new()
            }
            Msg::Changed { ids, message } => {
                self.message = Some(message);
                let ids = if ids.is_empty() { self.rows.iter().map(|r| r.id).collect() } else { ids };
                let mut effects = vec![Effect::Refresh(ids), Effect::LoadCounts];
                if let Some((id, prompt_id)) = self.current().map(|r| (r.id, r.prompt_id)) {
                    self.detail_generation += 1;
                    effects.push(Effect::LoadDetail { id, generation: self.detail_generation });
                    if self.group.is_some() {
                        effects.push(Effect::LoadGroup { prompt_id });
                    }
                }
                effects
            }
            Msg::Rows(fresh) => {
                for f in fresh {
                    if let Ok(i) = self.rows.binary_search_by_key(&f.id, |r| r.id) {
                        self.rows[i] = f;
                    }
                }
                Vec::new()
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
        let full = rows.len() as i64 >= PAGE;
        match from {
            PageFrom::Start | PageFrom::End => {
                self.at_start = from == PageFrom::Start || !full;
                self.at_end = from == PageFrom::End || !full;
                self.cursor = if from == PageFrom::End { rows.len().saturating_sub(1) } else { 0 };
                self.rows = rows;
            }
            PageFrom::After(_) => {
                self.at_end = !full;
                self.rows.extend(rows);
                if self.rows.len() > WINDOW {
                    let cut = self.rows.len() - WINDOW;
                    self.rows.drain(..cut);
                    self.cursor = self.cursor.saturating_sub(cut);
                    self.at_start = false;
                }
            }
            PageFrom::Before(_) => {
                self.at_start = !full;
                let n = rows.len();
                self.rows.splice(0..0, rows);
                self.cursor += n;
                if self.rows.len() > WINDOW {
                    self.rows.truncate(WINDOW);
                    self.at_end = false;
                }
            }
        }
        self.moved()
    }

    /// The status line's text.
    #[must_use]
    pub fn status_line(&self) -> String {
        let c = &self.counts;
        let pos = if self.rows.is_empty() { "no samples".to_owned() } else { format!("#{}", self.current().map_or(0, |r| r.id)) };
        let marks = if self.marks.is_empty() { String::new() } else { format!(" │ {} marked", self.marks.len()) };
        format!(
            " {pos} of {} │ pending {} accepted {} rejected {} │ hard {} soft {} pseudo {}{marks}",
            c.total, c.pending, c.accepted, c.rejected, c.hard, c.soft, c.pseudo
        )
    }

    /// The one-line key hints of the current tab.
    #[must_use]
    pub fn hints(&self) -> String {
        let k = |a| self.keymap.keys_of(a);
        let hints = [
            (Action::SelectNext, "move"),
            (Action::Accept, "accept"),
            (Action::Reject, "reject"),
            (Action::LabelHard, "hard"),
            (Action::LabelSoft, "soft"),
            (Action::LabelPseudo, "pseudo"),
            (Action::ToggleMark, "mark"),
            (Action::Undo, "undo"),
            (Action::GroupView, "group"),
            (Action::NextTab, "tabs"),
            (Action::Help, "help"),
            (Action::Quit, "quit"),
        ];
        let text: Vec<String> = hints.iter().map(|(a, what)| format!("{} {what}", k(*a))).collect();
        text::truncate(&text.join("  "), usize::from(self.size.0))
    }
}
