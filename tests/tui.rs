//! The TUI without a terminal: action sequences on a headless App over a real store, and
//! snapshots of every tab at 80×24 and 160×48.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use common::Sandbox;
use retort::tui::Headless;
use retort::tui::action::Action;
use retort::tui::app::Tab;

/// A store holding the demo set, and a headless TUI on it.
async fn demo(sb: &Sandbox, size: (u16, u16)) -> Headless {
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    retort::demo::import_demo(&store).await.unwrap();
    Headless::new(store, size).await.unwrap()
}

fn status_of(sb: &Sandbox, id: i64) -> String {
    sb.query_string(&format!("SELECT status FROM samples WHERE id = {id}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_reject_undo_are_written_at_once() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    assert_eq!(h.app.current().unwrap().id, 1);
    h.act(Action::Accept).await;
    assert_eq!(status_of(&sb, 1), "accepted");
    assert_eq!(h.app.current().unwrap().id, 2, "accept moves on");
    h.act(Action::Reject).await;
    assert_eq!(status_of(&sb, 2), "rejected");
    assert_eq!(h.app.counts.accepted, 1);
    assert_eq!(h.app.counts.rejected, 1);
    h.act(Action::Undo).await;
    assert_eq!(status_of(&sb, 2), "pending");
    assert_eq!(h.app.rows[1].status, retort::domain::Status::Pending, "the list shows the undo");
    h.act(Action::LabelSoft).await;
    assert_eq!(sb.query_string("SELECT label FROM samples WHERE id = 3").unwrap(), "soft");
    assert_eq!(sb.query_string("SELECT decided_by FROM samples WHERE id = 1").unwrap(), "curator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_make_one_batch_action() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    for _ in 0..3 {
        h.act(Action::ToggleMark).await;
    }
    assert_eq!(h.app.marks.len(), 3);
    h.act(Action::RejectMarked).await;
    assert!(h.app.marks.is_empty());
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'rejected'"), 3);
    assert_eq!(sb.query_i64("SELECT count(*) FROM actions"), 1, "one batch, one action");
    h.act(Action::Undo).await;
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'rejected'"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_pages_through_the_whole_store() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 30)).await;
    // Walk down every sample one key at a time, then jump to both ends.
    let total = h.app.counts.total;
    let mut seen = vec![h.app.current().unwrap().id];
    for _ in 1..total {
        h.act(Action::SelectNext).await;
        seen.push(h.app.current().unwrap().id);
    }
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    h.act(Action::SelectFirst).await;
    assert_eq!(h.app.current().unwrap().id, 1);
    h.act(Action::SelectLast).await;
    assert_eq!(h.app.current().unwrap().id, total);
    h.act(Action::PageUp).await;
    assert_eq!(h.app.current().unwrap().id, total - h.app.list_height() as i64);
    assert!(h.app.rows.len() <= 400, "the window stays bounded");
    let detail = h.app.detail.as_ref().unwrap();
    assert_eq!(detail.sample.id, h.app.current().unwrap().id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_each_tab() {
    for (w, h_) in [(80u16, 24u16), (160, 48)] {
        let sb = Sandbox::new();
        let mut h = demo(&sb, (w, h_)).await;
        insta::assert_snapshot!(format!("review_{w}x{h_}"), h.render());
        h.act(Action::GroupView).await;
        insta::assert_snapshot!(format!("group_{w}x{h_}"), h.render());
        h.act(Action::GroupView).await;
        h.act(Action::Help).await;
        insta::assert_snapshot!(format!("help_{w}x{h_}"), h.render());
        h.act(Action::Help).await;
        for tab in [Tab::Rules, Tab::Export, Tab::Train, Tab::Stats] {
            h.act(Action::NextTab).await;
            assert_eq!(h.app.tab, tab);
            insta::assert_snapshot!(format!("{}_{w}x{h_}", tab.title().to_lowercase()), h.render());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teacher_text_cannot_drive_the_terminal() {
    let sb = Sandbox::new();
    let evil =
        "{\"prompt\": \"Say hi \\u001b[2J\\u001b]0;pwned\\u0007 中文很长的一行\", \"completion\": \"hi\\u001b[31m red \\u202e gnirts\"}\n";
    sb.write("evil.jsonl", evil);
    sb.retort().args(["import", "evil.jsonl"]).assert().success();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    let h = Headless::new(store, (80, 24)).await.unwrap();
    let screen = h.render();
    assert!(!screen.contains('\u{1b}') && !screen.contains('\u{7}') && !screen.contains('\u{202e}'), "{screen}");
    assert!(screen.contains("␛[2J"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_tools_and_tool_calls_are_shown() {
    let sb = Sandbox::new();
    // A real LLaMA-Factory glaive row: earlier turns, a function call and its observation.
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(common::data("chat-formats/llamafactory_glaive_toolcall_en_demo.json")).unwrap())
            .unwrap();
    let row = rows.iter().find(|r| r["conversations"].as_array().unwrap().iter().any(|t| t["from"] == "function_call")).unwrap();
    sb.write("glaive.json", serde_json::to_string(&[row]).unwrap());
    // An answer that is a tool call, in OpenAI's shape.
    sb.write(
        "call.jsonl",
        r#"{"messages":[{"role":"user","content":"Weather in Paris?"},{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string"}},"required":["city"]}}}]}
"#,
    );
    sb.retort().args(["import", "glaive.json", "call.jsonl"]).assert().success();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    let mut h = Headless::new(store, (160, 60)).await.unwrap();
    let screen = h.render();
    let turns = row["conversations"].as_array().unwrap().len() - 1;
    assert!(screen.contains(&format!("Conversation ({turns} turns before the answer)")), "{screen}");
    assert!(screen.contains("▸ tool") && screen.contains("▸ assistant") && screen.contains("→ "), "{screen}");
    assert!(screen.contains("Tools offered (1)"), "{screen}");
    h.act(Action::SelectNext).await;
    let screen = h.render();
    assert!(screen.contains("Prompt") && !screen.contains("Conversation"), "a single turn is a prompt: {screen}");
    assert!(screen.contains("Tool calls (1)") && screen.contains(r#"→ get_weather({"city":"Paris"})"#), "{screen}");
    assert!(screen.contains("get_weather(city, unit?) — Current weather"), "{screen}");
    // Side by side with the prompt's other samples, the call is the answer.
    h.act(Action::GroupView).await;
    assert!(h.render().contains(r#"→ get_weather({"city":"Paris"})"#), "{}", h.render());
}

/// ctrl-u: clears the line being typed.
fn ctrl_u() -> ratatui::crossterm::event::KeyEvent {
    ratatui::crossterm::event::KeyEvent::new(
        ratatui::crossterm::event::KeyCode::Char('u'),
        ratatui::crossterm::event::KeyModifiers::CONTROL,
    )
}

fn keys(text: &str) -> Vec<ratatui::crossterm::event::KeyEvent> {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut out: Vec<KeyEvent> = text.chars().map(|c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)).collect();
    out.push(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_search_and_full_text_narrow_the_list() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    // A filter with a mistake stays open with the column of the mistake.
    h.act(Action::Filter).await;
    h.type_keys(&keys("tokenz > 3")).await;
    let error = h.app.input.as_ref().unwrap().error.clone().unwrap();
    assert!(error.starts_with("column 1: unknown field `tokenz`"), "{error}");
    h.type_keys(&[ctrl_u()]).await;
    // Nested a thousand deep: an error at its column, not a stack overflow that leaves the
    // terminal in the alternate screen.
    h.type_keys(&keys(&format!("{}tokens > 1{}", "(".repeat(1000), ")".repeat(1000)))).await;
    let error = h.app.input.as_ref().unwrap().error.clone().unwrap();
    assert!(error.starts_with("column 101: nested more than 100 levels"), "{error}");
    h.type_keys(&[ctrl_u()]).await;
    h.type_keys(&keys("score.imported < 1 and tokens > 3000")).await;
    assert!(h.app.input.is_none());
    let expected = sb.query_i64(
        "SELECT count(*) FROM samples s JOIN scores sc ON sc.sample_id = s.id JOIN verifiers v ON v.id = sc.verifier_id \
         WHERE v.name = 'imported' AND sc.score < 1 AND s.tokens > 3000",
    );
    assert_eq!(h.app.counts.matching, expected);
    assert!(h.app.rows.iter().all(|r| r.tokens > 3000 && r.scores["imported"] < 1.0));
    assert!(h.render().contains("matching `score.imported < 1 and tokens > 3000`"));
    h.act(Action::ClearFilter).await;
    assert_eq!(h.app.counts.matching, h.app.counts.total);

    // Fuzzy search: hits first, then Enter narrows the list to the prompts found.
    h.act(Action::Search).await;
    h.type_keys(&keys("hexagon")[..7]).await;
    let hits = h.app.search.as_ref().unwrap().hits.clone();
    assert!(hits.iter().any(|hit| hit.text.starts_with("A regular hexagon")), "{hits:?}");
    h.type_keys(&keys("")).await;
    assert!(h.app.rows.iter().all(|r| hits.iter().any(|hit| hit.target == retort::tui::search::Target::Prompt(r.prompt_id))));
    assert!(h.app.rows.iter().any(|r| r.preview.contains("hexagon")));

    // Full text: every word must occur somewhere in prompt, reasoning or answer.
    h.act(Action::FullText).await;
    h.type_keys(&keys("polar coordinates")).await;
    assert!(!h.app.rows.is_empty());
    for r in &h.app.rows {
        let text = sb.query_string(&format!(
            "SELECT lower(pt.text || coalesce(t.reasoning, '') || t.answer) FROM samples s JOIN prompt_texts pt ON pt.prompt_id = s.prompt_id \
             JOIN sample_texts t ON t.sample_id = s.id WHERE s.id = {}",
            r.id
        ));
        let text = text.unwrap();
        assert!(text.contains("polar") && text.contains("coordinates"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_saved_and_undone() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    h.act(Action::Note).await;
    h.type_keys(&keys("answer ok, reasoning loops")).await;
    assert_eq!(sb.query_string("SELECT note FROM notes WHERE sample_id = 1").unwrap(), "answer ok, reasoning loops");
    assert_eq!(h.app.detail.as_ref().unwrap().note.as_deref(), Some("answer ok, reasoning loops"));
    h.act(Action::Undo).await;
    assert_eq!(sb.query_i64("SELECT count(*) FROM notes"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_tab_counts_applies_and_undoes() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    h.act(Action::NextTab).await;
    assert_eq!(h.app.tab, Tab::Rules);
    // A rule written in the tab: a mistake shows its column, then it is saved with its live count.
    h.act(Action::NewRule).await;
    h.type_keys(&keys("wrong: reject where score.imported < \"x\"")).await;
    assert!(h.app.input.as_ref().unwrap().error.as_ref().unwrap().starts_with("column 38"), "{:?}", h.app.input);
    h.type_keys(&[ctrl_u()]).await;
    h.type_keys(&keys("wrong: reject where score.imported < 1")).await;
    let failing = sb.query_i64("SELECT count(*) FROM scores WHERE score < 1");
    assert_eq!(h.app.rules.len(), 1);
    assert_eq!(h.app.rules[0].count, Some(Ok(failing as u64)));
    assert!(h.render().contains("wrong"));
    h.act(Action::ApplyRule).await;
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'rejected'"), failing);
    assert_eq!(h.app.rules[0].count, Some(Ok(0)), "applied: nothing left to change");
    h.act(Action::Undo).await;
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'rejected'"), 0);
    h.act(Action::Redo).await;
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'rejected'"), failing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorted_lists_page_through_every_sample_in_order() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 30)).await;
    let total = h.app.counts.total as usize;
    for (presses, check) in [(1usize, "tokens up"), (1, "tokens down"), (2, "teacher"), (2, "score")] {
        for _ in 0..presses {
            h.act(Action::Sort).await;
        }
        let mut seen = vec![h.app.current().unwrap().clone()];
        for _ in 1..total {
            h.act(Action::SelectNext).await;
            seen.push(h.app.current().unwrap().clone());
        }
        let mut ids: Vec<i64> = seen.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), total, "{check}: every sample once");
        let ordered = match check {
            "tokens up" => seen.windows(2).all(|w| w[0].tokens <= w[1].tokens),
            "tokens down" => seen.windows(2).all(|w| w[0].tokens >= w[1].tokens),
            "score" => {
                let score = |r: &retort::tui::data::ListRow| retort::tui::data::main_score(&r.scores).unwrap_or(-1.0);
                seen.windows(2).all(|w| score(&w[0]) >= score(&w[1]))
            }
            _ => seen.windows(2).all(|w| w[0].teacher <= w[1].teacher),
        };
        assert!(ordered, "{check}: out of order");
        // And back up from the end.
        h.act(Action::SelectLast).await;
        for _ in 1..total {
            h.act(Action::SelectPrevious).await;
        }
        assert_eq!(h.app.current().unwrap().id, seen[0].id, "{check}: walking back up ends where it started");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_tab_previews_and_runs_an_export() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (120, 40)).await;
    h.act(Action::Accept).await;
    h.act(Action::Accept).await;
    h.act(Action::NextTab).await;
    h.act(Action::NextTab).await;
    assert_eq!(h.app.tab, Tab::Export);
    let preview = h.app.export.preview.clone().unwrap().unwrap();
    assert_eq!(preview.samples, 2, "the two accepted samples");
    // Statuses: pending too; the preview follows.
    for _ in 0..4 {
        h.act(Action::SelectNext).await;
    }
    h.act(Action::ApplyRule).await;
    h.type_keys(&[ctrl_u()]).await;
    h.type_keys(&keys("accepted,pending")).await;
    assert_eq!(h.app.export.preview.clone().unwrap().unwrap().samples, 241);
    // The out dir, then run.
    for _ in 0..3 {
        h.act(Action::SelectNext).await;
    }
    h.act(Action::ApplyRule).await;
    h.type_keys(&[ctrl_u()]).await;
    let out = sb.path("tui-export");
    h.type_keys(&keys(out.to_str().unwrap())).await;
    h.act(Action::SelectNext).await;
    h.act(Action::ApplyRule).await;
    assert!(h.app.export.progress.is_none(), "finished");
    let report = h.app.export.last.clone().unwrap().unwrap();
    assert_eq!(report.samples, 241);
    let lines = std::fs::read_to_string(out.join("train.jsonl")).unwrap().lines().count()
        + std::fs::read_to_string(out.join("validation.jsonl")).unwrap().lines().count();
    assert_eq!(lines, 241);
    assert_eq!(h.app.export.past.len(), 1);
    assert!(h.render().contains("Past exports") && h.render().contains("Export #1 written to"));
    // As alpaca, the demo's tool-use samples are refused; the form says why, in full.
    for _ in 0..8 {
        h.act(Action::SelectPrevious).await;
    }
    for _ in 0..3 {
        h.act(Action::ApplyRule).await;
    }
    assert_eq!(h.app.export.form.format.as_str(), "alpaca");
    for _ in 0..8 {
        h.act(Action::SelectNext).await;
    }
    h.act(Action::ApplyRule).await;
    let screen = h.render();
    assert!(screen.contains("Not exported") && screen.contains("alpaca cannot hold tool use"), "{screen}");
    assert!(screen.contains("'not has_tools'"), "the whole message, wrapped: {screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_line_shows_running_generations_but_not_killed_ones() {
    let sb = Sandbox::new();
    let mut h = demo(&sb, (80, 24)).await;
    let now = retort::store::now();
    let progress = |teacher: &str| {
        format!(r#"{{"teacher": "{teacher}", "requests": 340, "total": 1319, "samples": 1020, "failures": 3, "tokens": 99}}"#)
    };
    for (teacher, heartbeat) in [("killed-run", now - 600), ("deepseek-r1", now)] {
        sqlx::query(
            "INSERT INTO imports (path, file_sha256, format, options, token_counter, started_at, heartbeat_at, progress) \
             VALUES ('http://x/v1', '', 'generate', '{}', 'estimate', ?, ?, ?)",
        )
        .bind(heartbeat)
        .bind(heartbeat)
        .bind(progress(teacher))
        .execute(h.store.pool())
        .await
        .unwrap();
    }
    h.settle(vec![retort::tui::app::Effect::LoadGenerations]).await;
    let line = h.app.status_line();
    assert!(line.contains("generating deepseek-r1: 340/1319 requests, 1020 samples, 3 failed"), "{line}");
    assert!(!line.contains("killed-run"), "{line}");
    // At 80 columns the label counts give way to the run.
    assert!(!line.contains("hard"), "{line}");
    insta::assert_snapshot!("review_generating_80x24", h.render());
    // A scoring (`retort score-logprobs`) running beside it says what it scores.
    sqlx::query(
        "INSERT INTO imports (path, file_sha256, format, options, token_counter, started_at, heartbeat_at, progress) \
         VALUES ('http://x/v1', '', 'score-logprobs', '{}', 'estimate', ?1, ?1, ?2)",
    )
    .bind(now)
    .bind(r#"{"scoring": true, "teacher": "qwq-32b", "requests": 40, "total": 100, "samples": 38, "failures": 2, "tokens": 9}"#)
    .execute(h.store.pool())
    .await
    .unwrap();
    h.settle(vec![retort::tui::app::Effect::LoadGenerations]).await;
    assert!(h.app.status_line().contains("scoring qwq-32b: 40/100 samples, 38 scored, 2 failed"), "{}", h.app.status_line());
    sqlx::query("DELETE FROM imports WHERE format = 'score-logprobs'").execute(h.store.pool()).await.unwrap();
    h.settle(vec![retort::tui::app::Effect::LoadGenerations]).await;
    // The run ends: the line says so and goes back to the label counts.
    sqlx::query("UPDATE imports SET finished_at = heartbeat_at").execute(h.store.pool()).await.unwrap();
    h.settle(vec![retort::tui::app::Effect::LoadGenerations]).await;
    assert_eq!(h.app.message.as_deref(), Some("generation finished"));
    assert!(h.app.status_line().contains("hard"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_arriving_from_a_generation_fill_an_empty_list() {
    let sb = Sandbox::new();
    sb.write("prompts.jsonl", common::head(&common::data("gsm8k/test.jsonl"), 3));
    sb.retort().args(["import", "prompts.jsonl"]).assert().success();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    let mut h = Headless::new(store, (100, 30)).await.unwrap();
    assert!(h.app.rows.is_empty());
    // A generation (here: its answers imported, and its heartbeat) adds samples while the TUI is open.
    sb.write(
        "answers.jsonl",
        "{\"prompt\": \"What is 2+2?\", \"completion\": \"4\"}\n{\"prompt\": \"What is 3+3?\", \"completion\": \"6\"}\n",
    );
    sb.retort().args(["import", "answers.jsonl"]).assert().success();
    sqlx::query(
        "INSERT INTO imports (path, file_sha256, format, options, token_counter, started_at, heartbeat_at, progress) \
         VALUES ('http://x/v1', '', 'generate', '{}', 'estimate', ?1, ?1, \
         '{\"teacher\": \"t\", \"requests\": 2, \"total\": 3, \"samples\": 2, \"failures\": 0, \"tokens\": 2}')",
    )
    .bind(retort::store::now())
    .execute(h.store.pool())
    .await
    .unwrap();
    h.settle(vec![retort::tui::app::Effect::LoadGenerations]).await;
    assert_eq!(h.app.rows.len(), 2, "{}", h.app.status_line());
    assert!(h.app.status_line().starts_with(" 1 of 2 · #1 │"), "{}", h.app.status_line());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_tab_trains_charts_the_loss_and_shows_the_students_answers() {
    let sb = Sandbox::new();
    sb.retort().args(["import", common::data("chat-formats/llamafactory_alpaca_en_demo.json").to_str().unwrap()]).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens < 40"]).assert().success();
    let export = sb.path("sft");
    sb.retort()
        .args(["export", "--format", "messages", "--val", "0.25", "--max-samples", "16", "--out", export.to_str().unwrap()])
        .assert()
        .success();
    sb.retort().args(["train", "create-model", "--shape", "tiny", "--out", "tiny"]).assert().success();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    let mut h = Headless::new(store, (120, 40)).await.unwrap();
    for _ in 0..3 {
        h.act(Action::NextTab).await;
    }
    assert_eq!(h.app.tab, Tab::Train);
    assert_eq!(h.app.train.form.values[1], export.to_str().unwrap(), "the newest export is preselected");
    // Starting without a model says what to do.
    for _ in 0..11 {
        h.act(Action::SelectNext).await;
    }
    h.act(Action::ApplyRule).await;
    assert!(h.app.message.as_deref().unwrap_or_default().contains("model dir"));
    // Model, out dir and a few steps; then start.
    let set = |i: usize, value: String| (i, value);
    for (field, value) in [
        set(0, sb.path("tiny").display().to_string()),
        set(2, sb.path("run").display().to_string()),
        set(7, "2048".into()),
        set(9, "4".into()),
    ] {
        while h.app.train.form.cursor > field {
            h.act(Action::SelectPrevious).await;
        }
        while h.app.train.form.cursor < field {
            h.act(Action::SelectNext).await;
        }
        h.act(Action::ApplyRule).await;
        h.type_keys(&[ctrl_u()]).await;
        h.type_keys(&keys(&value)).await;
    }
    insta::assert_snapshot!("train_form_120x40", h.render().replace(&sb.dir.path().display().to_string(), "<sandbox>"));
    while h.app.train.form.cursor < 11 {
        h.act(Action::SelectNext).await;
    }
    h.act(Action::ApplyRule).await;
    // The run ran to its end in the background; its curve, the run list and the answers follow.
    assert!(h.app.train.running.is_none());
    let last = h.app.train.last.clone().unwrap();
    assert_eq!(last.train.len(), 4, "{:?}", h.app.train.result);
    assert!(!last.validation.is_empty());
    assert_eq!(h.app.train.past.len(), 1);
    assert_eq!(h.app.train.past[0].status, "finished");
    assert!(!h.app.train.answers.is_empty(), "{:?}", h.app.message);
    assert!(sb.path("run/adapter_model.safetensors").exists());
    let screen = h.render();
    assert!(screen.contains("step 4/4") && screen.contains("Past runs") && screen.contains("› "), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_before_the_corpus_is_read_answers_from_the_first_prompts() {
    let sb = Sandbox::new();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    retort::demo::import_demo(&store).await.unwrap();
    let entries = sb.query_i64("SELECT (SELECT count(*) FROM prompts) + (SELECT count(*) FROM teachers)");
    // A fresh engine has read nothing: its first report comes from the first prompts read apart.
    let engine = retort::tui::search::SearchEngine::default();
    let reports = std::sync::Mutex::new(Vec::new());
    let hits = engine
        .search(&store, 1, "hexagon".into(), &|hits, scanned, total| reports.lock().unwrap().push((hits, scanned, total)))
        .await
        .unwrap()
        .unwrap();
    let reports = reports.into_inner().unwrap();
    let (first, scanned, total) = reports.first().expect("a first report before the full ranking");
    assert_eq!(*total, usize::try_from(entries).unwrap());
    assert!(*scanned > 0 && scanned <= total);
    // The demo is smaller than the head, so the first report already holds the whole ranking.
    assert_eq!(first, &hits);
    assert!(hits.iter().any(|hit| hit.text.starts_with("A regular hexagon")), "{hits:?}");
    // Once read, a search reports from the corpus in memory only: no head, same ranking.
    let again = std::sync::Mutex::new(0);
    let hits_again = engine.search(&store, 2, "hexagon".into(), &|_, _, _| *again.lock().unwrap() += 1).await.unwrap().unwrap();
    assert_eq!(hits_again, hits);
    assert_eq!(*again.lock().unwrap(), 0, "a corpus within one chunk has no partial report");
}
