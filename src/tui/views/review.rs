//! The Review tab: the sample list beside the selected sample's detail, or its prompt's group.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::Theme;
use crate::tui::app::App;
use crate::tui::data::ListRow;
use crate::tui::text::{sanitize, tool_call_lines, tool_lines, truncate, wrap};

/// The list's width for a terminal width: at least 34 columns, 40% on wide terminals.
#[must_use]
pub fn split_width(total: u16) -> (u16, u16) {
    let list = (total * 2 / 5).clamp(34.min(total), 72);
    (list, total.saturating_sub(list))
}

/// What a line of the detail belongs to, for its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Heading,
    Body,
    Reasoning,
    Dim,
}

fn status_mark(status: &str) -> &'static str {
    match status {
        "accepted" => "✓",
        "rejected" => "✗",
        _ => "·",
    }
}

/// The score the list shows: `math`, else the imported verdict, else the first verifier's.
fn main_score(row: &ListRow) -> String {
    crate::tui::data::main_score(&row.scores).map_or_else(|| "   -".to_owned(), |v| format!("{v:>4.2}"))
}

/// One list line: mark, status, label, score, tokens, teacher, prompt.
fn list_line(app: &App, row: &ListRow, width: usize, theme: Theme, selected: bool) -> Line<'static> {
    let marked = if app.marks.contains(&row.id) { "●" } else { " " };
    let label = row.label.as_str().chars().next().map_or(' ', |c| c.to_ascii_uppercase());
    let head = format!("{marked}{} {label} {} {:>6} ", status_mark(row.status.as_str()), main_score(row), row.tokens);
    // The teacher column only where the list is wide enough to keep some prompt beside it.
    let teacher_w = if width >= 56 { 12 } else { 0 };
    let teacher = truncate(&sanitize(&row.teacher), teacher_w);
    let rest = width.saturating_sub(head.chars().count() + teacher_w + usize::from(teacher_w > 0));
    let preview = truncate(&sanitize(&row.preview), rest);
    let mut style = theme.status(row.status.as_str());
    if selected {
        style = style.add_modifier(Modifier::REVERSED);
    }
    Line::from(vec![
        Span::styled(head, style),
        Span::styled(if teacher_w > 0 { format!("{teacher:<teacher_w$} ") } else { String::new() }, theme.dim(selected)),
        Span::styled(preview, if selected { Style::default().add_modifier(Modifier::REVERSED) } else { Style::default() }),
    ])
}

