//! Drawing: pure functions of the App's state. They never await and never touch the store.

pub mod group;
pub mod review;
pub mod train;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Tabs};

use super::app::{App, Tab};

/// Colours, or none at all when `NO_COLOR` is set.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    #[must_use]
    pub fn from_env() -> Self {
        Self { color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) }
    }

    fn fg(self, c: Color) -> Style {
        if self.color { Style::default().fg(c) } else { Style::default() }
    }

    #[must_use]
    pub fn status(self, status: &str) -> Style {
        match status {
            "accepted" => self.fg(Color::Green),
            "rejected" => self.fg(Color::Red),
            _ => Style::default(),
        }
    }

    #[must_use]
    pub fn heading(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    #[must_use]
    pub fn reasoning(self) -> Style {
        self.fg(Color::Gray)
    }

    /// A token by the teacher's probability of it: plain when sure, yellow, orange, then red
    /// and bold as it falls (underlined, then bold, without colour).
    #[must_use]
    pub fn confidence(self, logprob: f32) -> Style {
        let p = logprob.exp();
        match (self.color, p) {
            (_, p) if p >= 0.9 => Style::default(),
            (true, p) if p >= 0.5 => Style::default().fg(Color::Yellow),
            (true, p) if p >= 0.1 => Style::default().fg(Color::Indexed(208)),
            (true, _) => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            (false, p) if p >= 0.1 => Style::default().add_modifier(Modifier::UNDERLINED),
            (false, _) => Style::default().add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
        }
    }

    #[must_use]
    pub fn dim(self, selected: bool) -> Style {
        if selected { Style::default().add_modifier(Modifier::REVERSED) } else { self.fg(Color::DarkGray) }
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App, theme: Theme) {
    let [tabs, main, status, hints] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(1), Constraint::Length(1)]).areas(frame.area());
    let titles: Vec<&str> = Tab::ALL.iter().map(|t| t.title()).collect();
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles).select(selected).highlight_style(theme.heading().add_modifier(Modifier::REVERSED)).divider("·"),
        tabs,
    );
    match app.tab {
        Tab::Review => review::draw(frame, main, app, theme),
        Tab::Stats => draw_stats(frame, main, app, theme),
        Tab::Rules => draw_rules(frame, main, app, theme),
        Tab::Export => draw_export(frame, main, app, theme),
        Tab::Train => train::draw(frame, main, app, theme),
    }
    let line = match &app.message {
        Some(m) => Line::from(Span::styled(format!(" {m}"), theme.heading())),
        None => Line::raw(app.status_line()),
    };
    frame.render_widget(Paragraph::new(line).style(Style::default().add_modifier(Modifier::REVERSED)), status);
    match &app.input {
        Some(input) => {
            let mut spans =
                vec![Span::styled(input.kind.prompt(), theme.heading()), Span::raw(super::text::sanitize(&input.text)), Span::raw("▏")];
            if let Some(err) = &input.error {
                spans.push(Span::styled(format!("  {err}"), theme.status("rejected")));
            } else {
                spans.push(Span::styled("  enter applies · esc cancels", theme.dim(false)));
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), hints);
        }
        None => frame.render_widget(Paragraph::new(Line::styled(app.hints(), theme.dim(false))), hints),
    }
    if app.input.as_ref().is_some_and(|i| i.kind == super::app::InputKind::Palette) {
        draw_palette(frame, main, app, theme);
    }
    if app.help {
        draw_help(frame, app, theme);
    }
}

/// The palette's choices, above the line being typed.
fn draw_palette(frame: &mut Frame, main: Rect, app: &App, theme: Theme) {
    let rows = app.palette.len().clamp(1, 12) as u16;
    let h = (rows + 2).min(main.height);
    let w = main.width.min(90);
    let area = Rect { x: main.x, y: main.y + main.height - h, width: w, height: h };
    let inner = usize::from(w.saturating_sub(2));
    let start = app.palette_cursor.saturating_sub(usize::from(rows) - 1);
    let mut lines: Vec<Line> = app
        .palette
        .iter()
        .enumerate()
        .skip(start)
        .take(usize::from(rows))
        .map(|(i, c)| {
            let (name, keys, what) = super::palette::label(app, c);
            let text = super::text::truncate(&format!("{name:<18} {keys:<12} {what}"), inner);
            if i == app.palette_cursor { Line::styled(text, theme.heading().add_modifier(Modifier::REVERSED)) } else { Line::raw(text) }
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled("no action matches", theme.dim(false)));
    }
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Palette · ↑/↓ choose · enter runs · #id jumps ")),
        area,
    );
}

