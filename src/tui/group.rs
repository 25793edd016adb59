//! The group view: a prompt's n samples side by side, where best-of-n is judged. A cursor
//! moves among them (paged when more than fit), each scrolls alone or all together, the one
//! under the cursor is accepted, rejected or picked (accepted, its siblings rejected, as one
//! undoable action), and every answer can be read as a word-level diff against one of them.

use unicode_width::UnicodeWidthChar;

use super::action::Action;
use super::app::{App, Effect};
use crate::domain::{LabelType, Status};
use crate::store::samples::Sample;

/// One prompt's samples as the group view shows them.
#[derive(Debug, Clone)]
pub struct Group {
    pub prompt_id: i64,
    pub samples: Vec<Sample>,
    pub cursor: usize,
    /// Each sample's scroll, in lines of its text.
    pub scroll: Vec<usize>,
    /// The movement keys scroll every sample (true) or the one under the cursor.
    pub linked: bool,
    /// The sample every other answer is compared with, word by word.
    pub diff_base: Option<i64>,
    /// Each sample's text laid out, once per read, width, fold and diff (not per frame or key).
    bodies: Vec<Vec<SegLine>>,
    laid_out: Option<(usize, bool, Option<i64>)>,
}

impl Group {
    #[must_use]
    pub fn new(prompt_id: i64, samples: Vec<Sample>) -> Self {
        let n = samples.len();
        Self { prompt_id, samples, cursor: 0, scroll: vec![0; n], linked: true, diff_base: None, bodies: Vec::new(), laid_out: None }
    }

    /// The same prompt read again (after a decision): cursor, scrolls and diff stay.
    pub fn refresh(&mut self, samples: Vec<Sample>) {
        let at = self.samples.get(self.cursor).map(|s| s.id);
        let old: Vec<(i64, usize)> = self.samples.iter().map(|s| s.id).zip(self.scroll.iter().copied()).collect();
        self.scroll = samples.iter().map(|s| old.iter().find(|(id, _)| *id == s.id).map_or(0, |(_, sc)| *sc)).collect();
        self.cursor = at.and_then(|id| samples.iter().position(|s| s.id == id)).unwrap_or(0).min(samples.len().saturating_sub(1));
        if self.diff_base.is_some_and(|b| !samples.iter().any(|s| s.id == b)) {
            self.diff_base = None;
        }
        self.samples = samples;
        self.laid_out = None;
    }

    /// Lays every sample's text out again when the samples, the width, the fold or the diff's
    /// base changed since the last time.
    pub fn lay_out(&mut self, width: usize, show_reasoning: bool) {
        let key = (width, show_reasoning, self.diff_base);
        if self.laid_out == Some(key) {
            return;
        }
        let base = self.base();
        self.bodies = self.samples.iter().map(|s| body(s, base, show_reasoning, width)).collect();
        self.laid_out = Some(key);
    }

    #[must_use]
    pub fn current(&self) -> Option<&Sample> {
        self.samples.get(self.cursor)
    }

    /// The samples shown on the page that holds the cursor: `(first, count)`.
    #[must_use]
    pub fn page(&self, per_page: usize) -> (usize, usize) {
        let per = per_page.max(1);
        let first = self.cursor / per * per;
        (first, per.min(self.samples.len().saturating_sub(first)))
    }

    /// Columns on screen for a terminal `width` wide: a page's worth, or fewer samples wider.
    #[must_use]
    pub fn columns(&self, width: u16) -> usize {
        per_page(width).min(self.samples.len()).max(1)
    }

    fn base(&self) -> Option<&Sample> {
        self.diff_base.and_then(|b| self.samples.iter().find(|s| s.id == b))
    }
}

/// What a piece of a laid-out line is, for its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    Heading,
    Reasoning,
    Text,
    /// Words this answer has that the diff's base does not.
    Added,
    /// Words of the base this answer does not have.
    Removed,
}