/// The detail as wrapped lines.
#[must_use]
pub fn detail_lines(app: &App) -> Vec<(Part, String)> {
    let width = app.detail_width();
    let mut out: Vec<(Part, String)> = Vec::new();
    let Some(d) = &app.detail else {
        out.push((
            Part::Dim,
            if app.rows.is_empty() { "The store holds no samples: `retort import FILE` adds some.".into() } else { "…".into() },
        ));
        return out;
    };
    let section = |out: &mut Vec<(Part, String)>, title: &str, body: &str, part: Part| {
        out.push((Part::Heading, title.to_owned()));
        out.extend(wrap(&sanitize(body), width).into_iter().map(|l| (part, l)));
        out.push((Part::Body, String::new()));
    };
    if d.sample.text.turns().is_empty() {
        section(&mut out, "Prompt", &d.sample.text.prompt, Part::Body);
    } else {
        // A conversation: every turn before the answer, the prompt (the last user turn) among them.
        out.push((Part::Heading, format!("Conversation ({} turns before the answer)", d.sample.text.turns().len())));
        for turn in d.sample.text.turns() {
            let role = turn.get("role").and_then(serde_json::Value::as_str).unwrap_or("?");
            out.push((Part::Dim, format!("▸ {}", sanitize(role))));
            // Stored turns hold their content as text (`Turn::to_message`).
            let content = turn.get("content").and_then(serde_json::Value::as_str).unwrap_or_default();
            if !content.is_empty() {
                out.extend(wrap(&sanitize(content), width).into_iter().map(|l| (Part::Body, l)));
            }
            for call in tool_call_lines(turn.get("tool_calls")) {
                out.extend(wrap(&sanitize(&call), width).into_iter().map(|l| (Part::Body, l)));
            }
        }
        out.push((Part::Body, String::new()));
    }
    if let Some(system) = &d.sample.text.system {
        section(&mut out, "System", system, Part::Dim);
    }
    // A titled list, one wrapped item after another; nothing when empty.
    let items = |out: &mut Vec<(Part, String)>, title: &str, items: Vec<String>, part: Part| {
        if items.is_empty() {
            return;
        }
        out.push((Part::Heading, format!("{title} ({})", items.len())));
        for item in &items {
            out.extend(wrap(&sanitize(item), width).into_iter().map(|l| (part, l)));
        }
        out.push((Part::Body, String::new()));
    };
    items(&mut out, "Tools offered", tool_lines(d.sample.text.tools.as_ref()), Part::Dim);
    if let Some(reference) = &d.sample.text.reference {
        section(&mut out, "Reference", reference, Part::Body);
    }
    match (&d.sample.text.reasoning, app.show_reasoning) {
        (Some(r), true) => section(&mut out, &format!("Reasoning ({} chars)", r.chars().count()), r, Part::Reasoning),
        (Some(r), false) => {
            out.push((Part::Heading, format!("Reasoning ({} chars, folded: t unfolds)", r.chars().count())));
            out.push((Part::Body, String::new()));
        }
        (None, _) => {}
    }
    section(&mut out, "Answer", &d.sample.text.answer, Part::Body);
    items(&mut out, "Tool calls", tool_call_lines(d.sample.text.tool_calls.as_ref()), Part::Body);
    if !d.scores.is_empty() {
        out.push((Part::Heading, "Scores".into()));
        for s in &d.scores {
            let score = s.score.map_or_else(|| "error".to_owned(), |v| format!("{v:.2}"));
            let pass = match s.pass {
                Some(true) => "pass",
                Some(false) => "fail",
                None => "",
            };
            let line = format!("{:<14} {score:>6} {pass:<4} {}", s.verifier, sanitize(&s.note));
            out.extend(wrap(&line, width).into_iter().map(|l| (Part::Body, l)));
        }
        out.push((Part::Body, String::new()));
    }
    if !d.sample.tags.is_empty() || d.note.is_some() {
        out.push((Part::Heading, "Tags and note".into()));
        if !d.sample.tags.is_empty() {
            out.push((Part::Body, d.sample.tags.join(", ")));
        }
        if let Some(n) = &d.note {
            out.extend(wrap(&sanitize(n), width).into_iter().map(|l| (Part::Body, l)));
        }
        out.push((Part::Body, String::new()));
    }
    if !d.history.is_empty() {
        out.push((Part::Heading, "History".into()));
        for h in &d.history {
            let undone = if h.undone { " (undone)" } else { "" };
            let line = format!("{} {}{undone}", sanitize(&h.actor), sanitize(&h.change));
            out.extend(wrap(&line, width).into_iter().map(|l| (Part::Dim, l)));
        }
    }
    out
}