fn draw_export(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    use super::export_tab::FIELDS;
    let state = &app.export;
    let [form, side] = Layout::horizontal([Constraint::Percentage(50), Constraint::Fill(1)]).areas(area);
    let width = usize::from(form.width.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    for (i, name) in FIELDS.iter().enumerate() {
        let value = super::text::truncate(&super::text::sanitize(&state.form.value(i)), width.saturating_sub(20));
        let line = Line::from(vec![Span::styled(format!("{name:<18} "), theme.heading()), Span::raw(value)]);
        lines.push(if i == state.form.cursor { line.style(Style::default().add_modifier(Modifier::REVERSED)) } else { line });
    }
    lines.push(Line::raw(String::new()));
    if let Some((done, total)) = state.progress {
        let gauge_w = width.saturating_sub(12);
        let filled = if total > 0 { (done as usize * gauge_w) / total as usize } else { 0 };
        lines.push(Line::raw(format!("writing [{}{}] {done}/{total}", "█".repeat(filled), " ".repeat(gauge_w.saturating_sub(filled)))));
    }
    lines.push(Line::styled("Preview", theme.heading()));
    let error = |lines: &mut Vec<Line>, e: &str| {
        lines.extend(super::text::wrap(&super::text::sanitize(e), width).into_iter().map(|l| Line::styled(l, theme.status("rejected"))));
    };
    match &state.preview {
        None => lines.push(Line::raw("counting…")),
        Some(Err(e)) => error(&mut lines, e),
        Some(Ok(r)) => {
            for (part, p) in &r.parts {
                lines.push(Line::raw(format!("  {part:<11} {:>8} samples {:>12} tokens", p.samples, p.tokens)));
            }
            for (kind, n) in &r.by_kind {
                lines.push(Line::raw(format!("  {kind:<11} {n:>8} samples")));
            }
        }
    }
    match &state.last {
        Some(Err(e)) => {
            lines.push(Line::raw(String::new()));
            lines.push(Line::styled("Not exported", theme.heading()));
            error(&mut lines, e);
        }
        Some(Ok(r)) => {
            lines.push(Line::raw(String::new()));
            let dir = super::text::sanitize(&state.form.out);
            lines.push(Line::styled(format!("Export #{} written to {dir}", r.export_id.unwrap_or(0)), theme.heading()));
        }
        None => {}
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::default().borders(Borders::ALL).title(" Export · enter changes or runs · tokens as counted on import ")),
        form,
    );
    let mut past: Vec<Line> = Vec::new();
    if state.past.is_empty() {
        past.push(Line::raw("No exports yet."));
    }
    for e in &state.past {
        let (id, format, samples, tokens, out) = (e.id, &e.format, e.samples, e.tokens, &e.out_dir);
        let out = super::text::truncate(&super::text::sanitize(out), usize::from(side.width.saturating_sub(40)));
        past.push(Line::raw(format!("#{id:<4} {format:<17} {samples:>8} {tokens:>11}  {out}")));
    }
    frame.render_widget(Paragraph::new(past).block(Block::default().borders(Borders::ALL).title(" Past exports ")), side);
}

