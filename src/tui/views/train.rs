//! The Train tab: the form, the past runs (the cursor runs on into them; enter opens one), the
//! loss chart of the run going, the run opened or the last run, and what the student says.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::Theme;
use crate::tui::app::App;
use crate::tui::text::{sanitize, truncate};
use crate::tui::train_tab::{FIELDS, TrainState};

/// What the chart shows: a title, the curves, and the lines under it.
struct Shown<'a> {
    title: String,
    train: &'a [(f64, f64)],
    validation: &'a [(f64, f64)],
    lines: Vec<Line<'static>>,
}

fn loss(l: Option<f64>) -> String {
    l.map_or_else(|| "-".to_owned(), |l| format!("{l:.4}"))
}

/// The run going, else the past run opened, else the last run of this session.
fn shown(state: &TrainState, theme: Theme) -> Option<Shown<'_>> {
    let live = match (&state.running, &state.opened) {
        (Some(p), _) => Some(p),
        (None, None) => state.last.as_ref(),
        (None, Some(_)) => None,
    };
    if let Some(p) = live {
        let mut lines = vec![Line::raw(format!(
            "step {}/{} · loss {} · validation {} · {:.0} tokens/s · {}",
            p.step,
            p.total,
            loss(p.train.last().map(|l| l.1)),
            loss(p.validation.last().map(|l| l.1)),
            p.tokens_per_s,
            p.state()
        ))];
        if let Some(out) = &p.out {
            lines.push(Line::styled(format!("into {}", sanitize(out)), theme.dim(false)));
        }
        lines.push(Line::styled(sanitize(&p.note), theme.dim(false)));
        return Some(Shown { title: " Loss ".into(), train: &p.train, validation: &p.validation, lines });
    }
    let o = state.opened.as_ref()?;
    let r = &o.run;
    let mut lines = vec![Line::raw(format!(
        "run #{} {} · {} steps · loss {} · validation {}",
        r.id,
        sanitize(&r.status),
        r.steps,
        loss(r.loss),
        loss(r.validation_loss)
    ))];
    lines.push(Line::styled(format!("model {}", sanitize(&r.base_model)), theme.dim(false)));
    if let Some(dir) = &r.adapter_dir {
        lines.push(Line::styled(format!("adapter {}", sanitize(dir)), theme.dim(false)));
    }
    if o.curves.validation.is_empty() {
        lines.push(Line::styled("no validation loss: its export had no validation part", theme.dim(false)));
    }
    Some(Shown { title: format!(" Loss · run #{} ", r.id), train: &o.curves.train, validation: &o.curves.validation, lines })
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let state = &app.train;
    let [left, right] = Layout::horizontal([Constraint::Percentage(40), Constraint::Fill(1)]).areas(area);
    let [form, past] = Layout::vertical([Constraint::Length(FIELDS.len() as u16 + 2), Constraint::Fill(1)]).areas(left);
    let selected = Style::default().add_modifier(Modifier::REVERSED);
    let width = usize::from(form.width.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    for (i, name) in FIELDS.iter().enumerate() {
        let value = match state.form.values.get(i) {
            // The out dir left empty: each run makes its own.
            Some(v) if v.is_empty() && i == 2 => {
                let model = state.form.values[0].trim();
                let name = if model.is_empty() { "<model>".to_owned() } else { crate::ops::train::run_name(std::path::Path::new(model)) };
                let full = format!("(new {}/{name}-N)", crate::ops::train::RUNS_DIR);
                if full.chars().count() <= width.saturating_sub(16) { full } else { "(new per run)".to_owned() }
            }
            Some(v) if v.is_empty() => "(enter to set)".to_owned(),
            Some(v) => v.clone(),
            None if state.running.is_some() => "running: enter cancels".to_owned(),
            None => String::new(),
        };
        let value = truncate(&sanitize(&value), width.saturating_sub(16));
        let line = Line::from(vec![Span::styled(format!("{name:<14} "), theme.heading()), Span::raw(value)]);
        lines.push(if i == state.form.cursor { line.style(selected) } else { line });
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Train · enter changes, starts or cancels ")),
        form,
    );

    let mut runs: Vec<Line> = Vec::new();
    if state.past.is_empty() {
        runs.push(Line::raw("No runs yet."));
    }
    let under = state.form.cursor.checked_sub(FIELDS.len());
    let opened = state.opened.as_ref().map(|o| o.run.id);
    for (i, r) in state.past.iter().enumerate() {
        let (id, status, base, steps) = (r.id, sanitize(&r.status), &r.base_model, r.steps);
        let base = truncate(&sanitize(base), usize::from(past.width.saturating_sub(38)));
        let mark = if opened == Some(id) { '▸' } else { ' ' };
        let line = Line::raw(format!("{mark}#{id:<4} {status:<9} {steps:>6} steps  loss {:>7}  {base}", loss(r.loss)));
        runs.push(if under == Some(i) { line.style(selected) } else { line });
    }
    // The cursor's row stays in sight.
    let room = usize::from(past.height.saturating_sub(2)).max(1);
    let scroll = under.map_or(0, |i| (i + 1).saturating_sub(room));
    frame.render_widget(
        Paragraph::new(runs)
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
            .block(Block::default().borders(Borders::ALL).title(" Past runs · enter opens ")),
        past,
    );

    let shown = shown(state, theme);
    let [chart_area, info] = Layout::vertical([Constraint::Fill(2), Constraint::Fill(1)]).areas(right);
    let mut text: Vec<Line> = Vec::new();
    match &shown {
        None => text.push(Line::raw(
            "Set the model directory and the export, then start: the chart shows the loss as it trains. Enter on a past run shows its chart.",
        )),
        Some(s) => text.extend(s.lines.iter().cloned()),
    }
    if state.opened.is_none() || state.running.is_some() {
        if let Some(Err(e)) = &state.result {
            text.push(Line::styled(sanitize(e), theme.status("rejected")));
        }
        for (prompt, answer) in &state.answers {
            text.push(Line::styled(
                format!("› {}", truncate(&sanitize(prompt), usize::from(info.width.saturating_sub(4)))),
                theme.heading(),
            ));
            text.push(Line::raw(sanitize(answer)));
        }
    }
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Run · the student's answers after it ")),
        info,
    );
    let (title, train, val) = shown.as_ref().map_or((" Loss ".to_owned(), &[][..], &[][..]), |s| (s.title.clone(), s.train, s.validation));
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
        .block(Block::default().borders(Borders::ALL).title(title))
        .x_axis(Axis::default().title("step").bounds([0.0, x_max]).labels(["0".to_owned(), format!("{x_max:.0}")]))
        .y_axis(Axis::default().bounds([y_min, y_max]).labels([format!("{y_min:.2}"), format!("{y_max:.2}")]));
    frame.render_widget(chart, chart_area);
}