/// One laid-out line: its pieces.
pub type SegLine = Vec<(Seg, String)>;

/// How many samples fit side by side on a terminal `width` columns wide: 38 columns each, 1 to 4.
#[must_use]
pub fn per_page(width: u16) -> usize {
    (usize::from(width.saturating_sub(2)) / 38).clamp(1, 4)
}

/// Wraps styled text into lines of at most `width` display columns, breaking between words
/// where it can; newlines break lines.
#[must_use]
pub fn wrap_segments(pieces: &[(Seg, String)], width: usize) -> Vec<SegLine> {
    let width = width.max(1);
    let mut lines: Vec<SegLine> = Vec::new();
    let mut line: SegLine = Vec::new();
    let mut used = 0;
    let push = |line: &mut SegLine, seg: Seg, text: &str| match line.last_mut() {
        Some((s, t)) if *s == seg => t.push_str(text),
        _ => line.push((seg, text.to_owned())),
    };
    for (seg, text) in pieces {
        let text = super::text::sanitize(text);
        for token in tokens(&text) {
            if token == "\n" {
                lines.push(std::mem::take(&mut line));
                used = 0;
                continue;
            }
            let w: usize = token.chars().map(|c| c.width().unwrap_or(0)).sum();
            let blank = token.chars().all(char::is_whitespace);
            if used + w <= width {
                push(&mut line, *seg, token);
                used += w;
                continue;
            }
            if blank {
                // A break: the spaces go (removed spaces stay visible as a mark).
                if *seg == Seg::Removed {
                    push(&mut line, *seg, "·");
                }
                lines.push(std::mem::take(&mut line));
                used = 0;
                continue;
            }
            if w <= width && used > 0 {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
            for c in token.chars() {
                let cw = c.width().unwrap_or(0);
                if used + cw > width && used > 0 {
                    lines.push(std::mem::take(&mut line));
                    used = 0;
                }
                push(&mut line, *seg, c.encode_utf8(&mut [0; 4]));
                used += cw;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Words, runs of spaces and single newlines.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut kind = None;
    for (i, c) in text.char_indices() {
        let k = if c == '\n' {
            0
        } else if c.is_whitespace() {
            1
        } else {
            2
        };
        if kind != Some(k) || k == 0 {
            if i > start {
                out.push(&text[start..i]);
            }
            start = i;
            kind = Some(k);
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// A sample's text as its column shows it: the reasoning (unless folded), then the answer,
/// as a word diff against `base` when one is set and it is another sample.
#[must_use]
pub fn body(sample: &Sample, base: Option<&Sample>, show_reasoning: bool, width: usize) -> Vec<SegLine> {
    let mut pieces: Vec<(Seg, String)> = Vec::new();
    if let Some(r) = &sample.text.reasoning {
        if show_reasoning {
            pieces.push((Seg::Heading, format!("Reasoning ({} chars)\n", r.chars().count())));
            pieces.push((Seg::Reasoning, format!("{}\n\n", r.trim_end())));
        } else {
            pieces.push((Seg::Heading, format!("Reasoning ({} chars, folded)\n\n", r.chars().count())));
        }
    }
    let mut answer = sample.text.answer.clone();
    for call in super::text::tool_call_lines(sample.text.tool_calls.as_ref()) {
        if !answer.is_empty() {
            answer.push('\n');
        }
        answer.push_str(&call);
    }
    match base {
        Some(b) if b.id != sample.id => {
            pieces.push((Seg::Heading, format!("Answer (against #{})\n", b.id)));
            let diff = similar::TextDiff::from_words(b.text.answer.as_str(), answer.as_str());
            for change in diff.iter_all_changes() {
                let seg = match change.tag() {
                    similar::ChangeTag::Equal => Seg::Text,
                    similar::ChangeTag::Insert => Seg::Added,
                    similar::ChangeTag::Delete => Seg::Removed,
                };
                pieces.push((seg, change.value().to_owned()));
            }
        }
        Some(_) => {
            pieces.push((Seg::Heading, "Answer (the diff's base)\n".to_owned()));
            pieces.push((Seg::Text, answer));
        }
        None => {
            pieces.push((Seg::Heading, "Answer\n".to_owned()));
            pieces.push((Seg::Text, answer));
        }
    }
    wrap_segments(&pieces, width)
}

impl App {
    /// The text width of one column of the group view.
    #[must_use]
    pub fn group_column_width(&self) -> usize {
        let per = self.group.as_ref().map_or(1, |g| g.columns(self.size.0));
        (usize::from(self.size.0.saturating_sub(2)) / per).saturating_sub(1).max(4)
    }

    /// Lines of each column's fixed header: status, teacher, finish and tokens, one per score.
    #[must_use]
    pub fn group_header_height(&self) -> usize {
        let Some(g) = &self.group else { return 0 };
        let (first, n) = g.page(per_page(self.size.0));
        3 + g.samples[first..first + n].iter().map(|s| s.scores.len()).max().unwrap_or(0)
    }

    /// Rows of text a column shows below its header.
    #[must_use]
    pub fn group_body_height(&self) -> usize {
        // Tabs, status and hints; the border; the prompt line; the header; the scroll line.
        usize::from(self.size.1).saturating_sub(3 + 2 + 1 + 1).saturating_sub(self.group_header_height()).max(1)
    }

    /// The laid-out text of sample `i` of the group (laid out by `relayout`).
    #[must_use]
    pub fn group_body(&self, i: usize) -> &[SegLine] {
        self.group.as_ref().and_then(|g| g.bodies.get(i)).map_or(&[], Vec::as_slice)
    }

    fn scroll_group(&mut self, delta: Option<isize>) {
        let height = self.group_body_height();
        let Some(g) = &self.group else { return };
        let which: Vec<usize> = if g.linked { (0..g.samples.len()).collect() } else { vec![g.cursor] };
        let lens: Vec<(usize, usize)> = which.into_iter().map(|i| (i, self.group_body(i).len())).collect();
        let Some(g) = &mut self.group else { return };
        for (i, len) in lens {
            let max = len.saturating_sub(height) as isize;
            let to = match delta {
                Some(d) => g.scroll[i] as isize + d,
                None => max,
            };
            g.scroll[i] = to.clamp(0, max) as usize;
        }
    }

    /// The keys of the group view; `None` for keys it leaves to the list.
    pub fn update_group(&mut self, action: Action) -> Option<Vec<Effect>> {
        let page = self.group_body_height().saturating_sub(2).max(1) as isize;
        let g = self.group.as_mut()?;
        let current = g.current().map(|s| s.id);
        let decide = |status| current.map(|id| vec![Effect::SetStatus { ids: vec![id], status }]).unwrap_or_default();
        let label = |label| current.map(|id| vec![Effect::SetLabel { ids: vec![id], label }]).unwrap_or_default();
        Some(match action {
            Action::GroupNext | Action::GroupPrevious => {
                let last = g.samples.len().saturating_sub(1);
                g.cursor = if action == Action::GroupNext { (g.cursor + 1).min(last) } else { g.cursor.saturating_sub(1) };
                Vec::new()
            }
            Action::SelectNext | Action::ScrollDetailDown => {
                self.scroll_group(Some(if action == Action::SelectNext { 1 } else { 3 }));
                Vec::new()
            }
            Action::SelectPrevious | Action::ScrollDetailUp => {
                self.scroll_group(Some(if action == Action::SelectPrevious { -1 } else { -3 }));
                Vec::new()
            }
            Action::PageDown => {
                self.scroll_group(Some(page));
                Vec::new()
            }
            Action::PageUp => {
                self.scroll_group(Some(-page));
                Vec::new()
            }
            Action::SelectFirst => {
                self.scroll_group(Some(-(isize::MAX / 2)));
                Vec::new()
            }
            Action::SelectLast => {
                self.scroll_group(None);
                Vec::new()
            }
            Action::LinkScroll => {
                g.linked = !g.linked;
                self.message = Some(if g.linked { "the samples scroll together".into() } else { "each sample scrolls alone".into() });
                Vec::new()
            }
            Action::Diff => {
                g.diff_base = if g.diff_base == current { None } else { current };
                self.message = Some(match g.diff_base {
                    Some(id) => format!("every answer against #{id}: added words marked +, removed ones −"),
                    None => "diff off".into(),
                });
                self.relayout();
                Vec::new()
            }
            Action::Accept => decide(Status::Accepted),
            Action::Reject => decide(Status::Rejected),
            Action::Reset => decide(Status::Pending),
            Action::LabelHard => label(LabelType::Hard),
            Action::LabelSoft => label(LabelType::Soft),
            Action::LabelPseudo => label(LabelType::Pseudo),
            Action::Pick => {
                let Some(keep) = current else { return Some(Vec::new()) };
                let siblings: Vec<i64> = g.samples.iter().map(|s| s.id).filter(|id| *id != keep).collect();
                vec![Effect::Pick { keep, siblings }]
            }
            Action::NextPrompt | Action::PreviousPrompt => self.step_prompt(action == Action::NextPrompt),
            Action::Back | Action::GroupView => {
                self.group = None;
                Vec::new()
            }
            _ => return None,
        })
    }

    /// Moves the list to the first sample of the next (or previous) prompt, whose group opens.
    fn step_prompt(&mut self, forward: bool) -> Vec<Effect> {
        let Some(pid) = self.current().map(|r| r.prompt_id) else { return Vec::new() };
        let found = if forward {
            (self.cursor + 1..self.rows.len()).find(|&i| self.rows[i].prompt_id != pid)
        } else {
            // The previous prompt's first row.
            (0..self.cursor).rev().find(|&i| self.rows[i].prompt_id != pid).map(|end| {
                let prev = self.rows[end].prompt_id;
                (0..=end).rev().take_while(|&i| self.rows[i].prompt_id == prev).last().unwrap_or(end)
            })
        };
        if let Some(i) = found {
            self.cursor = i;
        } else {
            self.message = Some(if forward { "no further prompt read yet".into() } else { "no earlier prompt read yet".into() });
        }
        // Read its sample and group (or, with none found, let the list read on for the next press).
        self.moved()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[SegLine]) -> Vec<String> {
        lines.iter().map(|l| l.iter().map(|(_, t)| t.as_str()).collect()).collect()
    }

    #[test]
    fn segments_wrap_between_words_and_keep_their_kind() {
        let lines = wrap_segments(&[(Seg::Text, "the answer is ".into()), (Seg::Added, "\\frac{1}{2}".into())], 16);
        assert_eq!(text(&lines), vec!["the answer is ", "\\frac{1}{2}"]);
        assert_eq!(lines[1], vec![(Seg::Added, "\\frac{1}{2}".to_owned())]);
        // A word wider than the line is cut; newlines break.
        let lines = wrap_segments(&[(Seg::Text, "abcdefghij\nk".into())], 4);
        assert_eq!(text(&lines), vec!["abcd", "efgh", "ij", "k"]);
        // Control characters never reach the terminal.
        let lines = wrap_segments(&[(Seg::Text, "a\u{1b}]52;c;x\u{7}".into())], 40);
        assert!(!text(&lines)[0].contains('\u{1b}'));
    }

    #[test]
    fn pages_hold_the_cursor() {
        let mut g = Group::new(1, Vec::new());
        g.samples = Vec::new();
        assert_eq!(g.page(4), (0, 0));
        assert_eq!(per_page(80), 2);
        assert_eq!(per_page(160), 4);
        assert_eq!(per_page(30), 1);
    }
}