/// A horizontal bar of `value` out of `max`, `width` cells wide, in eighths of a cell.
fn bar(value: i64, max: i64, width: usize) -> String {
    if max <= 0 || width == 0 {
        return String::new();
    }
    let eighths = (value.max(0) as f64 / max as f64 * (width * 8) as f64).round() as usize;
    let mut out = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        out.push([' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8]);
    }
    out
}

fn histogram(lines: &mut Vec<Line<'static>>, title: String, labels: &[String], counts: &[i64], width: usize, theme: Theme) {
    lines.push(Line::styled(title, theme.heading()));
    let max = counts.iter().copied().max().unwrap_or(0);
    for (label, n) in labels.iter().zip(counts) {
        lines.push(Line::raw(format!("  {label:>7} {n:>8} {}", bar(*n, max, width.saturating_sub(20)))));
    }
    lines.push(Line::raw(String::new()));
}

fn acceptance(lines: &mut Vec<Line<'static>>, title: &str, rows: &[(String, i64, i64, i64)], width: usize, theme: Theme) {
    if rows.is_empty() {
        return;
    }
    lines.push(Line::styled(format!("{title} (accepted / rejected of all)"), theme.heading()));
    let bar_w = width.saturating_sub(42).max(4);
    for (name, accepted, rejected, total) in rows.iter().take(12) {
        let name = super::text::truncate(&super::text::sanitize(name), 20);
        let a = bar(*accepted, *total, bar_w);
        let r = bar(*rejected, *total, bar_w);
        lines.push(Line::from(vec![
            Span::raw(format!("  {name:<20} {accepted:>6}/{rejected:<6} of {total:<6} ")),
            Span::styled(a, theme.status("accepted")),
            Span::styled(r, theme.status("rejected")),
        ]));
    }
    lines.push(Line::raw(String::new()));
}

/// The Stats tab's charts, as lines.
#[must_use]
pub fn chart_lines(app: &App, theme: Theme) -> Vec<Line<'static>> {
    // The charts pane: what the report (half the screen, at most 70 columns) leaves.
    let w = app.size.0;
    let width = usize::from(w.saturating_sub((w / 2).min(70)).saturating_sub(2));
    let mut lines: Vec<Line<'static>> = Vec::new();
    let Some(c) = &app.charts else {
        lines.push(Line::raw("reading…"));
        return lines;
    };
    let buckets: Vec<String> = super::data::TOKEN_BUCKETS.iter().map(|s| (*s).to_owned()).collect();
    histogram(&mut lines, "Completion tokens".into(), &buckets, &c.token_histogram, width, theme);
    let tenths: Vec<String> = (0..10).map(|i| format!("{:.1}", f64::from(i) / 10.0)).collect();
    for (verifier, h) in &c.score_histograms {
        histogram(&mut lines, format!("score.{verifier}"), &tenths, h, width, theme);
    }
    if let Some(s) = &app.stats {
        acceptance(&mut lines, "By teacher", &super::data::decided_rows(&s.by_teacher, &s.decided_by_teacher), width, theme);
        acceptance(&mut lines, "By source", &super::data::decided_rows(&s.by_source, &s.decided_by_source), width, theme);
    }
    acceptance(&mut lines, "By verifier, among samples that pass it", &c.by_verifier, width, theme);
    lines
}

fn draw_stats(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    // 68 columns inside the border hold the report's widest table (token percentiles and mean).
    let [report, charts] = Layout::horizontal([Constraint::Length((area.width / 2).min(70)), Constraint::Fill(1)]).areas(area);
    let text = app.stats.as_ref().map_or_else(|| "reading…".to_owned(), crate::cli::stats_report);
    let text = super::text::sanitize(&text);
    let height = usize::from(area.height.saturating_sub(2));
    let total = text.lines().count();
    let scroll = app.stats_scroll.min(total.saturating_sub(height));
    let more = |total: usize, scroll: usize| {
        if total > height {
            format!(" lines {}–{} of {total} · j/k scroll ", scroll + 1, (scroll + height).min(total))
        } else {
            String::new()
        }
    };
    let shown: Vec<Line> = text.lines().skip(scroll).take(height).map(|l| Line::raw(l.to_owned())).collect();
    frame.render_widget(
        Paragraph::new(shown)
            .block(Block::default().borders(Borders::ALL).title(" Stats ").title_bottom(Line::from(more(total, scroll)).right_aligned())),
        report,
    );
    let lines = chart_lines(app, theme);
    let total = lines.len();
    let scroll = app.stats_scroll.min(total.saturating_sub(height));
    let shown: Vec<Line> = lines.into_iter().skip(scroll).take(height).collect();
    frame.render_widget(
        Paragraph::new(shown)
            .block(Block::default().borders(Borders::ALL).title(" Charts ").title_bottom(Line::from(more(total, scroll)).right_aligned())),
        charts,
    );
}

