//! The Train tab: a new directory per run, the ETA from the steps left (and none once
//! cancelled), past runs that open to their loss chart, validation points by default; with
//! snapshots at 80×24 and 160×48.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use common::Sandbox;
use predicates::prelude::*;
use retort::store::runs;
use retort::train::run::Event;
use retort::tui::Headless;
use retort::tui::action::Action;
use retort::tui::app::{Effect, Msg, Tab};
use retort::tui::train_tab::FIELDS;

/// Two finished runs recorded as the trainer records them: a falling loss, a validation loss
/// every 5 steps (none for the second, as with an export without a validation part).
async fn recorded_runs(store: &retort::store::Store) {
    for (run, steps, with_validation) in [(1, 30, true), (2, 12, false)] {
        let new = runs::NewRun { base_model: "models/tiny", export_id: None, hyperparams: "{}", adapter_dir: &format!("runs/tiny-{run}") };
        let id = runs::start(store, &new).await.unwrap();
        for step in 1..=steps {
            let loss = 4.0 / (1.0 + f64::from(step) * 0.2) + 0.05 * f64::from(step % 3);
            let m = runs::StepMetrics { step: i64::from(step), loss, lr: 2e-4, tokens_per_s: 1000.0, grad_norm: 1.0 };
            runs::train_step(store, id, &m).await.unwrap();
            if with_validation && step % 5 == 0 {
                runs::validation(store, id, i64::from(step), loss + 0.3).await.unwrap();
            }
        }
        runs::finish(store, id, "finished", None).await.unwrap();
    }
}

async fn train_tab(sb: &Sandbox, size: (u16, u16)) -> Headless {
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    retort::demo::import_demo(&store).await.unwrap();
    recorded_runs(&store).await;
    let mut h = Headless::new(store, size).await.unwrap();
    while h.app.tab != Tab::Train {
        h.act(Action::NextTab).await;
    }
    h
}

async fn cursor_to(h: &mut Headless, row: usize) {
    while h.app.train.form.cursor > row {
        h.act(Action::SelectPrevious).await;
    }
    while h.app.train.form.cursor < row {
        h.act(Action::SelectNext).await;
    }
}

