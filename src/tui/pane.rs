//! The sample pane: the selected sample laid out once per sample, width and fold (not per
//! frame), scrolled by line or page and never past its end, and searched with `/`, `n`, `N`.

use super::action::Action;
use super::app::App;
use super::views::review::Part;

/// The sample laid out as wrapped lines, its scroll, and a search inside it.
#[derive(Debug, Clone, Default)]
pub struct Pane {
    pub lines: Vec<(Part, String)>,
    pub scroll: usize,
    pub search: Option<TraceSearch>,
    /// Where the token view's tokens are on the lines.
    pub tokens: TokenSpans,
    /// The token view's cursor: a position of the scored completion.
    pub token_cursor: usize,
    /// The sample, width, fold and token view the lines were laid out for.
    laid_out: Option<(i64, usize, bool, bool)>,
}

/// The token view laid out: on each line that holds tokens, every token's first character,
/// length in characters and position; and the line each position starts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSpans {
    pub by_line: std::collections::HashMap<usize, Vec<(usize, usize, usize)>>,
    pub line_of: Vec<usize>,
}

/// The teacher gives a token below this probability less than even odds: `]` and `[` stop there.
pub const UNSURE: f32 = -std::f32::consts::LN_2;

/// A search inside the sample: every match, by line and character range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSearch {
    pub query: String,
    pub hits: Vec<Hit>,
    /// The match shown (an index into `hits`).
    pub current: usize,
}

/// One match: its line, and its first character and length on that line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub line: usize,
    pub start: usize,
    pub len: usize,
}

/// Every case-insensitive match of `query` in `lines` (a match across a wrap is not found).
#[must_use]
pub fn find(lines: &[(Part, String)], query: &str) -> Vec<Hit> {
    let needle: Vec<char> = query.chars().map(|c| c.to_lowercase().next().unwrap_or(c)).collect();
    if needle.is_empty() {
        return Vec::new();
    }
    let mut hits = Vec::new();
    for (i, (_, text)) in lines.iter().enumerate() {
        // Lowercase char by char, keeping one entry per original character.
        let hay: Vec<char> = text.chars().map(|c| c.to_lowercase().next().unwrap_or(c)).collect();
        let mut at = 0;
        while at + needle.len() <= hay.len() {
            if hay[at..at + needle.len()] == needle[..] {
                hits.push(Hit { line: i, start: at, len: needle.len() });
                at += needle.len();
            } else {
                at += 1;
            }
        }
    }
    hits
}

impl Pane {
    /// The sample was read again: lay it out anew even if it is the same one.
    pub fn forget_layout(&mut self) {
        self.laid_out = None;
    }
}

impl App {
    /// Rows of the sample pane that show its text (borders and its fixed header aside).
    #[must_use]
    pub fn pane_height(&self) -> usize {
        usize::from(self.size.1.saturating_sub(5)).saturating_sub(self.pane_header().len()).max(1)
    }

    /// The pane's fixed header: who wrote the sample, how it ended, where it came from, on as
    /// few lines as the width allows (one or two).
    #[must_use]
    pub fn pane_header(&self) -> Vec<String> {
        use super::text::{sanitize, truncate};
        let Some(d) = &self.detail else { return vec![String::new()] };
        let s = &d.sample;
        let parts = [
            format!("teacher {}", sanitize(&s.teacher)),
            format!("finish {} · {} tok", sanitize(s.finish_reason.as_deref().unwrap_or("-")), s.tokens),
            format!("source {}", sanitize(s.source.as_deref().unwrap_or("-"))),
        ];
        let width = self.detail_width();
        let one = parts.join(" · ");
        if one.chars().count() <= width {
            return vec![one];
        }
        let first = format!("{} · {}", parts[0], parts[1]);
        if first.chars().count() <= width {
            return vec![first, truncate(&parts[2], width)];
        }
        vec![truncate(&parts[0], width), truncate(&format!("{} · {}", parts[1], parts[2]), width)]
    }

    /// The furthest the pane scrolls: its last line at the bottom, above the token view's box.
    #[must_use]
    pub fn pane_max_scroll(&self) -> usize {
        self.pane.lines.len().saturating_sub(self.pane_height().saturating_sub(self.token_box_height()).max(1))
    }

