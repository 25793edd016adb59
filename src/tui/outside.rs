//! The terminal habits a curator brings: the mouse (click selects, the wheel scrolls, `M`
//! gives it back to the terminal for its own selection), copying with OSC 52 (which works
//! over SSH and in tmux with `set-clipboard on`), and reading or editing a sample in `$PAGER`
//! and `$EDITOR` while the TUI steps aside.

use std::io::Write as _;

use base64::Engine as _;
use ratatui::crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};

use super::app::{App, Effect, Focus, Outside, Tab};
use crate::store::samples::Sample;

/// Above this many bytes, some terminals drop an OSC 52 copy (xterm's default limit is 100 kB).
const OSC52_SAFE: usize = 100_000;

impl App {
    /// The sample the curator is looking at: the group's cursor, else the pane's.
    #[must_use]
    pub fn shown_sample(&self) -> Option<&Sample> {
        if self.tab != Tab::Review {
            return None;
        }
        self.group.as_ref().and_then(|g| g.current()).or(self.detail.as_ref().map(|d| &d.sample))
    }

    /// The key after `y`: what to copy.
    pub fn yank(&mut self, key: &KeyEvent) {
        let Some(sample) = self.shown_sample() else { return };
        let (what, text) = match key.code {
            KeyCode::Char('a') => ("the answer", Some(sample.text.answer.clone())),
            KeyCode::Char('r') => ("the reasoning", sample.text.reasoning.clone()),
            KeyCode::Char('p') => ("the prompt", Some(sample.text.prompt.clone())),
            KeyCode::Char('s') => ("the sample", serde_json::to_string_pretty(sample).ok()),
            _ => {
                self.message = Some("nothing copied".into());
                return;
            }
        };
        let id = sample.id;
        let Some(text) = text else {
            self.message = Some(format!("#{id} has no reasoning to copy"));
            return;
        };
        let chars = text.chars().count();
        let big = if text.len() * 4 / 3 > OSC52_SAFE { " (large: some terminals keep only 100 kB)" } else { "" };
        self.message = Some(format!("copied {what} of #{id} ({chars} chars) to the clipboard{big}"));
        self.outside.push(Outside::Clipboard { what: what.to_owned(), text });
    }

    /// The whole sample as plain text, for `$PAGER`.
    #[must_use]
    pub fn sample_text(&self) -> Option<String> {
        let s = self.shown_sample()?;
        let mut out = format!(
            "sample #{} · prompt {} · {} · {} · teacher {} · source {} · finish {} · {} tokens\n",
            s.id,
            s.prompt_id,
            s.status,
            s.label,
            s.teacher,
            s.source.as_deref().unwrap_or("-"),
            s.finish_reason.as_deref().unwrap_or("-"),
            s.tokens
        );
        let mut section = |title: &str, body: &str| {
            use std::fmt::Write as _;
            let _ = write!(out, "\n== {title} ==\n{body}\n");
        };
        if let Some(system) = &s.text.system {
            section("System", system);
        }
        section("Prompt", &s.text.prompt);
        if let Some(reference) = &s.text.reference {
            section("Reference", reference);
        }
        if let Some(r) = &s.text.reasoning {
            section("Reasoning", r);
        }
        section("Answer", &s.text.answer);
        let scores: Vec<String> = s.scores.iter().map(|(v, x)| format!("{v} {x:.2}")).collect();
        if !scores.is_empty() {
            section("Scores", &scores.join("\n"));
        }
        Some(super::text::terminal_safe(&out).into_owned())
    }

    /// The first list row shown, for a list `height` rows high.
    #[must_use]
    pub fn list_start(&self, height: usize) -> usize {
        self.cursor.saturating_sub(height / 2).min(self.rows.len().saturating_sub(height))
    }

