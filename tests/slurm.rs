//! A comparison through Slurm (`rarts compare --launcher slurm`) on a real
//! cluster: the smoke comparison gives the table a local run gives, and a
//! task signalled in the middle of an epoch (`scancel --batch
//! --signal=USR1`, as the scheduler's warning before a time limit) is
//! requeued and finishes with the uninterrupted result.
//!
//! Needs a cluster whose client commands work here: `SLURM_CONF` set and
//! `sinfo` answering (`.ci/run` starts one with `scripts/slurm-local.sh`).
//! Elsewhere the tests skip, saying why.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::cli::{bin, fails_with, ok, tmp};
use common::skipped;
use rarts::checkpoint::Checkpoint;
use rarts::run_record::run_differences;
use rarts::signals::STEP_DELAY_MS;

/// One comparison on the cluster at a time (the node has few cores).
static CLUSTER: Mutex<()> = Mutex::new(());

/// Why no cluster can be used here, if none can.
fn no_cluster() -> Option<String> {
    if std::env::var_os("SLURM_CONF").is_none() {
        return Some(
            "SLURM_CONF is not set (`eval \"$(scripts/slurm-local.sh start)\"` starts a local cluster)".into(),
        );
    }
    match Command::new("sinfo").arg("-h").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!("sinfo failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Some(format!("sinfo cannot be run: {e}")),
    }
}

/// The smoke comparison of `space` into `out`, here or through Slurm.
fn compare(space: &str, out: &Path, slurm: bool) -> Command {
    let mut c = bin();
    c.args(["compare", "--space", space, "--preset", "smoke", "--out"]).arg(out);
    if slurm {
        c.args(["--launcher", "slurm"]);
    }
    c.env("RARTS_THREADS", "2");
    c
}

/// The job ids `--launcher slurm` printed.
fn job_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next().map(String::from))
        .filter(|id| id.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// Waits until `out/results.md` is written; fails early when no job of
/// `ids` is left in the queue without it (a task failed, its dependants
/// were cancelled).
fn wait_for_table(out: &Path, ids: &[String]) {
    let t = Instant::now();
    while !out.join("results.md").exists() {
        assert!(t.elapsed() < Duration::from_secs(900), "no results.md after 15 minutes");
        std::thread::sleep(Duration::from_secs(2));
        let q = Command::new("squeue").args(["-h", "-o", "%i %T", "-j", &ids.join(",")]).output().unwrap();
        let queued = String::from_utf8_lossy(&q.stdout).to_string();
        if q.status.success() && queued.trim().is_empty() && !out.join("results.md").exists() {
            std::thread::sleep(Duration::from_secs(3));
            assert!(
                out.join("results.md").exists(),
                "the jobs left the queue without a table; see {}/slurm",
                out.display()
            );
        }
    }
}

/// `results.md` without what differs between two runs of the same work:
/// the date and machine line, the timing columns and the cost ratios.
fn table_without_timings(out: &Path) -> String {
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    let mut timing_cols: Vec<usize> = Vec::new();
    let mut kept = Vec::new();
    for line in md.lines() {
        if line.starts_with("Date ") || line.starts_with("Search cost") {
            continue;
        }
        if line.starts_with('|') {
            let cells: Vec<&str> = line.split('|').collect();
            if line.starts_with("| method") {
                timing_cols =
                    (0..cells.len()).filter(|&i| cells[i].contains("ms") || cells[i].contains("time")).collect();
            }
            let rest: Vec<&str> =
                cells.iter().enumerate().filter(|(i, _)| !timing_cols.contains(i)).map(|(_, c)| *c).collect();
            kept.push(rest.join("|"));
        } else {
            kept.push(line.to_string());
        }
    }
    kept.join("\n")
}

/// Every job folder of two comparisons of the same work holds the same run
/// (checkpoints, logs, genotypes, models; timings and the cell's path —
/// the comparisons' folders differ — left out).
fn same_jobs(a: &Path, b: &Path) {
    for e in std::fs::read_dir(a).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !(name.starts_with("search-") || name.starts_with("train-")) {
            continue;
        }
        let diff: Vec<String> = run_differences(&a.join(&name), &b.join(&name))
            .unwrap()
            .into_iter()
            // The cell's path differs (the comparisons' folders do), in
            // the checkpoint's settings and the model file's metadata; the
            // weights are compared in the checkpoint, bit for bit.
            .filter(|d| !d.starts_with("checkpoint.bin: setting--genotype") && d != "model.safetensors differs")
            .collect();
        assert!(diff.is_empty(), "{name}: the cluster's run differs from the local one: {diff:?}");
    }
}