    /// Lays the sample (and the open group) out again when the sample, the width or the fold
    /// changed.
    pub fn relayout(&mut self) {
        let (width, show) = (self.group_column_width(), self.show_reasoning);
        if let Some(g) = &mut self.group {
            g.lay_out(width, show);
        }
        let key = self.detail.as_ref().map(|d| (d.sample.id, self.detail_width(), self.show_reasoning, self.token_trace().is_some()));
        if key.is_some() && key == self.pane.laid_out {
            return;
        }
        (self.pane.lines, self.pane.tokens) = super::views::review::detail_lines(self);
        self.pane.laid_out = key;
        self.pane.token_cursor = self.pane.token_cursor.min(self.token_trace().map_or(0, |t| t.len().saturating_sub(1)));
        if let Some(s) = &mut self.pane.search {
            s.hits = find(&self.pane.lines, &s.query);
            s.current = s.current.min(s.hits.len().saturating_sub(1));
        }
        self.pane.scroll = self.pane.scroll.min(self.pane_max_scroll());
    }

    /// The scored tokens the token view shows: when it is on and they are read.
    #[must_use]
    pub fn token_trace(&self) -> Option<&crate::domain::trace::TokenTrace> {
        if !self.show_tokens {
            return None;
        }
        match self.detail.as_ref()?.scoring.as_ref()?.tokens.as_ref()? {
            Ok(trace) if !trace.is_empty() => Some(trace),
            _ => None,
        }
    }

    /// Rows the alternatives box takes at the pane's foot (none without a token cursor).
    #[must_use]
    pub fn token_box_height(&self) -> usize {
        let Some(k) = self.detail.as_ref().and_then(|d| d.scoring.as_ref()).map(|s| s.k) else { return 0 };
        if self.token_trace().is_none() || self.focus != super::app::Focus::Detail {
            return 0;
        }
        let full = usize::try_from(k).unwrap_or(0) + 3;
        let height = usize::from(self.size.1.saturating_sub(5)).saturating_sub(self.pane_header().len());
        full.min(height / 2).max(3.min(height))
    }

    /// Turns the token view on or off; on, the sample is read again with its tokens.
    pub fn toggle_tokens(&mut self) -> Vec<super::app::Effect> {
        self.show_tokens = !self.show_tokens;
        let keys = self.keymap.keys_of(Action::ToggleTokens);
        let scored = self.detail.as_ref().map(|d| (d.sample.id, d.scoring.as_ref().map(|s| s.tokens.is_some())));
        self.message = Some(match (self.show_tokens, scored) {
            (false, _) => format!("token view off ({keys} turns it on)"),
            (true, Some((id, None))) => {
                format!("token view on: #{id} has no teacher log-probs (`retort score-logprobs` scores them)")
            }
            (true, _) => format!(
                "token view on: {}/{} move over the tokens in the pane, {}/{} stop below 50%",
                self.keymap.keys_in(Action::NextToken, super::keymap::Context::Detail),
                self.keymap.keys_in(Action::PreviousToken, super::keymap::Context::Detail),
                self.keymap.keys_in(Action::NextUnsure, super::keymap::Context::Detail),
                self.keymap.keys_in(Action::PreviousUnsure, super::keymap::Context::Detail),
            ),
        });
        if self.show_tokens
            && let Some((_, Some(false))) = scored
        {
            return self.reload_current();
        }
        self.relayout();
        Vec::new()
    }

    /// Moves the token cursor (`action` one of the token moves) and scrolls it into view.
    fn move_token(&mut self, action: Action) {
        let Some(trace) = self.token_trace() else {
            self.message = Some(format!(
                "the token cursor moves in the token view: {} shows it (on a scored sample)",
                self.keymap.keys_of(Action::ToggleTokens)
            ));
            return;
        };
        let (n, at) = (trace.len(), self.pane.token_cursor);
        let unsure = |i: &usize| trace.logprob(*i) < UNSURE;
        let to = match action {
            Action::NextToken => Some((at + 1).min(n - 1)),
            Action::PreviousToken => Some(at.saturating_sub(1)),
            Action::NextUnsure => (at + 1..n).find(unsure),
            _ => (0..at).rev().find(unsure),
        };
        match to {
            Some(to) => self.pane.token_cursor = to,
            None => self.message = Some("no token below 50% that way".to_owned()),
        }
        let Some(&line) = self.pane.tokens.line_of.get(self.pane.token_cursor) else { return };
        let room = self.pane_height().saturating_sub(self.token_box_height()).max(1);
        if line < self.pane.scroll || line >= self.pane.scroll + room {
            self.pane.scroll = line.saturating_sub(room / 3).min(self.pane_max_scroll());
        }
    }

