//! Drawing: pure functions of the App's state. They never await and never touch the store.

pub mod review;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Tabs, Wrap};

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
        Tab::Stats => draw_stats(frame, main, app),
        Tab::Rules => draw_rules(frame, main, app, theme),
        Tab::Export => draw_coming(
            frame,
            main,
            "Export",
            "arrives with the export issue (#5): until then, `retort list --where ... --json` writes the selected samples as JSONL.",
        ),
        Tab::Train => draw_coming(frame, main, "Train", "arrives with the built-in LoRA trainer (#7)."),
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
    if app.help {
        draw_help(frame, app, theme);
    }
}

fn draw_coming(frame: &mut Frame, area: Rect, title: &str, text: &str) {
    frame.render_widget(
        Paragraph::new(text.to_owned()).wrap(Wrap { trim: true }).block(Block::default().borders(Borders::ALL).title(format!(" {title} "))),
        area,
    );
}

fn draw_stats(frame: &mut Frame, area: Rect, app: &App) {
    let text = app.stats.as_ref().map_or_else(|| "reading…".to_owned(), crate::cli::stats_report);
    frame.render_widget(Paragraph::new(super::text::sanitize(&text)).block(Block::default().borders(Borders::ALL).title(" Stats ")), area);
}

fn draw_rules(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let mut lines: Vec<Line> = Vec::new();
    if app.rules.is_empty() {
        lines.push(Line::raw("No saved rules yet: `retort rules apply FILE` saves the rules it applies."));
    }
    for (name, source) in &app.rules {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<24} ", super::text::truncate(&super::text::sanitize(name), 24)), theme.heading()),
            Span::raw(super::text::sanitize(source)),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Saved rules ")), area);
}

fn draw_help(frame: &mut Frame, app: &App, theme: Theme) {
    let area = frame.area();
    let w = area.width.saturating_sub(8).min(72);
    let h = area.height.saturating_sub(4).min(app.keymap.bindings().len() as u16 + 4);
    let popup = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    let lines: Vec<Line> = app
        .keymap
        .bindings()
        .iter()
        .map(|(action, keys)| {
            let keys: Vec<String> = keys.iter().map(super::keymap::Key::label).collect();
            Line::from(vec![Span::styled(format!("{:<16}", keys.join(" ")), theme.heading()), Span::raw(action.describe())])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Keys (any key closes) ")), popup);
}
