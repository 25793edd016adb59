//! Reviewing as a curator does, headless over a real store: the sample pane paged and searched,
//! best-of-n judged in the group view, the palette, the mouse, copying, and counts that equal
//! the store's after every decision, undo and redo. Snapshots at 80×24 and 160×48.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use common::Sandbox;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use retort::tui::Headless;
use retort::tui::app::{Focus, Outside};

async fn demo(sb: &Sandbox, size: (u16, u16)) -> Headless {
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    retort::demo::import_demo(&store).await.unwrap();
    Headless::new(store, size).await.unwrap()
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn typed(text: &str) -> Vec<KeyEvent> {
    text.chars().map(key).collect()
}

/// The counts the status line shows, as the store holds them.
async fn store_counts(h: &Headless) -> retort::store::browse::Counts {
    retort::store::browse::counts(&h.store, &h.app.filter).await.unwrap()
}

/// Moves the list to sample `id` through the palette, as a curator would.
async fn go_to(h: &mut Headless, id: i64) {
    h.press(&[key(':')]).await;
    h.press(&typed(&format!("#{id}"))).await;
    h.press(&[code(KeyCode::Enter)]).await;
    assert_eq!(h.app.current().map(|r| r.id), Some(id), "{}", h.render());
}

/// The sample of the demo set with the longest reasoning.
fn longest(sb: &Sandbox) -> i64 {
    sb.query_i64("SELECT sample_id FROM sample_texts ORDER BY length(reasoning) DESC LIMIT 1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_equal_the_store_after_decisions_undo_and_redo() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    for k in ['a', 'u'] {
        h.press(&[key(k)]).await;
        assert_eq!(h.app.counts, store_counts(&h).await, "after {k}");
    }
    h.press(&[ctrl('r')]).await;
    assert_eq!(h.app.counts, store_counts(&h).await, "after ctrl-r");
    assert_eq!(h.app.counts.accepted, 1);
    // Labels, marks, a batch and its undo.
    h.press(&[key('2'), key(' '), key(' '), key('X'), key('u'), key('u'), ctrl('r'), ctrl('r')]).await;
    assert_eq!(h.app.counts, store_counts(&h).await, "after the batch");
    // The status line says the same.
    let c = store_counts(&h).await;
    assert!(h.app.status_line().contains(&format!("accepted {} rejected {}", c.accepted, c.rejected)), "{}", h.app.status_line());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_pane_pages_to_its_end_and_no_further() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (80, 24)).await;
    let id = longest(&sb);
    go_to(&mut h, id).await;
    h.press(&[key('l')]).await;
    assert_eq!(h.app.focus, Focus::Detail);
    let lines = h.app.pane.lines.len();
    let height = h.app.pane_height();
    assert!(lines > 10 * height, "a long trace: {lines} lines");
    // A page is a screenful less two lines of context.
    h.press(&[key(' ')]).await;
    assert_eq!(h.app.pane.scroll, height - 2);
    h.press(&[key('b')]).await;
    assert_eq!(h.app.pane.scroll, 0);
    // The end: the last line at the bottom, and no blank pane past it.
    h.press(&[key('G')]).await;
    assert_eq!(h.app.pane.scroll, lines - height);
    h.press(&[key('j'), key(' '), code(KeyCode::PageDown)]).await;
    assert_eq!(h.app.pane.scroll, lines - height, "no scrolling past the end");
    let screen = h.render();
    assert!(screen.contains(&format!("lines {}–{lines} of {lines}", lines - height + 1)), "{screen}");
    h.press(&[key('g')]).await;
    assert_eq!(h.app.pane.scroll, 0);
    // The list's keys come back with h; j moves the list again.
    h.press(&[key('h'), key('j')]).await;
    assert_eq!(h.app.focus, Focus::List);
    assert_ne!(h.app.current().unwrap().id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_inside_the_trace_finds_every_match_and_marks_it() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (160, 48)).await;
    let id = longest(&sb);
    go_to(&mut h, id).await;
    h.press(&[key('l'), key('/')]).await;
    h.press(&typed("wait")).await;
    h.press(&[code(KeyCode::Enter)]).await;
    let reasoning = sb.query_string(&format!("SELECT reasoning FROM sample_texts WHERE sample_id = {id}")).unwrap().to_lowercase();
    let search = h.app.pane.search.clone().unwrap();
    // Every occurrence in the stored text is a match (none spans a wrapped line here, or the
    // count would be lower: then this sample is the wrong fixture).
    let in_text = reasoning.matches("wait").count();
    assert!(in_text > 3, "the fixture has matches: {in_text}");
    assert!(search.hits.len() >= in_text, "{} matches, {in_text} in the reasoning", search.hits.len());
    let first = search.hits[0];
    assert!(h.app.pane.scroll <= first.line && first.line < h.app.pane.scroll + h.app.pane_height());
    // n moves on and wraps around; N goes back.
    h.press(&[key('n')]).await;
    assert_eq!(h.app.pane.search.as_ref().unwrap().current, 1);
    let line = h.app.pane.search.as_ref().unwrap().hits[1].line;
    assert!(h.app.pane.scroll <= line && line < h.app.pane.scroll + h.app.pane_height(), "the match is in view");
    h.press(&[key('N'), key('N')]).await;
    assert_eq!(h.app.pane.search.as_ref().unwrap().current, search.hits.len() - 1);
    assert!(h.app.message.as_deref().unwrap_or_default().starts_with(&format!("match {} of {}", search.hits.len(), search.hits.len())));
    insta::assert_snapshot!("pane_search_160x48", h.render());
}

