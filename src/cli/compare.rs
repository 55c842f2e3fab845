//! `rarts compare`: the paper's comparison of the methods.

use std::path::PathBuf;

use rarts::Result;
use rarts::compare::{Invocation, JobKind, read_jobs, slurm};
use rarts::data::DataSpec;
use rarts::space::SpaceKind;
use rarts::space::nb201::table;

use super::Target;

#[derive(clap::Args)]
pub(super) struct CompareArgs {
    /// The search space: DARTS' cells, NAS-Bench-201's, or a ResNet's
    /// channel widths (searches beside uniform scaling and L1 pruning).
    #[arg(long, value_enum, default_value_t = SpaceKind::Darts)]
    space: SpaceKind,
    /// small: a 2-core CPU on Fashion-MNIST (darts ~3 h, nb201 ~2 h, width
    /// ~1 h); cifar-cpu (nb201): CIFAR-10 (--data) judged by the
    /// NAS-Bench-201 table, 3 seeds in about 75 min on 2 idle cores;
    /// paper: the published protocol on CIFAR-10 (a GPU); smoke: the
    /// whole pipeline in a minute on the embedded data.
    /// (Taken from --out's jobs.tsv when not given.)
    #[arg(long)]
    preset: Option<String>,
    /// Data set (small: Debian's Fashion-MNIST by default; paper: cifar10:DIR, required).
    #[arg(long)]
    data: Option<DataSpec>,
    #[arg(long)]
    out: Option<PathBuf>,
    /// NB201: judge every cell by this NAS-Bench-201 table (NATS-Bench's
    /// nats_bench.csv format; default: $RARTS_NB201_TABLE): its three
    /// accuracies per method, beside random cells, the table's best,
    /// median and mean, and DARTS' published result.
    #[arg(long)]
    nb201_table: Option<PathBuf>,
    /// NB201: retrain no cell; the table is the judge (the cifar-cpu and
    /// paper presets retrain none anyway).
    #[arg(long)]
    no_retrain: bool,
    /// Run only this job of the comparison in --out (a name from its
    /// jobs.tsv: search-rarts-s0, train-random-s1, results), with the
    /// settings recorded there: what a cluster's task runs.
    #[arg(long, value_name = "ID")]
    job: Option<String>,
    /// local: run every job here, one after the other; slurm: submit the
    /// jobs not done yet to Slurm with sbatch (job arrays with their
    /// dependencies, a last job for the table; see README, "Cluster").
    #[arg(long, value_enum, default_value_t = Launcher::Local)]
    launcher: Launcher,
    /// Extra sbatch arguments for every submission, split at spaces:
    /// --sbatch "--partition=gpu --time=24:00:00 --account=nas".
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    sbatch: Option<String>,
}

/// Where a comparison's or a sweep's jobs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Launcher {
    Local,
    Slurm,
}

pub(super) fn command(a: CompareArgs, device: &str, target: impl FnOnce() -> Result<Target>) -> Result<()> {
    let CompareArgs { space, preset, data, out, nb201_table, no_retrain, job, launcher, sbatch } = a;
    if sbatch.is_some() && launcher != Launcher::Slurm {
        return Err(rarts::Error("--sbatch: applies to --launcher slurm only".into()));
    }
    if job.is_some() && launcher == Launcher::Slurm {
        return Err(rarts::Error("--job: runs one job here; expected it without --launcher slurm".into()));
    }
    let given = preset.is_some() || data.is_some() || nb201_table.is_some() || no_retrain;
    let invocation = match (preset, &out) {
        (Some(preset), _) => {
            let nb201 = space == SpaceKind::Nb201;
            if !nb201 && (nb201_table.is_some() || no_retrain) {
                let flag = if no_retrain { "--no-retrain" } else { "--nb201-table" };
                return Err(rarts::Error(format!("{flag}: applies to --space nb201 only")));
            }
            // The table's path as found now (a flag or $RARTS_NB201_TABLE),
            // so that the comparison's jobs find it anywhere.
            let table = if nb201 { table::from_flag(nb201_table.as_deref())? } else { None };
            Invocation { space, preset, data, nb201_table: table.map(|t| t.path().to_path_buf()), no_retrain }
        }
        (None, Some(out)) if !given => read_jobs(out)?.0,
        (None, Some(_)) => {
            let why = "--data, --nb201-table, --no-retrain: given without --preset; expected --preset too, or none \
                       of them (the comparison in --out says them)";
            return Err(rarts::Error(why.into()));
        }
        (None, None) => {
            return Err(rarts::Error(
                "--preset: missing; expected --preset NAME, or --out DIR of a comparison already started".into(),
            ));
        }
    };
    let p = invocation.preset()?;
    let table = invocation.table()?;
    let out = out.unwrap_or_else(|| rarts::compare::default_out(invocation.space, p.name));
    if launcher == Launcher::Slurm {
        let plan = rarts::compare::prepare(&p, &invocation, &out, table.as_ref())?;
        if rarts::compare::all_done(&p, &out, &plan) {
            // Nothing to submit: the table, here and now.
            let target = target()?;
            let text = with_backend!(target, f32, |make| rarts::compare::results(&make, &p, &out, table.as_ref())?);
            print!("{text}");
            eprintln!("every job of {} is done: nothing was submitted", out.display());
            return Ok(());
        }
        let how = slurm::Submit {
            command: "compare",
            device: device.to_string(),
            extra: slurm::split_extra(sbatch.as_deref()),
        };
        print!("{}", slurm::submit(&p, &out, &plan, &how)?);
        return Ok(());
    }
    let target = target()?;
    if let Some(id) = job {
        let plan = rarts::compare::prepare(&p, &invocation, &out, table.as_ref())?;
        let Some(job) = plan.iter().find(|j| j.id == id) else {
            let ids: Vec<&str> = plan.iter().map(|j| j.id.as_str()).collect();
            return Err(rarts::Error(format!(
                "--job {id}: not a job of the comparison in {}; expected one of {}",
                out.display(),
                ids.join(", ")
            )));
        };
        with_backend!(target, f32, |make| rarts::compare::run_job(&make, &p, &out, table.as_ref(), job)?);
        if job.kind == JobKind::Results {
            print!("{}", std::fs::read_to_string(out.join("results.md")).unwrap_or_default());
        }
        return Ok(());
    }
    let text = with_backend!(target, f32, |make| rarts::compare::compare(make, &p, &invocation, &out, table.as_ref())?);
    print!("{text}");
    Ok(())
}
