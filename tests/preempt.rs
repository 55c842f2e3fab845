//! Preemption: SIGTERM, SIGINT or SIGUSR1 in the middle of an epoch (raised
//! by the run itself after a chosen step, through the test hook
//! `RARTS_RAISE_AFTER_STEP`) makes a search or a training finish the step,
//! write a checkpoint holding the step and the epoch's running sums, and
//! exit with code 75; `--resume` then ends with the same checkpoint and log
//! as a run never interrupted. `--checkpoint-every` covers kills that give
//! no warning.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::cli::{bin, ok, small_search, tmp};
use rarts::checkpoint::Checkpoint;
use rarts::signals::{EXIT_CHECKPOINTED, RAISE_AFTER_STEP};

/// Stopped with exit code 75 and a message naming the signal; returns stderr.
fn checkpointed(out: &Output, signal: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(EXIT_CHECKPOINTED), "stderr: {stderr}");
    assert!(stderr.contains(&format!("stopped by {signal}")), "{stderr}");
    assert!(stderr.contains("--resume continues it"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn position(out: &Path) -> (String, String) {
    let ck = Checkpoint::load(&out.join("checkpoint.bin")).unwrap();
    (ck.get("epochs_done").unwrap().to_string(), ck.get("step").unwrap_or("0").to_string())
}

fn same_run(full: &Path, cut: &Path) {
    let diff = rarts::run_record::run_differences(full, cut).unwrap();
    assert!(diff.is_empty(), "the resumed run differs from the uninterrupted one: {diff:?}");
}

/// Runs `make(out)` into a fresh folder uninterrupted, and into another
/// stopped by `signal` after step `at` then resumed; the two must agree.
fn stopped_and_resumed(name: &str, make: impl Fn(&Path) -> Command, at: usize, signal: &str, pos: (&str, &str)) {
    let full = tmp(&format!("{name}-full"));
    ok(&make(&full).output().unwrap());
    let cut = tmp(&format!("{name}-cut"));
    let short = signal.trim_start_matches("SIG");
    let out = make(&cut).env(RAISE_AFTER_STEP, format!("{at}:{short}")).output().unwrap();
    checkpointed(&out, signal);
    assert_eq!(position(&cut), (pos.0.to_string(), pos.1.to_string()), "where the checkpoint stands");
    ok(&make(&cut).arg("--resume").output().unwrap());
    same_run(&full, &cut);
    if full.join("alpha.jsonl").exists() {
        assert_eq!(fs::read(full.join("alpha.jsonl")).unwrap(), fs::read(cut.join("alpha.jsonl")).unwrap());
    }
}

#[test]
fn a_search_stopped_mid_epoch_by_sigterm_resumes_to_the_uninterrupted_run() {
    // 3 epochs of 3 steps: after step 5, epoch 1 (0-based) has 2 steps done.
    stopped_and_resumed("term-rarts", |o| small_search(o, "rarts", 3, 3), 5, "SIGTERM", ("1", "2"));
    stopped_and_resumed("term-darts2", |o| small_search(o, "darts2", 2, 3), 1, "SIGTERM", ("0", "1"));
}

#[test]
fn sigint_and_sigusr1_stop_a_search_the_same_way() {
    stopped_and_resumed("int", |o| small_search(o, "darts1", 2, 3), 2, "SIGINT", ("0", "2"));
    // A signal in an epoch's last step: the epoch ends, its checkpoint is the stop.
    stopped_and_resumed("usr1", |o| small_search(o, "darts1", 2, 3), 3, "SIGUSR1", ("1", "0"));
}

/// A small training (random cell, cutout and drop path: every random draw
/// of a step is in play).
fn small_train(out: &Path) -> Command {
    let mut c = bin();
    c.args(["train", "--genotype", "random:3", "--c", "4", "--layers", "3", "--batch", "16", "--cutout", "8"]);
    c.args(["--epochs", "3", "--steps-per-epoch", "4", "--drop-path", "0.2", "--eval-images", "100", "--quiet"]);
    c.arg("--out").arg(out);
    c
}

#[test]
fn a_training_stopped_mid_epoch_by_sigterm_resumes_to_the_uninterrupted_run() {
    stopped_and_resumed("term-train", small_train, 6, "SIGTERM", ("1", "2"));
}

#[test]
fn checkpoint_every_n_steps_survives_a_kill_without_warning() {
    let full = tmp("every-full");
    ok(&small_search(&full, "rarts", 2, 4).output().unwrap());
    let cut = tmp("every-cut");
    // Killed (SIGKILL: no handler runs) after step 7; the checkpoint of step 6 is there.
    let out = small_search(&cut, "rarts", 2, 4)
        .args(["--checkpoint-every", "3"])
        .env(RAISE_AFTER_STEP, "7:KILL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_eq!(position(&cut), ("1".to_string(), "2".to_string()));
    ok(&small_search(&cut, "rarts", 2, 4).arg("--resume").output().unwrap());
    same_run(&full, &cut);
}

#[test]
fn a_checkpoint_of_the_format_before_mid_epoch_ones_still_resumes() {
    let full = tmp("older-full");
    ok(&small_search(&full, "rarts", 2, 2).output().unwrap());
    // Stopped at the end of epoch 0: a checkpoint with no `step`, as the
    // previous format wrote them; labelled with that format.
    let cut = tmp("older-cut");
    checkpointed(&small_search(&cut, "rarts", 2, 2).env(RAISE_AFTER_STEP, "2").output().unwrap(), "SIGTERM");
    let ck_path = cut.join("checkpoint.bin");
    let relabel = |format: &str| {
        let mut ck = Checkpoint::load(&ck_path).unwrap();
        assert_eq!(ck.get("step"), None);
        ck.header.iter_mut().filter(|(k, _)| k == "format").for_each(|(_, v)| *v = format.into());
        ck.save(&ck_path).unwrap();
    };
    // A format of another kind of run, or a newer one, is refused by name.
    for other in ["rarts-search-9", "rarts-train-1"] {
        relabel(other);
        let out = small_search(&cut, "rarts", 2, 2).arg("--resume").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("\"{other}\"")) && stderr.contains("expected rarts-search-4"), "{stderr}");
    }
    relabel("rarts-search-3");
    let stderr = String::from_utf8_lossy(&ok_output(small_search(&cut, "rarts", 2, 2).arg("--resume"))).into_owned();
    assert!(stderr.contains("after epoch 1"), "{stderr}");
    same_run(&full, &cut);
}

/// Runs `cmd`, which must succeed; returns its stderr.
fn ok_output(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    ok(&out);
    out.stderr
}

#[test]
fn a_bad_test_hook_value_is_named() {
    let out = tmp("hook-bad");
    let o = small_search(&out, "rarts", 1, 2).env(RAISE_AFTER_STEP, "2:HUP").output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RARTS_RAISE_AFTER_STEP=2:HUP"), "{stderr}");
}
