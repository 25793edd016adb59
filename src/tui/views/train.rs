//! The Train tab: the form, the past runs, the loss chart and what the student says after a run.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::Theme;
use crate::tui::app::App;
use crate::tui::train_tab::FIELDS;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let state = &app.train;
    let [left, right] = Layout::horizontal([Constraint::Percentage(40), Constraint::Fill(1)]).areas(area);
    let [form, past] = Layout::vertical([Constraint::Length(FIELDS.len() as u16 + 2), Constraint::Fill(1)]).areas(left);
    let width = usize::from(form.width.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    for (i, name) in FIELDS.iter().enumerate() {
        let value = match state.form.values.get(i) {
            Some(v) if v.is_empty() => "(enter to set)".to_owned(),
            Some(v) => v.clone(),
            None if state.running.is_some() => "running: enter cancels".to_owned(),
            None => String::new(),
        };
        let value = crate::tui::text::truncate(&crate::tui::text::sanitize(&value), width.saturating_sub(16));
        let line = Line::from(vec![Span::styled(format!("{name:<14} "), theme.heading()), Span::raw(value)]);
        lines.push(if i == state.form.cursor { line.style(Style::default().add_modifier(Modifier::REVERSED)) } else { line });
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Train · enter changes, starts or cancels ")),
        form,
    );
    let mut runs: Vec<Line> = Vec::new();
    if state.past.is_empty() {
        runs.push(Line::raw("No runs yet."));
    }
    for r in &state.past {
        let (id, status, base, steps, loss) = (r.id, &r.status, &r.base_model, r.steps, r.loss);
        let base = crate::tui::text::truncate(&crate::tui::text::sanitize(base), usize::from(past.width.saturating_sub(36)));
        let loss = loss.map_or_else(|| "-".to_owned(), |l| format!("{l:.3}"));
        runs.push(Line::raw(format!("#{id:<4} {status:<9} {steps:>6} steps  loss {loss:>7}  {base}")));
    }
    frame.render_widget(Paragraph::new(runs).block(Block::default().borders(Borders::ALL).title(" Past runs ")), past);

    let shown = state.running.as_ref().or(state.last.as_ref());
    let [chart_area, info] = Layout::vertical([Constraint::Fill(2), Constraint::Fill(1)]).areas(right);
    let mut text: Vec<Line> = Vec::new();
    match shown {
        None => text.push(Line::raw("Set the model directory and the export, then start. The chart shows the loss as it trains.")),
        Some(p) => {
            let loss = p.train.last().map_or_else(|| "-".to_owned(), |l| format!("{:.4}", l.1));
            let val = p.validation.last().map_or_else(|| "-".to_owned(), |l| format!("{:.4}", l.1));
            let eta = p.eta_s().map_or_else(String::new, |s| format!(" · eta {s:.0}s"));
            text.push(Line::raw(format!(
                "step {}/{} · loss {loss} · validation {val} · {:.0} tokens/s{eta}",
                p.step, p.total, p.tokens_per_s
            )));
            text.push(Line::styled(crate::tui::text::sanitize(&p.note), theme.dim(false)));
        }
    }
    if let Some(Err(e)) = &state.result {
        text.push(Line::styled(crate::tui::text::sanitize(e), theme.status("rejected")));
    }
    for (prompt, answer) in &state.answers {
        text.push(Line::styled(
            format!("› {}", crate::tui::text::truncate(&crate::tui::text::sanitize(prompt), usize::from(info.width.saturating_sub(4)))),
            theme.heading(),
        ));
        text.push(Line::raw(crate::tui::text::sanitize(answer)));
    }
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Run · the student's answers after it ")),
        info,
    );
    let (train, val) = shown.map_or((&[][..], &[][..]), |p| (p.train.as_slice(), p.validation.as_slice()));
    let all = train.iter().chain(val);
    let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let (y_min, y_max) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (y_min, y_max) = if y_min.is_finite() { (y_min.min(y_max - 1e-3), y_max) } else { (0.0, 1.0) };
    let datasets = vec![
        Dataset::default()
            .name("train")
            .marker(ratatui::symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.status("accepted"))
            .data(train),
        Dataset::default()
            .name("validation")
            .marker(ratatui::symbols::Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(theme.status("rejected"))
            .data(val),
    ];
    let chart = Chart::new(datasets)
        .block(Block::default().borders(Borders::ALL).title(" Loss "))
        .x_axis(Axis::default().title("step").bounds([0.0, x_max]).labels(["0".to_owned(), format!("{x_max:.0}")]))
        .y_axis(Axis::default().bounds([y_min, y_max]).labels([format!("{y_min:.2}"), format!("{y_max:.2}")]));
    frame.render_widget(chart, chart_area);
}
