//! A comparison handed to Slurm (`rarts compare … --launcher slurm`): the
//! jobs of the plan not done yet become batch scripts in `DIR/slurm/` and
//! are submitted with `sbatch` — the searches as one job array (a task per
//! method × seed), the retrainings of searched cells as an array whose
//! task i waits for search task i (`--dependency=aftercorr`), the other
//! retrainings (random cells, or cells whose search is done) as an array
//! of their own, and a last job that writes `results.md` once all have
//! succeeded. Each task runs `rarts compare --out DIR --job ID`, which
//! resumes from the job's checkpoint and skips a finished job.
//!
//! Preemption: each script asks for `--signal=B:USR1@300` (five minutes'
//! warning before its time limit), traps USR1 and TERM in the batch shell
//! and passes USR1 on to rarts, which finishes its step, writes its
//! checkpoint and exits with code 75; the script then requeues its task
//! (`scontrol requeue`), which continues where it stopped.

use std::path::Path;
use std::process::Command;

use super::Preset;
use super::jobs::{self, Job, JobKind};
use crate::error::{Context, Error, Result};
use crate::signals::EXIT_CHECKPOINTED;

/// Where the batch scripts and Slurm's own output files go.
pub const SLURM_DIR: &str = "slurm";

/// How the tasks are run.
#[derive(Clone, Debug, Default)]
pub struct Submit {
    /// The rarts command each task runs with `--out DIR --job ID`
    /// (`compare`, `sweep`).
    pub command: &'static str,
    /// `--device` for every task (`cpu`, `cuda`, `auto`).
    pub device: String,
    /// Extra `sbatch` arguments for every submission (`--sbatch`).
    pub extra: Vec<String>,
}

/// One submission: a batch script run as a job array (`tasks` by index)
/// or as one job, and what it waits for.
pub struct Batch {
    /// `search`, `train-after-search`, `train`, `results`, `widths`, `points`.
    pub name: &'static str,
    pub tasks: Vec<(usize, String)>,
    pub array: bool,
    pub after: After,
}

/// What a batch waits for among the batches submitted before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    Nothing,
    /// Task i waits for task i of that batch (`aftercorr`).
    Corresponding(&'static str),
    /// Every batch before it succeeded (`afterok`).
    AllSucceeded,
    /// Every batch before it ended, however (`afterany`).
    AllEnded,
}

/// The index of a method × seed job in the arrays: search task i and the
/// retraining task i of its cell share it.
fn index(preset: &Preset, job: &Job) -> usize {
    let per_seed = super::METHODS.len();
    let (m, seed) = match job.kind {
        JobKind::Search { algo, seed } => (super::METHODS.iter().position(|x| *x == Some(algo)), seed),
        JobKind::Train { method, seed } => (super::METHODS.iter().position(|x| *x == method), seed),
        _ => (Some(0), 0),
    };
    let s = preset.seeds.iter().position(|x| *x == seed).unwrap_or(0);
    s * per_seed + m.unwrap_or(0)
}

/// Submits the jobs of `plan` not done yet (some search or training must
/// be left: see [`super::all_done`]); returns what to print: the job ids
/// and how to watch them.
pub fn submit(preset: &Preset, out: &Path, plan: &[Job], how: &Submit) -> Result<String> {
    let out = std::path::absolute(out).ctx(|| format!("--out {}", out.display()))?;
    let left: Vec<&Job> = plan.iter().filter(|j| !jobs::done(preset, &out, j)).collect();
    let searching: Vec<&str> =
        left.iter().filter(|j| matches!(j.kind, JobKind::Search { .. })).map(|j| j.id.as_str()).collect();
    let mut batches = vec![
        Batch { name: "search", tasks: vec![], array: true, after: After::Nothing },
        Batch { name: "train-after-search", tasks: vec![], array: true, after: After::Corresponding("search") },
        Batch { name: "train", tasks: vec![], array: true, after: After::Nothing },
    ];
    for j in &left {
        let i = index(preset, j);
        match j.kind {
            JobKind::Search { .. } => batches[0].tasks.push((i, j.id.clone())),
            JobKind::Train { .. } if j.after.iter().any(|a| searching.contains(&a.as_str())) => {
                batches[1].tasks.push((i, j.id.clone()))
            }
            JobKind::Train { .. } => batches[2].tasks.push((i, j.id.clone())),
            JobKind::Widths => batches.push(Batch {
                name: "widths",
                tasks: vec![(0, j.id.clone())],
                array: false,
                after: After::Nothing,
            }),
            JobKind::Results => {}
        }
    }
    batches.retain(|b| !b.tasks.is_empty());
    if plan.iter().any(|j| j.kind == JobKind::Results) {
        batches.push(Batch {
            name: "results",
            tasks: vec![(0, "results".into())],
            array: false,
            after: After::AllSucceeded,
        });
    }
    submit_batches(&out, &batches, how)
}

