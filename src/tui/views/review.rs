//! The Review tab: the sample list beside the selected sample's detail, or its prompt's group.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::Theme;
use crate::tui::app::App;
use crate::tui::data::ListRow;
use crate::tui::pane::TokenSpans;
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
    /// A line of the token view (its tokens' places in [`TokenSpans`]).
    Tokens,
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
    let teacher_w = teacher_width(width);
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

/// A probability as a percentage to read: two digits where it is small.
#[must_use]
pub fn percent(logprob: f32) -> String {
    let p = f64::from(logprob).exp() * 100.0;
    if p >= 9.95 {
        format!("{p:.0}%")
    } else if p >= 0.01 {
        format!("{p:.2}%")
    } else {
        format!("{p:.0e}%")
    }
}

/// The scoring's summary: who scored the completion, how, and how sure the teacher was.
fn scoring_lines(app: &App, scoring: &crate::store::logprobs::Scoring) -> Vec<String> {
    let temperature = scoring.temperature.map_or_else(String::new, |t| format!(" at T={t}"));
    let mut out = vec![format!("{} · top-{}{temperature} · {} tokens", sanitize(&scoring.teacher), scoring.k, scoring.positions)];
    if let (Some(mean), Some(min)) = (scoring.mean_logprob, scoring.min_logprob) {
        out.push(format!(
            "mean log-prob {mean:.3} (perplexity {:.2}) · least likely token {} (log-prob {min:.2})",
            (-mean).exp(),
            percent(min as f32)
        ));
    }
    match (&scoring.tokens, app.show_tokens) {
        (Some(Err(e)), _) => out.push(format!("the tokens cannot be read: {e}")),
        (_, false) => {
            let keys = app.keymap.keys_of(crate::tui::action::Action::ToggleTokens);
            out.push(format!("{keys} shows the completion token by token"));
        }
        (None, true) => out.push("reading the tokens…".to_owned()),
        (Some(Ok(_)), true) => {}
    }
    out
}

/// The token view's section: the scored completion token by token, with where each token is.
fn token_section(app: &App, out: &mut Vec<(Part, String)>, spans: &mut TokenSpans, whole_turn: bool) {
    use crate::tui::action::Action;
    use crate::tui::keymap::Context;
    let Some(trace) = app.token_trace() else { return };
    let what = if whole_turn { "The reply as the teacher read it" } else { "Answer" };
    let heading = format!("{what}, token by token ({} tokens · {} turns it off)", trace.len(), app.keymap.keys_of(Action::ToggleTokens));
    out.extend(wrap(&heading, app.detail_width()).into_iter().map(|l| (Part::Heading, l)));
    let keys = |a| app.keymap.first_key_in(a, Context::Detail);
    let legend = format!(
        "the teacher's probability of each: ≥ 90% plain · 50–90% yellow · 10–50% orange · < 10% red; in the pane {}/{} move, {}/{} stop below 50%",
        keys(Action::NextToken),
        keys(Action::PreviousToken),
        keys(Action::NextUnsure),
        keys(Action::PreviousUnsure)
    );
    out.extend(wrap(&legend, app.detail_width()).into_iter().map(|l| (Part::Dim, l)));
    let texts = trace.texts();
    spans.line_of = vec![usize::MAX; texts.len()];
    for (text, on_line) in crate::tui::text::wrap_tokens(&texts, app.detail_width()) {
        let line = out.len();
        for &(_, _, position) in &on_line {
            if spans.line_of[position] == usize::MAX {
                spans.line_of[position] = line;
            }
        }
        spans.by_line.insert(line, on_line);
        out.push((Part::Tokens, text));
    }
    // A token with no character of its own (half of one) is where the token before it is.
    let mut last = out.len().saturating_sub(1);
    for line in &mut spans.line_of {
        if *line == usize::MAX {
            *line = last;
        }
        last = *line;
    }
    out.push((Part::Body, String::new()));
}