fn draw_rules(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let mut lines: Vec<Line> = Vec::new();
    if app.rules.is_empty() {
        lines.push(Line::raw("No saved rules yet: + writes one (`name: reject where score.math < 1`), or `retort rules apply FILE` saves the rules it applies."));
    }
    let width = usize::from(area.width.saturating_sub(2));
    for (i, r) in app.rules.iter().enumerate() {
        let count = match &r.count {
            None => "      …".to_owned(),
            Some(Ok(n)) => format!("{n:>7}"),
            Some(Err(_)) => "  error".to_owned(),
        };
        let name = super::text::truncate(&super::text::sanitize(&r.name), 20);
        let source = super::text::truncate(&super::text::sanitize(&r.source), width.saturating_sub(31));
        let line =
            Line::from(vec![Span::styled(format!("{count} "), theme.heading()), Span::raw(format!("{name:<20}  ")), Span::raw(source)]);
        lines.push(if i == app.rule_cursor { line.style(Style::default().add_modifier(Modifier::REVERSED)) } else { line });
        if let Some(Err(e)) = &r.count {
            lines.push(Line::styled(
                format!("        {}", super::text::truncate(&super::text::sanitize(e), width.saturating_sub(8))),
                theme.status("rejected"),
            ));
        }
        for o in &r.overturns {
            lines.push(Line::styled(
                format!("        {}", super::text::truncate(&super::text::sanitize(o), width.saturating_sub(8))),
                theme.status("rejected"),
            ));
        }
    }
    let title = " Saved rules · would change, in order as `rules dry-run` counts · enter applies · e edits · + adds · u undoes ";
    frame.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)), area);
}

