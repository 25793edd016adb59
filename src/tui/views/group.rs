//! The group view: a prompt's samples side by side, a page of them at a time.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::Theme;
use crate::tui::app::App;
use crate::tui::group::{Group, Seg, per_page};
use crate::tui::text::{sanitize, truncate};

fn style(seg: Seg, theme: Theme) -> Style {
    match seg {
        Seg::Heading => theme.heading(),
        Seg::Reasoning => theme.reasoning(),
        Seg::Text => Style::default(),
        Seg::Added => theme.status("accepted").add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        Seg::Removed => theme.status("rejected").add_modifier(Modifier::CROSSED_OUT),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, g: &Group, theme: Theme) {
    let per = per_page(area.width);
    let (first, n) = g.page(per);
    let total = g.samples.len();
    let mut title = format!(" Group · prompt {} · {total} samples", g.prompt_id);
    if total > n {
        let _ = write!(title, " · {}–{} shown", first + 1, first + n);
    }
    title.push_str(if g.linked { " · scrolling together" } else { " · each scrolls alone" });
    if let Some(b) = g.diff_base {
        let _ = write!(title, " · diff against #{b}");
    }
    title.push(' ');
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [prompt_area, columns_area] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    let prompt = g.samples.first().map(|s| s.text.prompt.replace('\n', " ")).unwrap_or_default();
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("Prompt ", theme.heading()),
            Span::raw(truncate(&sanitize(&prompt), usize::from(prompt_area.width).saturating_sub(7))),
        ])),
        prompt_area,
    );
    if total == 0 {
        frame.render_widget(Paragraph::new("This prompt has no samples left."), columns_area);
        return;
    }
    let header_h = app.group_header_height();
    let body_h = app.group_body_height();
    let shown = g.columns(area.width);
    let columns = Layout::horizontal(vec![Constraint::Ratio(1, shown as u32); shown]).split(columns_area);
    for (k, col) in columns.iter().enumerate().take(n) {
        let i = first + k;
        let s = &g.samples[i];
        let width = usize::from(col.width.saturating_sub(1)).max(4);
        let here = i == g.cursor;
        let head_style = if here {
            theme.status(s.status.as_str()).add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            theme.status(s.status.as_str()).add_modifier(Modifier::BOLD)
        };
        let mark = match s.status.as_str() {
            "accepted" => "✓",
            "rejected" => "✗",
            _ => "·",
        };
        let mut lines = vec![
            Line::styled(
                truncate(&format!("{}{}/{total} #{} {mark} {} · {}", if here { "▶ " } else { "" }, i + 1, s.id, s.status, s.label), width),
                head_style,
            ),
            Line::styled(truncate(&format!("teacher {}", sanitize(&s.teacher)), width), theme.dim(false)),
            Line::raw(truncate(&format!("finish {} · {} tok", sanitize(s.finish_reason.as_deref().unwrap_or("-")), s.tokens), width)),
        ];
        for (name, v) in &s.scores {
            let pass = match s.passed.get(name) {
                Some(true) => " pass",
                Some(false) => " fail",
                None => "",
            };
            lines.push(Line::raw(truncate(&format!("{} {v:.2}{pass}", sanitize(name)), width)));
        }
        while lines.len() < header_h {
            lines.push(Line::raw(String::new()));
        }
        let body = app.group_body(i);
        let scroll = g.scroll.get(i).copied().unwrap_or(0);
        lines.extend(
            body.iter()
                .skip(scroll)
                .take(body_h)
                .map(|l| Line::from(l.iter().map(|(seg, t)| Span::styled(t.clone(), style(*seg, theme))).collect::<Vec<_>>())),
        );
        while lines.len() < header_h + body_h {
            lines.push(Line::raw(String::new()));
        }
        let last = (scroll + body_h).min(body.len());
        lines.push(Line::styled(
            truncate(&format!("lines {}–{last} of {}", (scroll + 1).min(body.len()), body.len()), width),
            theme.dim(false),
        ));
        frame.render_widget(Paragraph::new(lines), Rect { width: col.width.saturating_sub(1), ..*col });
    }
}