/// The detail as wrapped lines, and where the token view's tokens are on them.
#[must_use]
pub fn detail_lines(app: &App) -> (Vec<(Part, String)>, TokenSpans) {
    let width = app.detail_width();
    let mut out: Vec<(Part, String)> = Vec::new();
    let mut spans = TokenSpans::default();
    let Some(d) = &app.detail else {
        out.push((
            Part::Dim,
            if app.rows.is_empty() { "The store holds no samples: `retort import FILE` adds some.".into() } else { "…".into() },
        ));
        return (out, spans);
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
    if let Some(scoring) = &d.scoring {
        out.push((Part::Heading, "Teacher log-probs".into()));
        for line in scoring_lines(app, scoring) {
            out.extend(wrap(&line, width).into_iter().map(|l| (Part::Dim, l)));
        }
        out.push((Part::Body, String::new()));
    }
    // A scoring of retort's covers the whole reply as the template wrote it, reasoning too; an
    // API's log-probs the answer only.
    let tokens = app.token_trace().is_some();
    let whole_turn = d.scoring.as_ref().is_some_and(|s| s.whole_turn);
    match (&d.sample.text.reasoning, app.show_reasoning) {
        _ if tokens && whole_turn => {}
        (Some(r), true) => section(&mut out, &format!("Reasoning ({} chars)", r.chars().count()), r, Part::Reasoning),
        (Some(r), false) => {
            out.push((Part::Heading, format!("Reasoning ({} chars, folded: t unfolds)", r.chars().count())));
            out.push((Part::Body, String::new()));
        }
        (None, _) => {}
    }
    if tokens {
        token_section(app, &mut out, &mut spans, whole_turn);
    } else {
        section(&mut out, "Answer", &d.sample.text.answer, Part::Body);
    }
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
            let line = format!("{} {} {}{undone} · {}", when(h.at), sanitize(&h.actor), sanitize(&h.change), sanitize(&h.action));
            out.extend(wrap(&line, width).into_iter().map(|l| (Part::Dim, l)));
        }
    }
    (out, spans)
}

/// A time of the store's (seconds since the epoch) in the local time zone, to the minute.
fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map_or_else(|| at.to_string(), |t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string())
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

/// The list's column headers, the sorted column marked ▲ (ascending) or ▼.
fn list_header(app: &App, teacher_w: usize, width: usize) -> String {
    use crate::tui::data::SortKey;
    let mark = |on: bool, down: bool| if on { if down { '▼' } else { '▲' } } else { ' ' };
    let sort = app.sort;
    let mut h = format!(
        " S{}L{} scr{}tokens{}",
        mark(sort == SortKey::Status, false),
        mark(sort == SortKey::Label, false),
        mark(sort == SortKey::Score, true),
        mark(matches!(sort, SortKey::TokensAscending | SortKey::TokensDescending), sort == SortKey::TokensDescending),
    );
    if teacher_w > 0 {
        let _ = std::fmt::Write::write_fmt(&mut h, format_args!("{:<teacher_w$}{}", "teacher", mark(sort == SortKey::Teacher, false)));
    }
    h.push_str(if sort == SortKey::Id { "prompt (by id ▲)" } else { "prompt" });
    truncate(&h, width)
}