/// The help's lines: every tab's keys, section by section (a heading has no keys).
#[must_use]
pub fn help_entries(app: &App) -> Vec<(Option<String>, String)> {
    use super::action::Action as A;
    use super::keymap::Context as C;
    type Entry = (A, Option<&'static str>);
    const SECTIONS: &[(&str, C, &[Entry])] = &[
        (
            "Everywhere",
            C::Global,
            &[
                (A::Help, None),
                (A::Palette, None),
                (A::NextTab, None),
                (A::PreviousTab, None),
                (A::Back, None),
                (A::Undo, None),
                (A::Redo, None),
                (A::ToggleMouse, None),
                (A::Quit, None),
            ],
        ),
        (
            "Review: the list",
            C::Global,
            &[
                (A::SelectNext, None),
                (A::SelectPrevious, None),
                (A::PageDown, None),
                (A::PageUp, None),
                (A::SelectFirst, None),
                (A::SelectLast, None),
                (A::FocusDetail, None),
                (A::Accept, None),
                (A::Reject, None),
                (A::Reset, None),
                (A::LabelHard, None),
                (A::LabelSoft, None),
                (A::LabelPseudo, None),
                (A::ToggleMark, None),
                (A::AcceptMarked, None),
                (A::RejectMarked, None),
                (A::GroupView, None),
                (A::ToggleReasoning, None),
                (A::ToggleTokens, None),
                (A::ScrollDetailDown, None),
                (A::ScrollDetailUp, None),
                (A::Search, None),
                (A::FullText, None),
                (A::Filter, None),
                (A::ClearFilter, None),
                (A::Sort, None),
                (A::Note, None),
                (A::Yank, None),
                (A::Pager, None),
                (A::EditAnswer, None),
                (A::EditReference, None),
            ],
        ),
        (
            "Review: the sample pane (l)",
            C::Detail,
            &[
                (A::SelectNext, Some("scroll a line down")),
                (A::SelectPrevious, Some("scroll a line up")),
                (A::PageDown, Some("a page down")),
                (A::PageUp, Some("a page up")),
                (A::SelectFirst, Some("the top")),
                (A::SelectLast, Some("the end")),
                (A::SearchTrace, None),
                (A::NextMatch, None),
                (A::PreviousMatch, None),
                (A::NextToken, None),
                (A::PreviousToken, None),
                (A::NextUnsure, None),
                (A::PreviousUnsure, None),
                (A::FocusList, None),
            ],
        ),
        (
            "Review: the group view (v)",
            C::Group,
            &[
                (A::GroupPrevious, None),
                (A::GroupNext, None),
                (A::SelectNext, Some("scroll down")),
                (A::SelectPrevious, Some("scroll up")),
                (A::PageDown, Some("a page down")),
                (A::PageUp, Some("a page up")),
                (A::SelectFirst, Some("the top")),
                (A::SelectLast, Some("the end")),
                (A::Accept, Some("accept the one under the cursor")),
                (A::Reject, Some("reject the one under the cursor")),
                (A::Pick, None),
                (A::Diff, None),
                (A::LinkScroll, None),
                (A::NextPrompt, None),
                (A::PreviousPrompt, None),
                (A::Back, Some("close the group")),
            ],
        ),
        (
            "Rules tab",
            C::Global,
            &[
                (A::SelectNext, Some("next rule")),
                (A::SelectPrevious, Some("previous rule")),
                (A::ApplyRule, Some("apply the rule (one undoable action)")),
                (A::EditRule, Some("edit the rule")),
                (A::NewRule, Some("write a new rule")),
            ],
        ),
        (
            "Export tab",
            C::Global,
            &[
                (A::SelectNext, Some("next option")),
                (A::SelectPrevious, Some("previous option")),
                (A::ApplyRule, Some("change the option; on run: export")),
            ],
        ),
        (
            "Train tab",
            C::Global,
            &[
                (A::SelectNext, Some("next field / past run")),
                (A::SelectPrevious, Some("previous field / past run")),
                (A::ApplyRule, Some("change it; start, cancel; open a run")),
            ],
        ),
        (
            "Stats tab",
            C::Global,
            &[
                (A::SelectNext, Some("scroll down")),
                (A::SelectPrevious, Some("scroll up")),
                (A::PageDown, Some("a page down")),
                (A::PageUp, Some("a page up")),
                (A::SelectFirst, Some("the top")),
                (A::SelectLast, Some("the end")),
            ],
        ),
    ];
    let mut out = Vec::new();
    for (title, context, entries) in SECTIONS {
        out.push((None, (*title).to_owned()));
        for (action, what) in *entries {
            let keys = app.keymap.keys_in(*action, *context);
            if !keys.is_empty() {
                out.push((Some(keys), what.unwrap_or_else(|| action.describe()).to_owned()));
            }
        }
    }
    out
}

/// Rows of the help overlay's text, and its columns, on a `size` terminal.
#[must_use]
pub fn help_layout(entries: usize, size: (u16, u16)) -> (usize, usize) {
    let columns = (usize::from(size.0) / 40).clamp(1, 4);
    let room = usize::from(size.1.saturating_sub(4)).max(1);
    (entries.div_ceil(columns).min(room), columns)
}

fn draw_help(frame: &mut Frame, app: &App, theme: Theme) {
    let area = frame.area();
    let entries = help_entries(app);
    let (rows, columns) = help_layout(entries.len(), app.size);
    let per_page = rows * columns;
    let scroll = app.help_scroll.min(entries.len().saturating_sub(per_page));
    let shown = &entries[scroll..(scroll + per_page).min(entries.len())];
    let w = area.width.saturating_sub(2);
    let h = (rows as u16 + 2).min(area.height);
    let popup = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    let col_w = usize::from(w.saturating_sub(2)) / columns;
    let key_w = 14.min(col_w / 2);
    let lines: Vec<Line> = (0..rows)
        .map(|r| {
            let mut spans = Vec::new();
            for c in 0..columns {
                match shown.get(c * rows + r) {
                    Some((Some(keys), what)) => {
                        spans.push(Span::styled(format!("{:<key_w$}", super::text::truncate(keys, key_w - 1)), theme.heading()));
                        let what = super::text::truncate(what, col_w.saturating_sub(key_w + 1));
                        spans.push(Span::raw(format!("{what:<width$}", width = col_w.saturating_sub(key_w))));
                    }
                    Some((None, title)) => {
                        let title = super::text::truncate(title, col_w.saturating_sub(1));
                        spans.push(Span::styled(format!("{title:<col_w$}"), theme.heading().add_modifier(Modifier::UNDERLINED)));
                    }
                    None => spans.push(Span::raw(" ".repeat(col_w))),
                }
            }
            Line::from(spans)
        })
        .collect();
    let more = if entries.len() > per_page {
        format!(" {}–{} of {} · j/k scroll ", scroll + 1, (scroll + per_page).min(entries.len()), entries.len())
    } else {
        String::new()
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default().borders(Borders::ALL).title(" Keys · any other key closes ").title_bottom(Line::from(more).right_aligned()),
        ),
        popup,
    );
}
