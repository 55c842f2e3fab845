//! Helpers for the tests that run the `rarts` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rarts"));
    c.arg("--device").arg("cpu");
    c
}

/// A fresh (removed) folder under the temp directory, unique to this process.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rarts-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A search small enough for CI: C=4, 3 cells (both reduction cells present).
pub fn small_search(out: &Path, algo: &str, epochs: usize, steps: usize) -> Command {
    let mut c = bin();
    c.args(["search", "--algo", algo, "--c", "4", "--layers", "3", "--batch", "8", "--seed", "7"]);
    c.args(["--epochs", &epochs.to_string(), "--steps-per-epoch", &steps.to_string()]);
    c.args(["--eval-images", "64", "--quiet", "--out"]).arg(out);
    c
}

/// Succeeded; returns stdout.
pub fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstderr: {stderr}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails with a non-zero exit, an `error:` line containing every `needle`,
/// and no panic; returns stderr.
pub fn fails_with(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected failure, got success; stderr: {stderr}");
    // 1: an error of ours; 2: a flag clap could not parse; never a panic's 101.
    assert!(matches!(out.status.code(), Some(1 | 2)), "exit {:?}; stderr: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    assert!(stderr.contains("error:"), "no error line: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}: {stderr}");
    }
    stderr
}

/// Mean training loss of each epoch, from log.jsonl.
pub fn epoch_losses(out: &Path) -> Vec<f64> {
    let log = std::fs::read_to_string(out.join("log.jsonl")).expect("log.jsonl written");
    log.lines()
        .map(|l| {
            let v = l.split("\"loss_train\":").nth(1).expect("loss_train field");
            v.split(',').next().unwrap().parse().expect("a number")
        })
        .collect()
}

/// Starts `cmd` (a run into `out`) and kills it once `out/checkpoint.bin`
/// exists: a run stopped after its first epoch, mid-way through the next.
pub fn kill_after_first_checkpoint(mut cmd: std::process::Command, out: &Path) {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    while !out.join("checkpoint.bin").exists() {
        assert!(t.elapsed() < Duration::from_secs(300), "no checkpoint after 300 s");
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the run ended ({st}) before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