/// The teacher column's width on a list `width` columns wide (none where the prompt needs it).
fn teacher_width(width: usize) -> usize {
    if width >= 56 { 12 } else { 0 }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    if let Some(group) = &app.group {
        crate::tui::views::group::draw(frame, area, app, group, theme);
        return;
    }
    let (list_w, _) = split_width(area.width);
    let [list_area, detail_area] = Layout::horizontal([Constraint::Length(list_w), Constraint::Fill(1)]).areas(area);
    if let (Some(search), Some(_)) = (&app.search, &app.input) {
        draw_hits(frame, list_area, search, theme);
        draw_detail(frame, detail_area, app, theme);
        return;
    }
    // The list: column headers, then a window around the cursor.
    let height = usize::from(list_area.height.saturating_sub(3));
    let start = app.list_start(height);
    let width = usize::from(list_area.width.saturating_sub(2));
    let mut lines: Vec<Line> = vec![Line::styled(list_header(app, teacher_width(width), width), theme.heading())];
    lines.extend(app.rows.iter().enumerate().skip(start).take(height).map(|(i, r)| list_line(app, r, width, theme, i == app.cursor)));
    let reading = if app.loading.is_some() { " (reading…)" } else { "" };
    let focus = if app.focus == crate::tui::app::Focus::List { "▶ " } else { "" };
    let title = format!(" {focus}Samples · by {}{reading} ", app.sort.label());
    frame.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)), list_area);
    draw_detail(frame, detail_area, app, theme);
}

/// A line of the pane with its search matches marked (the current one reversed).
fn marked_line(text: &str, style: Style, hits: &[(usize, usize, bool)], theme: Theme) -> Line<'static> {
    if hits.is_empty() {
        return Line::styled(text.to_owned(), style);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut spans = Vec::new();
    let mut at = 0;
    for &(start, len, current) in hits {
        if start > at {
            spans.push(Span::styled(chars[at..start.min(chars.len())].iter().collect::<String>(), style));
        }
        let end = (start + len).min(chars.len());
        let mark =
            if current { theme.heading().add_modifier(Modifier::REVERSED) } else { theme.heading().add_modifier(Modifier::UNDERLINED) };
        spans.push(Span::styled(chars[start.min(end)..end].iter().collect::<String>(), mark));
        at = end;
    }
    if at < chars.len() {
        spans.push(Span::styled(chars[at..].iter().collect::<String>(), style));
    }
    Line::from(spans)
}

fn draw_detail(frame: &mut Frame, detail_area: Rect, app: &App, theme: Theme) {
    let lines = &app.pane.lines;
    let visible = app.pane_height();
    let search = app.pane.search.as_ref();
    let cursor = (app.focus == crate::tui::app::Focus::Detail).then_some(app.pane.token_cursor);
    let shown: Vec<Line> = lines
        .iter()
        .enumerate()
        .skip(app.pane.scroll)
        .take(visible)
        .map(|(i, (part, text))| {
            let style = match part {
                Part::Heading => theme.heading(),
                Part::Reasoning => theme.reasoning(),
                Part::Dim => theme.dim(false),
                Part::Body | Part::Tokens => Style::default(),
            };
            if let (Some(trace), Some(on_line)) = (app.token_trace(), app.pane.tokens.by_line.get(&i)) {
                return token_line(text, on_line, trace, cursor, theme);
            }
            let hits: Vec<(usize, usize, bool)> = search
                .map(|s| s.hits.iter().enumerate().filter(|(_, h)| h.line == i).map(|(j, h)| (h.start, h.len, j == s.current)).collect())
                .unwrap_or_default();
            marked_line(text, style, &hits, theme)
        })
        .collect();
    // Who wrote it, how it ended and where it came from stay in view however far it scrolls.
    let title = match (app.current(), &app.detail) {
        (Some(r), Some(d)) => {
            let pos = app.offset.map_or_else(String::new, |o| format!("{} of {} · ", o + app.cursor as i64 + 1, app.counts.matching));
            format!("{pos}#{} · {} · {}", r.id, d.sample.status, d.sample.label)
        }
        (Some(r), None) => format!("#{}", r.id),
        _ => "Sample".to_owned(),
    };
    let focus = if app.focus == crate::tui::app::Focus::Detail { "▶ " } else { "" };
    let title = format!(" {focus}{title} ");
    let about = app.pane_header();
    let last = (app.pane.scroll + visible).min(lines.len());
    let scroll = if lines.len() > visible { format!(" lines {}–{last} of {} ", app.pane.scroll + 1, lines.len()) } else { String::new() };
    let block = Block::default().borders(Borders::ALL).title(title).title_bottom(Line::from(scroll).right_aligned());
    let inner = block.inner(detail_area);
    frame.render_widget(block, detail_area);
    let [head, body] = Layout::vertical([Constraint::Length(about.len() as u16), Constraint::Fill(1)]).areas(inner);
    let about: Vec<Line> = about.iter().map(|l| Line::styled(truncate(l, usize::from(head.width)), theme.dim(false))).collect();
    frame.render_widget(Paragraph::new(about), head);
    frame.render_widget(Paragraph::new(shown), body);
    let box_height = app.token_box_height() as u16;
    if let (Some(trace), true) = (app.token_trace(), box_height > 0) {
        let area = Rect { y: body.y + body.height.saturating_sub(box_height), height: box_height.min(body.height), ..body };
        draw_alternatives(frame, area, app, trace, theme);
    }
}