#[test]
fn the_smoke_comparison_through_slurm_gives_the_local_table() {
    if let Some(why) = no_cluster() {
        return skipped(&why);
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let local = tmp("slurm-local");
    ok(&compare("darts", &local, false).output().unwrap());
    // Half done here first: one search and one training.
    let cluster = tmp("slurm-cluster");
    for job in ["search-rarts-s0", "train-random-s1"] {
        ok(&compare("darts", &cluster, false).args(["--job", job]).output().unwrap());
    }
    let stdout = ok(&compare("darts", &cluster, true).output().unwrap());
    let ids = job_ids(&stdout);
    assert_eq!(ids.len(), 4, "searches, trainings after them, other trainings, the table: {stdout}");
    // What was done is not submitted; train-rarts-s0 waits for no search.
    for line in ["search (5 task(s))", "train-after-search (5 task(s))", "train (2 task(s))", "results (1 job)"] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(stdout.contains("squeue -j"), "{stdout}");
    wait_for_table(&cluster, &ids);
    assert_eq!(table_without_timings(&local), table_without_timings(&cluster));
    same_jobs(&local, &cluster);
    // Each task's output is in its job's folder.
    let outs = std::fs::read_dir(cluster.join("train-rarts-s1"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-"));
    assert_eq!(outs.count(), 1);
    // Done: submitting again submits nothing and prints the table.
    let again = compare("darts", &cluster, true).output().unwrap();
    let stdout = ok(&again);
    assert!(stdout.contains("| method |"), "{stdout}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing was submitted"));
}

#[test]
fn a_task_signalled_mid_epoch_is_requeued_and_ends_as_if_never_stopped() {
    if let Some(why) = no_cluster() {
        return skipped(&why);
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let local = tmp("requeue-local");
    ok(&compare("nb201", &local, false).output().unwrap());
    // Every step takes 4 s more, so that a signal from outside lands in the
    // middle of the 2-step epoch of a search.
    let cluster = tmp("requeue-cluster");
    let stdout = ok(&compare("nb201", &cluster, true).env(STEP_DELAY_MS, "4000").output().unwrap());
    let ids = job_ids(&stdout);
    let task_out = |dir: &Path| -> String {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    };
    let search = cluster.join("search-rarts-s0");
    let t = Instant::now();
    while !task_out(&search).contains("compare: search") {
        assert!(t.elapsed() < Duration::from_secs(300), "search-rarts-s0 did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Its first step is under way: the scheduler's warning, to the batch shell.
    std::thread::sleep(Duration::from_secs(2));
    let job = format!("{}_0", ids[0]);
    // scancel's own exit code is not checked: on this Slurm (22.05) it
    // delivers the signal, may still be told "Job can not be altered now"
    // while the array's tasks change state, and retries (reaching the
    // requeued task too, which then stops and requeues once more). What
    // counts is what the task did, below.
    let mut sent = Command::new("scancel").args(["--batch", "--signal=USR1", &job]).spawn().unwrap();
    wait_for_table(&cluster, &ids);
    let log = task_out(&search);
    assert!(log.contains("stopped by SIGUSR1 after step 1 of 2 of epoch 1"), "{log}");
    assert!(log.contains("requeueing job"), "{log}");
    assert!(log.contains("restarts 1"), "{log}");
    assert!(log.contains("USR1 received by batch shell"), "{log}");
    assert!(log.contains("resuming from") && log.contains("after epoch 0 step 1"), "{log}");
    let ck = Checkpoint::load(&search.join("checkpoint.bin")).unwrap();
    assert_eq!(ck.get("epochs_done"), Some("1"));
    assert_eq!(table_without_timings(&local), table_without_timings(&cluster));
    same_jobs(&local, &cluster);
    let _ = sent.kill();
    let _ = sent.wait();
}

#[test]
fn without_sbatch_or_when_it_refuses_nothing_is_submitted() {
    let out = tmp("slurm-missing");
    let mut c = compare("darts", &out, true);
    fails_with(&c.env("PATH", "/nonexistent").output().unwrap(), &["cannot run sbatch", "Nothing was submitted"]);
    if let Some(why) = no_cluster() {
        return skipped(&why);
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let queued = || {
        String::from_utf8_lossy(&Command::new("squeue").args(["-h", "-o", "%i"]).output().unwrap().stdout).to_string()
    };
    let before = queued();
    let out = tmp("slurm-refused");
    let mut c = compare("darts", &out, true);
    let stderr =
        fails_with(&c.args(["--sbatch", "--partition=no-such-partition"]).output().unwrap(), &["sbatch refused"]);
    assert!(stderr.contains("Nothing was submitted") && stderr.contains("no-such-partition"), "{stderr}");
    assert_eq!(queued(), before, "a refused submission left jobs in the queue");
}

#[test]
fn a_toy_sweep_through_slurm_gives_the_local_table() {
    if let Some(why) = no_cluster() {
        return skipped(&why);
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let sweep = |out: &Path, slurm: bool| {
        let mut c = bin();
        c.args(["sweep", "--grid", "lambda=0.5,2", "--grid", "beta=1,3", "--out"]).arg(out);
        if slurm {
            c.args(["--launcher", "slurm"]);
        }
        c.args(["toy", "--steps", "100000"]);
        c
    };
    let local = tmp("sweep-slurm-local");
    ok(&sweep(&local, false).output().unwrap());
    let cluster = tmp("sweep-slurm-cluster");
    let stdout = ok(&sweep(&cluster, true).output().unwrap());
    assert!(stdout.contains("points (4 task(s))") && stdout.contains("results (1 job)"), "{stdout}");
    wait_for_table(&cluster, &job_ids(&stdout));
    let csv = |d: &Path| std::fs::read_to_string(d.join("results.csv")).unwrap();
    assert_eq!(csv(&local), csv(&cluster));
}