/// A prompt of the demo set with at least `n` samples.
fn prompt_with(sb: &Sandbox, n: i64) -> (i64, Vec<i64>) {
    let pid = sb.query_i64(&format!("SELECT prompt_id FROM samples GROUP BY prompt_id HAVING count(*) >= {n} ORDER BY prompt_id LIMIT 1"));
    let ids =
        sb.query_string(&format!("SELECT group_concat(id) FROM (SELECT id FROM samples WHERE prompt_id = {pid} ORDER BY id)")).unwrap();
    (pid, ids.split(',').map(|s| s.parse().unwrap()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_of_n_is_judged_and_picked_in_the_group_view() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (160, 48)).await;
    let (pid, ids) = prompt_with(&sb, 2);
    go_to(&mut h, ids[0]).await;
    h.press(&[key('v')]).await;
    let g = h.app.group.as_ref().unwrap();
    assert_eq!(g.prompt_id, pid);
    assert_eq!(g.samples.iter().map(|s| s.id).collect::<Vec<_>>(), ids);
    // Whole answers, not their first 400 characters; the reasoning is there too.
    let answer = sb.query_string(&format!("SELECT answer FROM sample_texts WHERE sample_id = {}", ids[1])).unwrap();
    assert_eq!(g.samples[1].text.answer, answer);
    let reasoning = sb.query_string(&format!("SELECT reasoning FROM sample_texts WHERE sample_id = {}", ids[0]));
    assert_eq!(g.samples[0].text.reasoning, reasoning);
    // The cursor moves inside the group; a rejects... the one under it, and stays.
    h.press(&[key('l'), key('x')]).await;
    assert_eq!(sb.query_string(&format!("SELECT status FROM samples WHERE id = {}", ids[1])).unwrap(), "rejected");
    assert_eq!(sb.query_string(&format!("SELECT status FROM samples WHERE id = {}", ids[0])).unwrap(), "pending");
    assert_eq!(h.app.group.as_ref().unwrap().cursor, 1, "the cursor stays on the sample it decided");
    assert_eq!(h.app.current().unwrap().id, ids[0], "the list stays where it was");
    // Scrolling: together by default (each within its own text), alone after =.
    let height = h.app.group_body_height();
    let room: Vec<usize> = (0..ids.len()).map(|i| h.app.group_body(i).len().saturating_sub(height)).collect();
    assert!(room[0] > 3, "the first sample's trace is longer than the screen");
    h.press(&[key('j'), key('j')]).await;
    let g = h.app.group.as_ref().unwrap();
    assert_eq!(g.scroll, room.iter().map(|r| 2.min(*r)).collect::<Vec<_>>());
    h.press(&[key('h'), key('='), key('j')]).await;
    let g = h.app.group.as_ref().unwrap();
    assert_eq!((g.scroll[0], g.scroll[1]), (3, 2.min(room[1])), "only the one under the cursor moved");
    h.press(&[key('G')]).await;
    assert_eq!(h.app.group.as_ref().unwrap().scroll[0], room[0], "G scrolls to the end, not past it");
    h.press(&[key('j'), key(' ')]).await;
    assert_eq!(h.app.group.as_ref().unwrap().scroll[0], room[0]);
    h.press(&[key('g')]).await;
    // Pick the first: accepted, every sibling rejected, as one action that one undo reverts.
    h.press(&[key('p')]).await;
    for (i, id) in ids.iter().enumerate() {
        let want = if i == 0 { "accepted" } else { "rejected" };
        assert_eq!(sb.query_string(&format!("SELECT status FROM samples WHERE id = {id}")).unwrap(), want);
    }
    assert_eq!(h.app.counts, store_counts(&h).await);
    let screen = h.render();
    assert!(screen.contains("✓ accepted"), "{screen}");
    h.press(&[key('u')]).await;
    assert_eq!(sb.query_string(&format!("SELECT status FROM samples WHERE id = {}", ids[0])).unwrap(), "pending");
    assert_eq!(
        sb.query_string(&format!("SELECT status FROM samples WHERE id = {}", ids[1])).unwrap(),
        "rejected",
        "undo puts back what the pick changed: the earlier reject stays"
    );
    assert_eq!(h.app.counts, store_counts(&h).await);
    // A word diff of every answer against the one under the cursor.
    h.press(&[key('d')]).await;
    assert_eq!(h.app.group.as_ref().unwrap().diff_base, Some(ids[0]));
    let screen = h.render();
    assert!(screen.contains(&format!("diff against #{}", ids[0])), "{screen}");
    assert!(screen.contains(&format!("Answer (against #{})", ids[0])), "{screen}");
    insta::assert_snapshot!("group_diff_160x48", screen);
    // v closes; the list is where it was.
    h.press(&[key('v')]).await;
    assert!(h.app.group.is_none());
    assert_eq!(h.app.current().unwrap().id, ids[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_larger_than_the_screen_are_paged() {
    let sb = Sandbox::new();
    // Six answers to one prompt, as a best-of-6 sampling writes them.
    let rows: Vec<String> =
        (0..6).map(|i| format!("{{\"prompt\": \"What is 6 times 7?\", \"completion\": \"It is {}.\"}}", 40 + i)).collect();
    sb.write("six.jsonl", rows.join("\n") + "\n");
    sb.retort().args(["import", "six.jsonl"]).assert().success();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    let mut h = Headless::new(store, (80, 24)).await.unwrap();
    h.press(&[key('v')]).await;
    assert_eq!(h.app.group.as_ref().unwrap().samples.len(), 6);
    let screen = h.render();
    assert!(screen.contains("6 samples · 1–2 shown"), "{screen}");
    insta::assert_snapshot!("group_80x24", screen.clone());
    for _ in 0..4 {
        h.press(&[key('l')]).await;
    }
    let screen = h.render();
    assert!(screen.contains("5–6 shown") && screen.contains("It is 44."), "{screen}");
    // Past the last, the cursor stays.
    h.press(&[key('l'), key('l')]).await;
    assert_eq!(h.app.group.as_ref().unwrap().cursor, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_palette_finds_actions_by_name_and_jumps_to_ids() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (80, 24)).await;
    h.press(&[key(':')]).await;
    h.press(&typed("group")).await;
    let screen = h.render();
    assert!(screen.contains("group view"), "{screen}");
    insta::assert_snapshot!("palette_80x24", screen);
    h.press(&[code(KeyCode::Enter)]).await;
    assert!(h.app.group.is_some(), "enter runs the action found");
    h.press(&[code(KeyCode::Esc)]).await;
    go_to(&mut h, 57).await;
    // The status line counts the position, not the id.
    assert!(h.app.status_line().starts_with(" 57 of 241 · #57"), "{}", h.app.status_line());
    h.press(&[key(':')]).await;
    h.press(&typed("#999999")).await;
    h.press(&[code(KeyCode::Enter)]).await;
    assert_eq!(h.app.current().unwrap().id, 57, "an unknown id leaves the list be");
    assert!(h.app.message.as_deref().unwrap_or_default().contains("no sample #999999"), "{:?}", h.app.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mouse_selects_and_scrolls_and_can_be_given_back() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    let at = |kind, column, row| MouseEvent { kind, column, row, modifiers: KeyModifiers::NONE };
    // The fourth row of the list: below the tabs, the border and the headers.
    h.mouse(at(MouseEventKind::Down(MouseButton::Left), 5, 6)).await;
    assert_eq!(h.app.current().unwrap().id, 4);
    assert_eq!(h.app.detail.as_ref().unwrap().sample.id, 4);
    // The wheel over the pane scrolls it (and gives it the focus); over the list, moves it.
    h.mouse(at(MouseEventKind::ScrollDown, 80, 10)).await;
    assert_eq!(h.app.pane.scroll, 3);
    assert_eq!(h.app.focus, Focus::Detail);
    h.mouse(at(MouseEventKind::ScrollDown, 5, 10)).await;
    assert_eq!(h.app.current().unwrap().id, 5);
    // A click on a tab opens it.
    h.mouse(at(MouseEventKind::Down(MouseButton::Left), 33, 0)).await;
    assert_eq!(h.app.tab, retort::tui::app::Tab::Stats);
    h.press(&[key('M')]).await;
    assert!(!h.app.mouse);
    assert_eq!(h.app.outside.last(), Some(&Outside::Mouse(false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_asks_what_and_sends_it_with_osc52() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    let answer = sb.query_string("SELECT answer FROM sample_texts WHERE sample_id = 1").unwrap();
    h.press(&[key('y')]).await;
    assert!(h.app.message.as_deref().unwrap_or_default().contains("a answer"), "{:?}", h.app.message);
    h.press(&[key('a')]).await;
    assert_eq!(sb.query_string("SELECT status FROM samples WHERE id = 1").unwrap(), "pending", "the a after y copies, not accepts");
    match h.app.outside.last() {
        Some(Outside::Clipboard { text, .. }) => assert_eq!(text, &answer),
        other => panic!("{other:?}"),
    }
    h.press(&[key('y'), key('s')]).await;
    match h.app.outside.last() {
        Some(Outside::Clipboard { text, .. }) => {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(v["id"], 1);
            assert_eq!(v["answer"], answer.as_str());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(retort::tui::outside::osc52("4"), "\u{1b}]52;c;NA==\u{7}");
    h.press(&[key('P')]).await;
    match h.app.outside.last() {
        Some(Outside::Pager(text)) => assert!(text.starts_with("sample #1 ") && text.contains("== Answer =="), "{text}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_every_tab_and_q_closes_it_without_quitting() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (160, 48)).await;
    h.press(&[key('?')]).await;
    let entries = retort::tui::views::help_entries(&h.app);
    for section in ["Review: the sample pane (l)", "Review: the group view (v)", "Rules tab", "Export tab", "Train tab", "Stats tab"] {
        assert!(entries.iter().any(|(k, t)| k.is_none() && t == section), "{section}");
    }
    let screen = h.render();
    assert!(screen.contains("Export tab") && screen.contains("pick: accept it"), "{screen}");
    h.press(&[key('q')]).await;
    assert!(!h.app.help && !h.app.quit, "q closes the overlay, and only it");
    // At 80×24 the help scrolls.
    h.app.resize(80, 24);
    h.press(&[key('?'), key('j')]).await;
    assert!(h.app.help_scroll > 0);
    assert!(h.render().contains("j/k scroll"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_tab_scrolls_to_its_last_table() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    for _ in 0..4 {
        h.press(&[code(KeyCode::Tab)]).await;
    }
    assert_eq!(h.app.tab, retort::tui::app::Tab::Stats);
    assert!(h.app.hints().contains("scroll") && !h.app.hints().contains("accept"), "{}", h.app.hints());
    let report = retort::cli::stats_report(h.app.stats.as_ref().unwrap());
    let last = report.lines().rev().find(|l| !l.trim().is_empty()).unwrap().trim().to_owned();
    assert!(!h.render().contains(&last), "the report is longer than the screen: {last}");
    h.press(&[key('G')]).await;
    assert!(h.render().contains(&last), "{}", h.render());
    // A `G` pressed before the report and the charts have arrived still lands on their end (a
    // loaded machine gave the keystroke first and left the pane two lines down).
    h.press(&[key('g')]).await;
    let (stats, charts) = (h.app.stats.take(), h.app.charts.take());
    let _ = h.app.update(retort::tui::action::Action::SelectLast);
    (h.app.stats, h.app.charts) = (stats, charts);
    assert!(h.render().contains(&last), "{}", h.render());
    // and one line up from there is one line up from the end, not from wherever `G` was stored.
    let longest = h.app.stats_lines();
    assert!(h.render().contains(&format!("–{longest} of {longest} ")), "{}", h.render());
    let _ = h.app.update(retort::tui::action::Action::SelectPrevious);
    assert!(h.render().contains(&format!("–{} of {longest} ", longest - 1)), "{}", h.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pane_always_shows_teacher_source_finish_and_id() {
    for (w, hh) in [(80u16, 24u16), (120, 40)] {
        let sb = Sandbox::new();
        let mut h = demo(&sb, (w, hh)).await;
        let id = longest(&sb);
        go_to(&mut h, id).await;
        h.press(&[key('l'), key('G')]).await;
        let screen = h.render();
        let teacher =
            sb.query_string(&format!("SELECT name FROM teachers WHERE id = (SELECT teacher_id FROM samples WHERE id = {id})")).unwrap();
        assert!(screen.contains(&format!("#{id}")), "{screen}");
        assert!(screen.contains(&format!("teacher {teacher}")), "{screen}");
        assert!(screen.contains("source ") && screen.contains("finish "), "{screen}");
        // The list says what its columns are and how it is sorted.
        h.press(&[key('h'), key('o')]).await;
        assert!(h.render().contains("tokens▲"), "{}", h.render());
    }
}

fn enter() -> KeyEvent {
    code(KeyCode::Enter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_verifier_in_a_filter_is_refused_with_the_names_the_store_has() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    h.press(&[key('f')]).await;
    h.press(&typed("score.improted < 1")).await;
    h.press(&[enter()]).await;
    let error = h.app.input.as_ref().and_then(|i| i.error.clone()).unwrap_or_default();
    assert!(error.contains("unknown verifier `improted`") && error.contains("did you mean `score.imported`"), "{error}");
    assert_eq!(h.app.filter, retort::store::browse::ListFilter::All, "nothing filtered on a mistake");
    h.press(&[ctrl('u')]).await;
    h.press(&typed("score.imported < 1")).await;
    h.press(&[enter()]).await;
    assert!(h.app.input.is_none());
    assert_eq!(h.app.counts.matching, sb.query_i64("SELECT count(*) FROM scores WHERE score < 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_tab_counts_in_order_flags_overturns_and_asks_before_a_large_apply() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (160, 48)).await;
    h.press(&[code(KeyCode::Tab)]).await;
    for rule in ["drop: reject where score.imported < 1", "keep: accept where tokens > 0"] {
        h.press(&[key('+')]).await;
        h.press(&typed(rule)).await;
        h.press(&[enter()]).await;
    }
    // The counts are those of `rules dry-run` on the same rules, in the same order.
    sb.write("rules.txt", "drop: reject where score.imported < 1\nkeep: accept where tokens > 0\n");
    let out = sb.retort().args(["rules", "dry-run", "rules.txt", "--json"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let reports: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let changed: Vec<u64> = reports.iter().map(|r| r["changed"].as_u64().unwrap()).collect();
    let shown: Vec<u64> = h.app.rules.iter().map(|r| r.count.clone().unwrap().unwrap()).collect();
    assert_eq!(shown, changed, "{text}");
    let failing = sb.query_i64("SELECT count(*) FROM scores WHERE score < 1") as u64;
    assert!(
        h.app.rules[1].overturns.iter().any(|o| o.contains("overturns rule `drop`") && o.contains(&format!("{failing} samples"))),
        "{:?}",
        h.app.rules[1].overturns
    );
    assert!(h.render().contains("overturns rule `drop`"), "{}", h.render());
    // keep would change every sample: enter asks, another key cancels, a second enter applies.
    h.press(&[key('j'), enter()]).await;
    assert!(h.app.message.as_deref().unwrap_or_default().starts_with("apply keep? it changes 241 samples"), "{:?}", h.app.message);
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'accepted'"), 0);
    h.press(&[key('k')]).await;
    assert_eq!(h.app.message.as_deref(), Some("not applied"));
    h.press(&[key('j'), enter(), enter()]).await;
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'accepted'"), 241);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_asked_for_in_the_tui_is_stored_as_the_hard_label_and_undone() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    let answer = sb.query_string("SELECT answer FROM sample_texts WHERE sample_id = 1").unwrap();
    h.press(&[key('E')]).await;
    // The event loop opens $EDITOR on the answer; what it gives back is stored.
    let Some(Outside::Editor { id: 1, reference: false, text }) = h.app.outside.pop() else { panic!("{:?}", h.app.outside) };
    assert_eq!(text, answer);
    h.settle(vec![retort::tui::app::Effect::EditText { id: 1, reference: false, text: "The answer is 3.".into() }]).await;
    assert_eq!(sb.query_string("SELECT answer FROM sample_texts WHERE sample_id = 1").unwrap(), "The answer is 3.");
    assert_eq!(sb.query_string("SELECT label FROM samples WHERE id = 1").unwrap(), "hard");
    assert_eq!(h.app.counts, store_counts(&h).await);
    let history = &h.app.detail.as_ref().unwrap().history;
    assert!(history.iter().any(|l| l.change.starts_with("edit answer")), "the history shows the edit: {history:?}");
    h.press(&[key('u')]).await;
    assert_eq!(sb.query_string("SELECT answer FROM sample_texts WHERE sample_id = 1").unwrap(), answer);
    assert_eq!(h.app.counts, store_counts(&h).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_writers_changes_reach_the_screen_within_a_poll() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    h.settle(vec![retort::tui::app::Effect::LoadStamp]).await;
    // A rule applied in another terminal, while the curator decides here.
    h.press(&[key('a')]).await;
    sb.write("rules.txt", "drop: reject where score.imported < 1\n");
    sb.retort().args(["rules", "apply", "rules.txt"]).assert().success();
    let failing = sb.query_i64("SELECT count(*) FROM scores WHERE score < 1");
    assert_ne!(h.app.counts.rejected, failing, "not seen before the poll");
    h.settle(vec![retort::tui::app::Effect::LoadStamp]).await;
    assert_eq!(h.app.counts, store_counts(&h).await);
    assert_eq!(h.app.counts.rejected, failing);
    let shown = h.app.rows.iter().filter(|r| r.status == retort::domain::Status::Rejected).count() as i64;
    let in_store =
        sb.query_i64(&format!("SELECT count(*) FROM samples WHERE status = 'rejected' AND id <= {}", h.app.rows.last().unwrap().id));
    assert_eq!(shown, in_store, "the rows shown are read again");
    // New samples from an import there: counted, and the list reads on to them.
    sb.write("more.jsonl", "{\"prompt\": \"What is 2+2?\", \"completion\": \"4\"}\n");
    sb.retort().args(["import", "more.jsonl"]).assert().success();
    h.settle(vec![retort::tui::app::Effect::LoadStamp]).await;
    assert_eq!(h.app.counts.total, 242);
    assert_eq!(h.app.counts, store_counts(&h).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_the_review_screens_at_both_sizes() {
    for (w, hh) in [(80u16, 24u16), (160, 48)] {
        let sb = Sandbox::new();
        let mut h = demo(&sb, (w, hh)).await;
        let (_, ids) = prompt_with(&sb, 2);
        go_to(&mut h, ids[0]).await;
        // The pane with the focus, searched.
        h.press(&[key('l'), key('/')]).await;
        h.press(&typed("polar")).await;
        h.press(&[enter(), key('n')]).await;
        insta::assert_snapshot!(format!("pane_focus_{w}x{hh}"), h.render());
        // The group, the cursor on the second sample, diffed against the first.
        h.press(&[key('h'), key('v'), key('d'), key('l')]).await;
        insta::assert_snapshot!(format!("group_cursor_{w}x{hh}"), h.render());
        h.press(&[key('v')]).await;
        // The palette, and the help.
        h.press(&[key(':')]).await;
        h.press(&typed("pi")).await;
        insta::assert_snapshot!(format!("palette_pick_{w}x{hh}"), h.render());
        h.press(&[code(KeyCode::Esc), key('?')]).await;
        insta::assert_snapshot!(format!("help_{w}x{hh}"), h.render());
        h.press(&[key('q')]).await;
        // The Stats tab scrolled to its end.
        for _ in 0..4 {
            h.press(&[code(KeyCode::Tab)]).await;
        }
        h.press(&[key('G')]).await;
        insta::assert_snapshot!(format!("stats_end_{w}x{hh}"), h.render());
    }
}

/// Stores a scoring of `id` by "scorer-7b" over a small vocabulary: "Two plus two" sure,
/// " is" at 40%, " four" at 5% (its likeliest alternative " 4"), "已" split over two tokens.
async fn score_sample(h: &Headless, id: i64) {
    use retort::domain::soft::{Position, Scored, pack, pack_vocabulary};
    use retort::store::logprobs::{NewScoring, vocabulary_id, write_scorings};
    let words: Vec<Vec<u8>> =
        [&b"Two"[..], b" plus", b" two", b" is", b" four", b" 4", b"\n", &[0xE5, 0xB7], &[0xB2], b" five"].map(<[u8]>::to_vec).to_vec();
    let p = |token: u32, lp: f32, top: &[(u32, f32)]| Position { token, logprob: lp, top: top.to_vec() };
    let ln = |x: f32| x.ln();
    let scored = Scored {
        k: 3,
        positions: vec![
            p(0, ln(0.99), &[(0, ln(0.99)), (5, ln(0.005)), (9, ln(0.001))]),
            p(1, ln(0.95), &[(1, ln(0.95)), (3, ln(0.03)), (2, ln(0.01))]),
            p(2, ln(0.92), &[(2, ln(0.92)), (5, ln(0.05)), (9, ln(0.01))]),
            p(3, ln(0.4), &[(3, ln(0.4)), (1, ln(0.35)), (6, ln(0.2))]),
            p(4, ln(0.05), &[(5, ln(0.8)), (9, ln(0.1)), (4, ln(0.05))]),
            p(6, ln(0.97), &[(6, ln(0.97)), (3, ln(0.02)), (1, ln(0.005))]),
            p(7, ln(0.6), &[(7, ln(0.6)), (0, ln(0.2)), (1, ln(0.1))]),
            p(8, ln(0.999), &[(8, ln(0.999)), (0, ln(0.0005)), (1, ln(0.0001))]),
        ],
    };
    let packed = pack(&scored);
    let lps: Vec<f64> = scored.positions.iter().map(|p| f64::from(p.logprob)).collect();
    let confidence = retort::domain::soft::Confidence::of(lps).unwrap();
    let mut tx = h.store.write().await.unwrap();
    let vocabulary = vocabulary_id(&mut tx, "test vocabulary", words.len(), &pack_vocabulary(&words)).await.unwrap();
    let row = NewScoring {
        sample_id: id,
        k: 3,
        temperature: Some(1.0),
        positions: 8,
        packed,
        mean_logprob: Some(confidence.mean_logprob),
        min_logprob: Some(confidence.min_logprob),
    };
    write_scorings(&mut tx, "scorer-7b", vocabulary, &[row]).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_view_colours_each_token_and_shows_the_teachers_alternatives() {
    use ratatui::style::{Color, Modifier};
    use retort::tui::views::review::Part;
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 34)).await;
    let id = longest(&sb);
    score_sample(&h, id).await;
    go_to(&mut h, id).await;
    // Off: the summary, and the key that turns it on.
    let screen = h.render();
    assert!(screen.contains("scorer-7b · top-3 at T=1 · 8 tokens") && screen.contains("T shows the completion token by token"), "{screen}");
    assert!(h.app.pane.lines.iter().any(|(p, t)| *p == Part::Heading && t.starts_with("Reasoning")));
    h.press(&[key('T')]).await;
    let lines = &h.app.pane.lines;
    let tokens: Vec<&str> = lines.iter().filter(|(p, _)| *p == Part::Tokens).map(|(_, t)| t.as_str()).collect();
    assert_eq!(tokens, vec!["Two plus two is four↵", "已"], "{lines:?}");
    // The scoring covers the whole reply, reasoning too: the reasoning and answer give way to it.
    assert!(!lines.iter().any(|(p, t)| *p == Part::Heading && (t.starts_with("Reasoning") || t == "Answer")), "{lines:?}");
    // Colours by probability, in the cells the tokens are drawn in.
    let buffer = h.buffer(true);
    let cell_of = |needle: &str| {
        let area = buffer.area;
        (0..area.height)
            .find_map(|y| {
                let row: String = (0..area.width).map(|x| buffer[(x, y)].symbol().to_owned()).collect();
                row.find(needle).map(|at| (row[..at].chars().count() as u16, y))
            })
            .unwrap()
    };
    let style = |needle: &str| buffer[cell_of(needle)].style();
    assert_eq!(style("Two plus").fg, Some(Color::Reset), "sure: plain");
    assert_eq!(style(" is four").fg.map(|_| ()), Some(()));
    let (x, y) = cell_of(" is four");
    assert_eq!(buffer[(x + 1, y)].style().fg, Some(Color::Indexed(208)), " is at 40%: orange");
    assert_eq!(buffer[(x + 4, y)].style().fg, Some(Color::Red), " four at 5%: red");
    assert!(buffer[(x + 4, y)].style().add_modifier.contains(Modifier::BOLD));
    // Without colour the unsure tokens are underlined.
    let mono = h.buffer(false);
    assert!(mono[(x + 1, y)].style().add_modifier.contains(Modifier::UNDERLINED));
    // In the pane, ] stops at each token below even odds and the box names its alternatives.
    h.press(&[key('l'), key(']')]).await;
    assert_eq!(h.app.pane.token_cursor, 3);
    let screen = h.render();
    assert!(screen.contains("token 4 of 8") && screen.contains("\" is\" 40% (log-prob -0.916) · the teacher's choice 1 of 3"), "{screen}");
    h.press(&[key(']')]).await;
    let screen = h.render();
    assert!(screen.contains("\" four\" 5.00% (log-prob -2.996) · the teacher's choice 3 of 3"), "{screen}");
    assert!(screen.contains("  1     80% ") && screen.contains("\" 4\"") && screen.contains("◀ the trace's"), "{screen}");
    insta::assert_snapshot!("review_tokens_120x34", screen);
    // No token below 50% after " four" but the split "已" at 60%: ] says so and stays.
    h.press(&[key(']'), key(']')]).await;
    assert_eq!(h.app.pane.token_cursor, 4);
    assert_eq!(h.app.message.as_deref(), Some("no token below 50% that way"));
    h.press(&[key('w'), key('w')]).await;
    assert_eq!(h.app.pane.token_cursor, 6);
    assert!(h.render().contains("\"\\xE5\\xB7\" 60%"), "{}", h.render());
    h.press(&[key('['), key(',')]).await;
    assert_eq!(h.app.pane.token_cursor, 3);
    // Off again: the reasoning and the answer are back.
    h.press(&[key('T')]).await;
    assert!(h.app.pane.lines.iter().any(|(p, t)| *p == Part::Heading && t == "Answer"));
    assert!(h.app.pane.tokens.by_line.is_empty());
    // An API's log-probs (the demo's OpenAI exchange) cover the answer only: the reasoning stays.
    h.press(&[key('h'), key('T')]).await;
    let json = sb.query_i64("SELECT sample_id FROM sample_logprobs WHERE content IS NOT NULL LIMIT 1");
    go_to(&mut h, json).await;
    let lines = &h.app.pane.lines;
    assert!(lines.iter().any(|(p, t)| *p == Part::Heading && t.starts_with("Answer, token by token")), "{lines:?}");
    assert!(lines.iter().any(|(p, _)| *p == Part::Tokens));
    // A sample without log-probs shows its text, and says why there are no tokens.
    go_to(&mut h, id + 1).await;
    assert!(h.app.pane.lines.iter().any(|(p, t)| *p == Part::Heading && t == "Answer"));
}