/// A token view line: each token in the style of the teacher's probability, the cursor's reversed.
fn token_line(
    text: &str,
    on_line: &[(usize, usize, usize)],
    trace: &crate::domain::trace::TokenTrace,
    cursor: Option<usize>,
    theme: Theme,
) -> Line<'static> {
    let chars: Vec<char> = text.chars().collect();
    let spans: Vec<Span> = on_line
        .iter()
        .map(|&(start, len, position)| {
            let mut style = theme.confidence(trace.logprob(position));
            if cursor == Some(position) {
                style = style.add_modifier(Modifier::REVERSED);
            }
            let end = (start + len).min(chars.len());
            Span::styled(chars[start.min(end)..end].iter().collect::<String>(), style)
        })
        .collect();
    Line::from(spans)
}

/// The box under the token cursor: the token, how likely the teacher found it, and the
/// teacher's alternatives with their probabilities, the trace's own marked.
fn draw_alternatives(frame: &mut Frame, area: Rect, app: &App, trace: &crate::domain::trace::TokenTrace, theme: Theme) {
    use crate::domain::trace::token_label;
    let at = app.pane.token_cursor.min(trace.len() - 1);
    let lp = trace.logprob(at);
    let k = app.detail.as_ref().and_then(|d| d.scoring.as_ref()).map_or(0, |s| s.k);
    let rank = trace.rank(at).map_or_else(|| format!("not in the teacher's top {k}"), |r| format!("the teacher's choice {r} of {k}"));
    let width = usize::from(area.width.saturating_sub(2));
    let label = truncate(&format!("\"{}\"", sanitize(&token_label(trace.token(at)))), width / 2);
    let rest = width.saturating_sub(unicode_width::UnicodeWidthStr::width(label.as_str()));
    let mut lines = vec![Line::from(vec![
        Span::styled(label, theme.confidence(lp).add_modifier(Modifier::REVERSED)),
        Span::raw(truncate(&format!(" {} (log-prob {lp:.3}) · {rank}", percent(lp)), rest)),
    ])];
    let rows = usize::from(area.height.saturating_sub(3));
    let bar_w = 20.min(width / 4);
    for (i, (token, alt, own)) in trace.alternatives(at).take(rows).enumerate() {
        let filled = ((f64::from(alt).exp() * bar_w as f64).round() as usize).min(bar_w);
        let bar = format!("{}{}", "█".repeat(filled), "·".repeat(bar_w - filled));
        let label = format!("\"{}\"", sanitize(&token_label(token)));
        let mine = if own { "  ◀ the trace's" } else { "" };
        let text = format!("{:>3} {:>7} {bar} {label}{mine}", i + 1, percent(alt));
        let style = if own { theme.heading() } else { theme.confidence(alt) };
        lines.push(Line::styled(truncate(&text, width), style));
    }
    let title = format!(" token {} of {} ", at + 1, trace.len());
    frame.render_widget(ratatui::widgets::Clear, area);
    frame.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)), area);
}