    /// Scrolls the pane by `delta` lines, within its text.
    pub fn scroll_pane(&mut self, delta: isize) {
        let max = self.pane_max_scroll() as isize;
        self.pane.scroll = (self.pane.scroll as isize + delta).clamp(0, max) as usize;
    }

    /// The movement keys while the pane has the focus, and its search.
    pub fn update_pane(&mut self, action: Action) -> bool {
        let page = self.pane_height().saturating_sub(2).max(1) as isize;
        match action {
            Action::SelectNext => self.scroll_pane(1),
            Action::SelectPrevious => self.scroll_pane(-1),
            Action::PageDown => self.scroll_pane(page),
            Action::PageUp => self.scroll_pane(-page),
            Action::SelectFirst => self.pane.scroll = 0,
            Action::SelectLast => self.pane.scroll = self.pane_max_scroll(),
            Action::NextMatch | Action::PreviousMatch => self.next_match(action == Action::NextMatch),
            Action::NextToken | Action::PreviousToken | Action::NextUnsure | Action::PreviousUnsure => self.move_token(action),
            _ => return false,
        }
        true
    }

    /// Searches the sample for `query` and shows the first match at or below the top line.
    pub fn search_pane(&mut self, query: &str) {
        if query.is_empty() {
            self.pane.search = None;
            return;
        }
        let hits = find(&self.pane.lines, query);
        let current = hits.iter().position(|h| h.line >= self.pane.scroll).unwrap_or(0);
        self.pane.search = Some(TraceSearch { query: query.to_owned(), hits, current });
        self.show_match();
    }

    fn next_match(&mut self, forward: bool) {
        let Some(s) = &mut self.pane.search else {
            self.message = Some(format!(
                "no search in this sample: {} searches it",
                self.keymap.keys_in(Action::SearchTrace, super::keymap::Context::Detail)
            ));
            return;
        };
        if s.hits.is_empty() {
            self.message = Some(format!("no match for \"{}\"", super::text::sanitize(&s.query)));
            return;
        }
        let n = s.hits.len();
        s.current = if forward { (s.current + 1) % n } else { (s.current + n - 1) % n };
        self.show_match();
    }

    /// Scrolls the current match into view, a few lines below the top, and says where it is.
    fn show_match(&mut self) {
        let Some(s) = &self.pane.search else { return };
        let Some(hit) = s.hits.get(s.current) else {
            self.message = Some(format!("no match for \"{}\"", super::text::sanitize(&s.query)));
            return;
        };
        let height = self.pane_height();
        if hit.line < self.pane.scroll || hit.line >= self.pane.scroll + height {
            self.pane.scroll = hit.line.saturating_sub(3).min(self.pane_max_scroll());
        }
        self.message = Some(format!("match {} of {} for \"{}\"", s.current + 1, s.hits.len(), super::text::sanitize(&s.query)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_are_found_case_insensitively_on_every_line() {
        let lines = vec![(Part::Body, "Wait, wait.".to_owned()), (Part::Body, "no".to_owned()), (Part::Body, "WAIT".to_owned())];
        let hits = find(&lines, "wait");
        assert_eq!(hits, vec![Hit { line: 0, start: 0, len: 4 }, Hit { line: 0, start: 6, len: 4 }, Hit { line: 2, start: 0, len: 4 }]);
        assert!(find(&lines, "").is_empty());
        assert!(find(&lines, "waits").is_empty());
        // Characters that lowercase to more than one keep their place.
        let lines = vec![(Part::Body, "İx x".to_owned())];
        assert_eq!(find(&lines, "x"), vec![Hit { line: 0, start: 1, len: 1 }, Hit { line: 0, start: 3, len: 1 }]);
    }
}