    /// A mouse event: a click selects (a row, a group sample, a pane, a tab), the wheel scrolls
    /// what is under the pointer.
    pub fn mouse(&mut self, ev: &MouseEvent) -> Vec<Effect> {
        use super::action::Action;
        let (column, row) = (ev.column, ev.row);
        let wheel = match ev.kind {
            MouseEventKind::ScrollDown => Some(3),
            MouseEventKind::ScrollUp => Some(-3),
            _ => None,
        };
        let click = matches!(ev.kind, MouseEventKind::Down(MouseButton::Left));
        if !click && wheel.is_none() {
            return Vec::new();
        }
        self.message = None;
        if self.help {
            self.help = false;
            return Vec::new();
        }
        if row == 0 && click {
            return self.click_tab(column);
        }
        let (list_w, _) = super::views::review::split_width(self.size.0);
        match self.tab {
            Tab::Review if self.group.is_some() => {
                let per = super::group::per_page(self.size.0);
                let Some(group) = &mut self.group else { return Vec::new() };
                let col_w = (self.size.0.saturating_sub(2) / group.columns(self.size.0) as u16).max(1);
                let (first, shown) = group.page(per);
                let at = first + usize::from(column.saturating_sub(1) / col_w).min(shown.saturating_sub(1));
                group.cursor = at.min(group.samples.len().saturating_sub(1));
                match wheel {
                    Some(d) => self.update(if d > 0 { Action::ScrollDetailDown } else { Action::ScrollDetailUp }),
                    None => Vec::new(),
                }
            }
            Tab::Review if column < list_w => {
                if let Some(d) = wheel {
                    self.focus = Focus::List;
                    return self.update(if d > 0 { Action::SelectNext } else { Action::SelectPrevious });
                }
                // Rows start below the tabs, the border and the column headers.
                let height = self.list_height().saturating_sub(1);
                let Some(line) = usize::from(row).checked_sub(3).filter(|r| *r < height) else { return Vec::new() };
                let at = self.list_start(height) + line;
                if at >= self.rows.len() {
                    return Vec::new();
                }
                self.focus = Focus::List;
                self.cursor = at;
                self.moved()
            }
            Tab::Review => {
                self.focus = Focus::Detail;
                if let Some(d) = wheel {
                    self.scroll_pane(d);
                }
                Vec::new()
            }
            Tab::Stats => {
                if let Some(d) = wheel {
                    let at = self.stats_scroll.min(self.stats_max_scroll());
                    self.stats_scroll = at.saturating_add_signed(d).min(self.stats_max_scroll());
                }
                Vec::new()
            }
            _ => match wheel {
                Some(d) => self.update(if d > 0 { Action::SelectNext } else { Action::SelectPrevious }),
                None => Vec::new(),
            },
        }
    }

    /// A click on the tab bar: the tab under it (titles are padded by a space, split by `·`).
    fn click_tab(&mut self, x: u16) -> Vec<Effect> {
        let mut at = 0u16;
        for tab in Tab::ALL {
            let w = tab.title().chars().count() as u16 + 2;
            if x < at + w {
                return if tab == self.tab { Vec::new() } else { self.enter_tab(tab) };
            }
            at += w + 1;
        }
        Vec::new()
    }

    /// The movement keys on the Stats tab scroll it. `G` stays at the end: the report and the
    /// charts arrive after the tab opens, and a `G` pressed before them still means their last line.
    pub fn update_stats(&mut self, action: super::action::Action) {
        use super::action::Action;
        let page = self.stats_height();
        let max = self.stats_max_scroll();
        let at = self.stats_scroll.min(max);
        self.stats_scroll = match action {
            Action::SelectNext | Action::ScrollDetailDown => (at + 1).min(max),
            Action::SelectPrevious | Action::ScrollDetailUp => at.saturating_sub(1),
            Action::PageDown => (at + page).min(max),
            Action::PageUp => at.saturating_sub(page),
            Action::SelectFirst => 0,
            Action::SelectLast => usize::MAX,
            _ => return,
        };
    }

    /// Rows inside the Stats tab's panes: the screen less the tab bar, the status and key lines
    /// and the panes' borders.
    fn stats_height(&self) -> usize {
        usize::from(self.size.1.saturating_sub(5)).max(1)
    }

    /// The farthest the Stats tab scrolls with what it holds now.
    fn stats_max_scroll(&self) -> usize {
        self.stats_lines().saturating_sub(self.stats_height())
    }

    /// Lines the Stats tab's longer pane holds.
    #[must_use]
    pub fn stats_lines(&self) -> usize {
        let report = self.stats.as_ref().map_or(1, |s| crate::cli::stats_report(s).lines().count());
        report.max(super::views::chart_lines(self, super::views::Theme { color: false }).len())
    }
}

/// The OSC 52 sequence that puts `text` on the clipboard.
#[must_use]
pub fn osc52(text: &str) -> String {
    format!("\u{1b}]52;c;{}\u{7}", base64::engine::general_purpose::STANDARD.encode(text))
}

/// Writes an OSC 52 copy to the terminal.
pub fn copy(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    out.write_all(osc52(text).as_bytes())?;
    out.flush()
}

/// Shows `text` in `$PAGER` (else `less`) and waits for it to end.
pub fn page(text: &str) -> anyhow::Result<()> {
    let command = crate::ops::edit::user_command(&["PAGER"], "less");
    let argv = shell_words::split(&command).map_err(|e| anyhow::anyhow!("the pager {command:?} ($PAGER) does not parse: {e}"))?;
    anyhow::ensure!(!argv.is_empty(), "$PAGER is empty");
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start the pager {:?} ($PAGER): {e}", argv[0]))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A pager quit before reading it all closes the pipe: not an error.
        let _ = stdin.write_all(text.as_bytes());
    }
    child.wait()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_carries_the_text_in_base64() {
        assert_eq!(osc52("hi"), "\u{1b}]52;c;aGk=\u{7}");
        // Whatever the text holds, the sequence holds no control character but its own.
        let s = osc52("\u{1b}]0;owned\u{7}");
        assert_eq!(s.matches('\u{1b}').count(), 1);
        assert_eq!(s.matches('\u{7}').count(), 1);
    }
}