/// Writes each batch's script into `out/slurm/`, checks them all with
/// `sbatch --test-only`, then submits them in order with their
/// dependencies (a refusal cancels what was submitted before it); returns
/// what to print.
pub fn submit_batches(out: &Path, batches: &[Batch], how: &Submit) -> Result<String> {
    let bin = std::env::current_exe().ctx(|| "finding the rarts binary for the batch scripts")?;
    let dir = out.join(SLURM_DIR);
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let mut scripts = Vec::new();
    for b in batches {
        let path = dir.join(format!("{}.sbatch", b.name));
        crate::rundir::write_atomic(&path, script(b, out, &bin, how).as_bytes())?;
        scripts.push(path);
    }
    // Every script past sbatch's own checks first: a refusal submits nothing.
    for (b, path) in batches.iter().zip(&scripts) {
        sbatch(&args(b, how, None), path, true)?;
    }
    let mut ids: Vec<(&'static str, String, usize)> = Vec::new();
    for (b, path) in batches.iter().zip(&scripts) {
        let find = |name: &str| ids.iter().find(|x| x.0 == name).map(|x| x.1.clone());
        let all: Vec<String> = ids.iter().map(|x| x.1.clone()).collect();
        let dependency = match b.after {
            After::Nothing => None,
            After::Corresponding(name) => find(name).map(|s| format!("aftercorr:{s}")),
            After::AllSucceeded => (!all.is_empty()).then(|| format!("afterok:{}", all.join(":"))),
            After::AllEnded => (!all.is_empty()).then(|| format!("afterany:{}", all.join(":"))),
        };
        match sbatch(&args(b, how, dependency.as_deref()), path, false) {
            Ok(id) => ids.push((b.name, id, b.tasks.len())),
            Err(e) => {
                let submitted: Vec<String> = ids.iter().map(|x| x.1.clone()).collect();
                let undone = if submitted.is_empty() {
                    String::new()
                } else {
                    let r = Command::new("scancel").args(&submitted).status();
                    format!(
                        "; the jobs submitted before it ({}) were {}",
                        submitted.join(", "),
                        if r.is_ok_and(|s| s.success()) { "cancelled" } else { "NOT cancelled: scancel them" }
                    )
                };
                return Err(Error(format!("{e}{undone}")));
            }
        }
    }
    let mut s = format!("submitted to Slurm ({}):\n", out.display());
    for (name, id, n) in &ids {
        let what = if *n > 1 || *name != "results" { format!("{n} task(s)") } else { "1 job".into() };
        s += &format!("  {id}  {name} ({what})\n");
    }
    let all: Vec<&str> = ids.iter().map(|x| x.1.as_str()).collect();
    s += &format!("watch: squeue -j {}\n", all.join(","));
    s += &format!("each task's output: {}/JOB/slurm-*.out (Slurm's own: {}/)\n", out.display(), dir.display());
    s += &format!(
        "the table: {}/results.md once the last job has run; `rarts {} --out {}` writes it from whatever is done\n",
        out.display(),
        how.command,
        out.display()
    );
    Ok(s)
}

/// The sbatch arguments of batch `b`: the array, the dependency, the
/// user's extra arguments.
fn args(b: &Batch, how: &Submit, dependency: Option<&str>) -> Vec<String> {
    let mut v = vec!["--parsable".to_string()];
    if b.array {
        let idx: Vec<String> = b.tasks.iter().map(|t| t.0.to_string()).collect();
        v.push(format!("--array={}", idx.join(",")));
    }
    if let Some(d) = dependency {
        v.push(format!("--dependency={d}"));
        v.push("--kill-on-invalid-dep=yes".into());
    }
    v.extend(how.extra.iter().cloned());
    v
}

/// Runs `sbatch ARGS SCRIPT` (`--test-only` when `test`): the job id, or
/// an error saying what sbatch said.
fn sbatch(args: &[String], script: &Path, test: bool) -> Result<String> {
    let mut c = Command::new("sbatch");
    if test {
        c.arg("--test-only");
    }
    let out = c.args(args).arg(script).output().map_err(|e| {
        Error(format!(
            "--launcher slurm: cannot run sbatch ({e}); expected Slurm's commands on PATH (or --launcher local). \
             Nothing was submitted"
        ))
    })?;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        crate::bail!(
            "--launcher slurm: sbatch refused {} ({}): {}{}",
            script.display(),
            args.join(" "),
            stderr.trim(),
            if test { ". Nothing was submitted" } else { "" }
        );
    }
    // `--parsable` prints `ID` or `ID;CLUSTER`.
    Ok(stdout.trim().split(';').next().unwrap_or("").to_string())
}