/// Search hits, best first, with the matched characters in bold.
fn draw_hits(frame: &mut Frame, area: Rect, search: &crate::tui::app::SearchState, theme: Theme) {
    let height = usize::from(area.height.saturating_sub(2));
    let width = usize::from(area.width.saturating_sub(2));
    let start = search.cursor.saturating_sub(height.saturating_sub(1));
    let lines: Vec<Line> = search
        .hits
        .iter()
        .enumerate()
        .skip(start)
        .take(height)
        .map(|(i, hit)| {
            let kind = match hit.target {
                crate::tui::search::Target::Teacher(_) => "teacher ",
                crate::tui::search::Target::Prompt(_) => "",
            };
            let text = truncate(&sanitize(&hit.text), width.saturating_sub(kind.len()));
            let mut spans = vec![Span::styled(kind, theme.dim(false))];
            for (j, c) in text.chars().enumerate() {
                let style = if hit.positions.contains(&j) { theme.heading() } else { Style::default() };
                spans.push(Span::styled(c.to_string(), style));
            }
            let line = Line::from(spans);
            if i == search.cursor { line.style(Style::default().add_modifier(Modifier::REVERSED)) } else { line }
        })
        .collect();
    let progress = if search.done || search.total == 0 {
        format!(" {} matches ", search.hits.len())
    } else {
        format!(" {} matches so far ({}/{} read) ", search.hits.len(), search.scanned, search.total)
    };
    frame.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(progress)), area);
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let (list_w, _) = split_width(area.width);
    let [list_area, detail_area] = Layout::horizontal([Constraint::Length(list_w), Constraint::Fill(1)]).areas(area);
    if let (Some(search), Some(_)) = (&app.search, &app.input) {
        draw_hits(frame, list_area, search, theme);
        draw_detail(frame, detail_area, app, theme);
        return;
    }
    // The list: a window around the cursor.
    let height = usize::from(list_area.height.saturating_sub(2));
    let start = app.cursor.saturating_sub(height / 2).min(app.rows.len().saturating_sub(height));
    let width = usize::from(list_area.width.saturating_sub(2));
    let lines: Vec<Line> =
        app.rows.iter().enumerate().skip(start).take(height).map(|(i, r)| list_line(app, r, width, theme, i == app.cursor)).collect();
    let title = if app.loading.is_some() { " Samples (reading…) " } else { " Samples " };
    frame.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)), list_area);

    if let Some((_, samples)) = &app.group {
        draw_group(frame, detail_area, app, samples, theme);
        return;
    }
    draw_detail(frame, detail_area, app, theme);
}

fn draw_detail(frame: &mut Frame, detail_area: Rect, app: &App, theme: Theme) {
    let lines = detail_lines(app);
    let visible = usize::from(detail_area.height.saturating_sub(2));
    let shown: Vec<Line> = lines
        .iter()
        .skip(app.detail_scroll)
        .take(visible)
        .map(|(part, text)| match part {
            Part::Heading => Line::styled(text.clone(), theme.heading()),
            Part::Reasoning => Line::styled(text.clone(), theme.reasoning()),
            Part::Dim => Line::styled(text.clone(), theme.dim(false)),
            Part::Body => Line::raw(text.clone()),
        })
        .collect();
    let title = app.current().map_or_else(|| " Sample ".to_owned(), |r| format!(" #{} · {} · {} ", r.id, r.status, r.label));
    let scroll = if lines.len() > visible { format!(" {}/{} ", app.detail_scroll + 1, lines.len()) } else { String::new() };
    let block = Block::default().borders(Borders::ALL).title(title).title_bottom(Line::from(scroll).right_aligned());
    frame.render_widget(Paragraph::new(shown).block(block), detail_area);
}

/// The n samples of one prompt side by side: where best-of-n is judged.
fn draw_group(frame: &mut Frame, area: Rect, app: &App, samples: &[(ListRow, String)], theme: Theme) {
    let n = samples.len().clamp(1, 4);
    let title = format!(" Group: {} samples of prompt {} (v closes) ", samples.len(), app.current().map_or(0, |r| r.prompt_id));
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let columns = Layout::horizontal(vec![Constraint::Fill(1); n]).split(inner);
    for (col, (row, answer)) in columns.iter().zip(samples.iter()) {
        let width = usize::from(col.width.saturating_sub(1)).max(4);
        let mut lines = vec![
            Line::styled(
                truncate(&format!("#{} {}", row.id, sanitize(&row.teacher)), width),
                theme.status(row.status.as_str()).add_modifier(Modifier::BOLD),
            ),
            Line::raw(truncate(&format!("{} · {} tok · {}", row.status, row.tokens, row.finish_reason.as_deref().unwrap_or("-")), width)),
        ];
        for (name, v) in &row.scores {
            lines.push(Line::raw(truncate(&format!("{name} {v:.2}"), width)));
        }
        lines.push(Line::raw(String::new()));
        lines.extend(wrap(&sanitize(answer), width).into_iter().map(Line::raw));
        frame.render_widget(Paragraph::new(lines), *col);
    }
}
