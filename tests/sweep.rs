//! `rarts sweep`: the toy model over λ × β matches its closed form at every
//! point; a sweep is skipped where done, refused with other settings, runs
//! one point by name, and stopped by a signal and run again ends as one
//! never stopped.

mod common;

use std::path::Path;

use common::cli::{bin, fails_with, ok, tmp};
use rarts::signals::{EXIT_CHECKPOINTED, RAISE_AFTER_STEP};

fn csv_rows(out: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(out.join("results.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

#[test]
fn a_toy_sweep_over_lambda_and_beta_matches_the_closed_form_at_every_point() {
    let out = tmp("sweep-toy");
    let sweep = || {
        let mut c = bin();
        c.args(["sweep", "--grid", "lambda=0.5,1,2", "--grid", "beta=0.25,1,4", "--out"]).arg(&out);
        c.args(["toy", "--steps", "200000"]);
        c
    };
    ok(&sweep().output().unwrap());
    let rows = csv_rows(&out);
    assert_eq!(rows[0], ["lambda", "beta", "seed", "alpha", "closed_form", "abs_error", "steps"]);
    assert_eq!(rows.len(), 1 + 9);
    for r in &rows[1..] {
        let (l, b): (f64, f64) = (r[0].parse().unwrap(), r[1].parse().unwrap());
        let alpha: f64 = r[3].parse().unwrap();
        // SPEC §2.1, c = 1: α* = 1 / (1 + c + c/λ + c/β).
        let want = 1.0 / (2.0 + 1.0 / l + 1.0 / b);
        assert!((alpha - want).abs() < 1e-8, "λ {l} β {b}: α {alpha}, closed form {want}");
        assert!((r[4].parse::<f64>().unwrap() - want).abs() < 1e-12);
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.starts_with("# rarts sweep toy") && md.contains("| --lambda | --beta | alpha |"), "{md}");
    // Run again: every point done, nothing run, the same table.
    let again = sweep().output().unwrap();
    ok(&again);
    assert!(!String::from_utf8_lossy(&again.stderr).contains("sweep: point"));
    assert_eq!(csv_rows(&out), rows);
    // Other settings on the same folder are refused, saying what differs.
    let mut other = bin();
    other.args(["sweep", "--grid", "lambda=0.5,1", "--out"]).arg(&out).args(["toy", "--steps", "200000"]);
    fails_with(&other.output().unwrap(), &["other settings", "grid"]);
    // The folder alone says the rest; its report draws a chosen figure.
    let mut c = bin();
    ok(&c.args(["sweep", "--out"]).arg(&out).output().unwrap());
    let mut r = bin();
    ok(&r.arg("report").arg(&out).args(["--metric", "alpha", "--heat-map"]).output().unwrap());
    let svg = std::fs::read_to_string(out.join("report-sweep.svg")).unwrap();
    assert!(svg.contains("alpha over --lambda and --beta") && svg.contains(">0.3636<"), "{svg}");
    let mut r = bin();
    fails_with(
        &r.arg("report").arg(&out).args(["--by", "xi"]).output().unwrap(),
        &["--by --xi", "not a flag of the grid"],
    );
}

#[test]
fn a_bad_sweep_is_named_before_anything_runs() {
    let out = tmp("sweep-bad");
    let mut c = bin();
    c.args(["sweep", "--grid", "lambda=1,2", "--seeds", "0,1", "--out"]).arg(&out).arg("toy");
    fails_with(&c.output().unwrap(), &["--seeds", "no seed"]);
    let mut c = bin();
    c.args(["sweep", "--grid", "lambda=1,oops", "--out"]).arg(&out).arg("toy");
    fails_with(&c.output().unwrap(), &["sweep point lambda=oops", "--lambda"]);
    assert!(!out.join("sweep.tsv").exists(), "a refused sweep recorded its plan");
    let mut c = bin();
    c.args(["sweep", "--grid", "lambda=1", "--out"]).arg(&out).args(["search", "--out", "x"]);
    fails_with(&c.output().unwrap(), &["--out", "set by the sweep"]);
}

/// A search sweep: RARTS's λ on the embedded data, two seeds.
fn search_sweep(out: &Path) -> std::process::Command {
    let mut c = bin();
    c.args(["sweep", "--grid", "lambda=0.5,2", "--seeds", "0,1", "--out"]).arg(out);
    c.args(["search", "--space", "nb201", "--c", "4", "--cells-per-stage", "1", "--batch", "8"]);
    c.args(["--epochs", "2", "--steps-per-epoch", "3", "--eval-images", "0", "--arch-lr", "0.01", "--no-report"]);
    c.env("RARTS_THREADS", "2");
    c
}

#[test]
fn a_search_sweep_stopped_by_signals_and_run_again_ends_as_one_never_stopped() {
    let full = tmp("sweep-full");
    ok(&search_sweep(&full).output().unwrap());
    let rows = csv_rows(&full);
    assert_eq!(rows.len(), 1 + 4);
    assert!(rows[0].contains(&"alpha_spread".to_string()) && rows[0].contains(&"genotype".to_string()));
    // Each point's run stops after its step 4 (mid-epoch), once: run again
    // until the sweep ends.
    let cut = tmp("sweep-cut");
    let mut stops = 0;
    loop {
        let o = search_sweep(&cut).env(RAISE_AFTER_STEP, "4").output().unwrap();
        if o.status.success() {
            break;
        }
        assert_eq!(o.status.code(), Some(EXIT_CHECKPOINTED), "{}", String::from_utf8_lossy(&o.stderr));
        stops += 1;
        assert!(stops <= 4, "more stops than points");
    }
    assert_eq!(stops, 4, "every point stopped once");
    for r in &rows[1..] {
        let id = format!("lambda={},seed={}", r[0], r[1]);
        let diff = rarts::run_record::run_differences(&full.join(&id), &cut.join(&id)).unwrap();
        assert!(diff.is_empty(), "{id}: {diff:?}");
    }
    assert_eq!(csv_rows(&cut), rows);
    // One point by name: done, so nothing runs.
    let mut c = bin();
    let o = c.args(["sweep", "--out"]).arg(&cut).args(["--job", "lambda=2,seed=1"]).output().unwrap();
    ok(&o);
    let mut c = bin();
    fails_with(
        &c.args(["sweep", "--out"]).arg(&cut).args(["--job", "lambda=3,seed=0"]).output().unwrap(),
        &["not a point"],
    );
}