fn step(step: u64, loss: f64, elapsed_s: f64) -> Msg {
    Msg::TrainEvent(Event::Step { step, loss, lr: 2e-4, grad_norm: 1.0, tokens_per_s: 2048.0, elapsed_s })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_the_train_tab() {
    for (w, h_) in [(80u16, 24u16), (160, 48)] {
        let sb = Sandbox::new();
        let mut h = train_tab(&sb, (w, h_)).await;
        assert_eq!(h.app.train.past.len(), 2);
        // The cursor runs on from the form into the past runs.
        cursor_to(&mut h, FIELDS.len() + 1).await;
        insta::assert_snapshot!(format!("train_runs_{w}x{h_}"), h.render());

        // Enter opens the run under the cursor: its curves, as the store kept them.
        h.act(Action::ApplyRule).await;
        let opened = h.app.train.opened.clone().unwrap();
        assert_eq!((opened.run.id, opened.curves.train.len(), opened.curves.validation.len()), (1, 30, 6));
        insta::assert_snapshot!(format!("train_opened_{w}x{h_}"), h.render());
        cursor_to(&mut h, FIELDS.len()).await;
        h.act(Action::ApplyRule).await;
        assert_eq!(h.app.train.opened.as_ref().unwrap().run.id, 2);
        assert!(h.render().contains("no validation loss"));

        // A run going (its trainer's events fed by hand, so the numbers are fixed): 3 steps
        // of 10 in 6 s, so 14 s are left.
        h.app.train.form.values[0] = "models/tiny".into();
        cursor_to(&mut h, FIELDS.len() - 1).await;
        let effects = h.app.update(Action::ApplyRule);
        assert!(matches!(effects.as_slice(), [Effect::RunTrain(opts, _)] if opts.out.as_os_str().is_empty()), "no out dir: a new one");
        assert!(h.app.train.opened.is_none(), "starting shows the new run");
        let started = Event::Started {
            total_steps: 10,
            train_rows: 12,
            validation_rows: 4,
            skipped: 0,
            soft: false,
            device: "cpu".into(),
            out: "runs/tiny-3".into(),
        };
        for msg in [Msg::TrainEvent(started), step(1, 3.0, 2.0), step(2, 2.5, 4.0), step(3, 2.25, 6.0)] {
            h.app.receive(msg);
        }
        h.app.receive(Msg::TrainEvent(Event::Validation { step: 2, loss: 2.75 }));
        assert!(h.app.train.running.as_ref().unwrap().eta_s().is_some_and(|s| (13.0..=14.0).contains(&s)));
        insta::assert_snapshot!(format!("train_running_{w}x{h_}"), h.render());

        // Cancel: no ETA from then on, however long the last step takes.
        h.act(Action::ApplyRule).await;
        assert!(h.app.train.running.as_ref().unwrap().eta_s().is_none());
        assert!(h.render().contains("cancelling after this step"));
        h.app.receive(step(4, 2.1, 8.0));
        let summary = retort::ops::train::RunSummary {
            run_id: 3,
            steps: 4,
            train_rows: 12,
            validation_rows: 4,
            skipped: Vec::new(),
            skipped_count: 0,
            warnings: Vec::new(),
            last_loss: Some(2.1),
            last_validation_loss: Some(2.75),
            tokens_per_s: Some(2048.0),
            adapter: "runs/tiny-3".into(),
            cancelled: true,
        };
        let effects = h.app.receive(Msg::TrainDone(Ok(summary)));
        let answers = effects.iter().find_map(|e| match e {
            Effect::StudentAnswers(opts) => Some(opts.out.clone()),
            _ => None,
        });
        assert_eq!(answers.unwrap(), std::path::Path::new("runs/tiny-3"), "the student is read from where the run wrote");
        // The run list is read again; the student's answers (a model this test has not) are not asked for.
        h.settle(effects.into_iter().filter(|e| matches!(e, Effect::LoadRuns)).collect()).await;
        assert_eq!(h.app.train.last.as_ref().unwrap().eta_s(), None);
        insta::assert_snapshot!(format!("train_cancelled_{w}x{h_}"), h.render());
    }
}

/// A real run on a tiny model, twice from the tab and once from the command line, none given an
/// out directory: three directories, each with its adapter, the validation loss charted as it
/// goes, and the first run's curves there to open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_gets_its_own_directory_and_charts_validation_by_default() {
    let sb = Sandbox::new();
    sb.retort().args(["import", common::data("chat-formats/llamafactory_alpaca_en_demo.json").to_str().unwrap()]).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens < 40"]).assert().success();
    sb.retort().args(["export", "--format", "messages", "--val", "0.25", "--max-samples", "16", "--out", "sft"]).assert().success();
    sb.retort().args(["train", "create-model", "--shape", "tiny", "--out", "tiny"]).assert().success();
    // Runs go under the working directory, as the command line's do: the sandbox's. The only
    // test of this file that leaves the package directory, so no other test sees it move.
    std::env::set_current_dir(sb.dir.path()).unwrap();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    let mut h = Headless::new(store, (120, 40)).await.unwrap();
    while h.app.tab != Tab::Train {
        h.act(Action::NextTab).await;
    }
    assert_eq!(h.app.train.form.values[1], "sft", "the newest export is preselected");
    assert_eq!(h.app.train.form.values[2], "", "no out dir: each run makes its own");
    h.app.train.form.values[0] = "tiny".into();
    h.app.train.form.values[7] = "2048".into();
    h.app.train.form.values[9] = "4".into();
    for run in 1..=2 {
        cursor_to(&mut h, FIELDS.len() - 1).await;
        h.act(Action::ApplyRule).await;
        let last = h.app.train.last.clone().unwrap();
        assert_eq!(last.train.len(), 4, "{:?}", h.app.train.result);
        assert_eq!(last.validation.len(), 4, "validation at every step of a 4-step run, without asking");
        assert_eq!(last.out.as_deref(), Some(format!("runs/tiny-{run}").as_str()));
        assert!(sb.path(&format!("runs/tiny-{run}/adapter_model.safetensors")).exists());
        assert!(h.render().contains("finished"));
        assert!(!h.app.train.answers.is_empty(), "the student answers from its own run's adapter: {:?}", h.app.message);
    }
    assert_eq!(h.app.train.past.len(), 2);
    assert_eq!(h.app.train.past[0].adapter_dir.as_deref(), Some("runs/tiny-2"));
    // The first run opens to its chart: the points the store kept.
    cursor_to(&mut h, FIELDS.len() + 1).await;
    h.act(Action::ApplyRule).await;
    let opened = h.app.train.opened.clone().unwrap();
    assert_eq!((opened.run.id, opened.curves.train.len(), opened.curves.validation.len()), (1, 4, 4));
    // The command line without --out: the next directory.
    sb.retort()
        .args(["train", "--model", "tiny", "--data", "sft", "--threads", "1", "--max-steps", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("into runs/tiny-3").and(predicate::str::contains("adapter in runs/tiny-3")));
    assert!(sb.path("runs/tiny-3/adapter_model.safetensors").exists());
    assert!(sb.path("runs/tiny-1/adapter_model.safetensors").exists(), "the first run's adapter is still there");
}