/// Single-quotes `s` for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The batch script of `b`: its `#SBATCH` lines, which job each task
/// index runs, and the run of `rarts compare --out DIR --job ID` that
/// passes the scheduler's warning on and requeues the task when rarts says
/// it checkpointed.
fn script(b: &Batch, out: &Path, bin: &Path, how: &Submit) -> String {
    let given = |flag: &str| how.extra.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let slurm_dir = out.join(SLURM_DIR);
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# rarts compare --out {} : {} jobs (written by rarts; submitted with sbatch).\n",
        out.display(),
        b.name
    );
    s += &format!("#SBATCH --job-name=rarts-{}\n", b.name);
    let pattern = if b.array { "%x-%A_%a.out" } else { "%x-%j.out" };
    s += &format!("#SBATCH --output={}/{pattern}\n", slurm_dir.display());
    s += "#SBATCH --open-mode=append\n";
    s += "#SBATCH --requeue\n";
    if !given("--signal") {
        s += "#SBATCH --signal=B:USR1@300\n";
    }
    if how.device == "cuda" && !(given("--gres") || given("--gpus") || given("-G")) {
        s += "#SBATCH --gres=gpu:1\n";
    }
    s += "set -u\n";
    s += "case \"${SLURM_ARRAY_TASK_ID:-0}\" in\n";
    for (i, id) in &b.tasks {
        s += &format!("  {i}) ID={} ;;\n", quote(id));
    }
    s += "  *) echo \"rarts: task ${SLURM_ARRAY_TASK_ID:-} is not one of this array's\" >&2; exit 1 ;;\nesac\n";
    // An array's task writes beside its job's run; a single job (the table,
    // the widths) beside Slurm's own files.
    let log_dir = if b.array {
        format!("{}/\"$ID\"", quote(&out.display().to_string()))
    } else {
        quote(&slurm_dir.display().to_string())
    };
    s += &format!("LOG_DIR={log_dir}\nmkdir -p \"$LOG_DIR\"\n");
    s += "exec >>\"$LOG_DIR/slurm-${SLURM_JOB_ID}.out\" 2>&1\n";
    s += "echo \"rarts task $ID: job ${SLURM_JOB_ID} on $(hostname), batch shell $$, start $(date -u +%FT%TZ), restarts ${SLURM_RESTART_COUNT:-0}\"\n";
    s += &format!(
        "{} --device {} {} --out {} --job \"$ID\" &\nchild=$!\n",
        quote(&bin.display().to_string()),
        quote(&how.device),
        how.command,
        quote(&out.display().to_string())
    );
    s += r#"# The scheduler's warning (USR1) or TERM: rarts finishes its step and checkpoints.
pass_on() {
  echo "rarts task $ID: $1 received by batch shell $$ at $(date -u +%T), passed on as USR1"
  kill -USR1 "$child" 2>/dev/null
}
trap 'pass_on USR1' USR1
trap 'pass_on TERM' TERM
wait "$child"; rc=$?
while [ "$rc" -gt 128 ] && kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
"#;
    s += &format!(
        r#"if [ "$rc" -eq {EXIT_CHECKPOINTED} ]; then
  echo "rarts task $ID: checkpointed; requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID" && exit 0
  echo "rarts task $ID: scontrol requeue failed; run the same task again to continue" >&2
fi
echo "rarts task $ID: exit $rc, $(date -u +%FT%TZ)"
exit "$rc"
"#
    );
    s
}

/// `--sbatch "ARGS"` split at white space (no quoting).
pub fn split_extra(extra: Option<&str>) -> Vec<String> {
    extra.map(|e| e.split_whitespace().map(String::from).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Batch {
        Batch {
            name: "search",
            tasks: vec![(0, "search-rarts-s0".into()), (4, "search-rarts-s1".into())],
            array: true,
            after: After::Nothing,
        }
    }

    #[test]
    fn a_script_maps_each_task_to_its_job_and_asks_for_what_it_needs() {
        let how = |device: &str, extra: &str| Submit {
            command: "compare",
            device: device.into(),
            extra: split_extra(Some(extra)),
        };
        let s = script(&batch(), Path::new("/runs/c"), Path::new("/bin/rarts"), &how("cuda", ""));
        assert!(s.contains("  4) ID='search-rarts-s1' ;;"), "{s}");
        assert!(s.contains("#SBATCH --gres=gpu:1\n") && s.contains("#SBATCH --signal=B:USR1@300\n"), "{s}");
        assert!(s.contains("'/bin/rarts' --device 'cuda' compare --out '/runs/c' --job \"$ID\""), "{s}");
        assert!(s.contains(&format!("if [ \"$rc\" -eq {EXIT_CHECKPOINTED} ]")), "{s}");
        // The user's own GPU request or signal wins; no GPU asked on the CPU.
        let s = script(
            &batch(),
            Path::new("/runs/c"),
            Path::new("/bin/rarts"),
            &how("cuda", "--gpus=2 --signal=B:USR1@900"),
        );
        assert!(!s.contains("--gres") && !s.contains("@300"), "{s}");
        let s = script(&batch(), Path::new("/runs/c"), Path::new("/bin/rarts"), &how("cpu", ""));
        assert!(!s.contains("--gres"), "{s}");
        // A quote in a path stays inside its quotes.
        let s = script(&batch(), Path::new("/runs/it's"), Path::new("/bin/rarts"), &how("cpu", ""));
        assert!(s.contains(r"--out '/runs/it'\''s'"), "{s}");
    }

    #[test]
    fn the_arrays_carry_their_indices_and_dependencies() {
        let a = args(&batch(), &Submit::default(), Some("aftercorr:12"));
        assert_eq!(a, ["--parsable", "--array=0,4", "--dependency=aftercorr:12", "--kill-on-invalid-dep=yes"]);
    }
}
