//! `rarts sweep`: one command over a grid of flag values and seeds.

use std::path::{Path, PathBuf};

use rarts::Result;
use rarts::compare::slurm::{self, After, Batch};
use rarts::sweep::{self, Command, Point, Sweep, table};

use super::compare::Launcher;

#[derive(clap::Args)]
pub(super) struct SweepArgs {
    /// A flag of the command and its values, comma-separated; repeated for
    /// a grid of several flags: --grid lambda=0.5,1,2 --grid beta=0.5,1,2.
    #[arg(long, value_name = "FLAG=V1,V2,…")]
    grid: Vec<String>,
    /// Run each point once per seed (the command's --seed); search and train.
    #[arg(long, value_delimiter = ',', value_name = "S,…")]
    seeds: Vec<u64>,
    /// The sweep's folder (default runs/sweep-COMMAND): sweep.tsv, a folder
    /// per point, results.md, results.csv.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only this point (its folder's name), or `results` (the table),
    /// with the settings recorded in --out: what a cluster's task runs.
    #[arg(long, value_name = "POINT")]
    job: Option<String>,
    /// local: every point here, one after the other; slurm: the points not
    /// done as one job array, then a job that writes the table.
    #[arg(long, value_enum, default_value_t = Launcher::Local)]
    launcher: Launcher,
    /// Extra sbatch arguments for every submission, split at spaces.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    sbatch: Option<String>,
    /// COMMAND (toy, search or train) and its flags, the same for every
    /// point; none with --out of a sweep already started.
    #[arg(value_name = "COMMAND [FLAGS]", allow_hyphen_values = true)]
    command: Vec<String>,
}

pub(super) fn command(a: SweepArgs, device: &str) -> Result<()> {
    let SweepArgs { grid, seeds, out, job, launcher, sbatch, command } = a;
    if sbatch.is_some() && launcher != Launcher::Slurm {
        return Err(rarts::Error("--sbatch: applies to --launcher slurm only".into()));
    }
    let sw = match (command.split_first(), &out) {
        (Some((cmd, base)), _) => {
            let sw = Sweep {
                command: Command::parse(cmd)?,
                base: base.to_vec(),
                grid: grid.iter().map(|g| Sweep::parse_grid(g)).collect::<Result<_>>()?,
                seeds,
            };
            sw.validate()?;
            sw
        }
        (None, Some(out)) if grid.is_empty() && seeds.is_empty() => Sweep::load(out)?,
        (None, _) => {
            return Err(rarts::Error(
                "sweep: no COMMAND; expected `rarts sweep --grid FLAG=V1,V2 COMMAND [FLAGS]`, or only --out DIR of a \
                 sweep already started"
                    .into(),
            ));
        }
    };
    let out = out.unwrap_or_else(|| PathBuf::from(format!("runs/sweep-{}", sw.command.name())));
    let points = sw.points();
    // Every point's command line parses before anything runs.
    for p in &points {
        let mut args = vec!["--device".to_string(), device.to_string()];
        args.extend(sw.argv(&out, p));
        super::parse_args(&args).map_err(|e| rarts::Error(format!("sweep point {}: {e}", p.id)))?;
    }
    sw.record(&out)?;
    if let Some(id) = job {
        if id == "results" {
            print!("{}", table::write(&sw, &out)?);
            return Ok(());
        }
        let Some(p) = points.iter().find(|p| p.id == id) else {
            let ids: Vec<&str> = points.iter().map(|p| p.id.as_str()).collect();
            return Err(rarts::Error(format!(
                "--job {id}: not a point of the sweep in {}; expected one of {}, or results",
                out.display(),
                ids.join(", ")
            )));
        };
        return run_point(&sw, &out, p, device);
    }
    let left: Vec<(usize, &Point)> = points.iter().enumerate().filter(|(_, p)| !sweep::done(&out, p)).collect();
    if launcher == Launcher::Slurm && !left.is_empty() {
        let how = slurm::Submit {
            command: "sweep",
            device: device.to_string(),
            extra: slurm::split_extra(sbatch.as_deref()),
        };
        let batches = [
            Batch {
                name: "points",
                tasks: left.iter().map(|(i, p)| (*i, p.id.clone())).collect(),
                array: true,
                after: After::Nothing,
            },
            // The table from whatever finished, once every point has ended.
            Batch { name: "results", tasks: vec![(0, "results".into())], array: false, after: After::AllEnded },
        ];
        print!("{}", slurm::submit_batches(&std::path::absolute(&out).unwrap_or(out.clone()), &batches, &how)?);
        return Ok(());
    }
    for (n, (_, p)) in left.iter().enumerate() {
        eprintln!("sweep: point {} of {} left: {}", n + 1, left.len(), p.id);
        run_point(&sw, &out, p, device)?;
    }
    print!("{}", table::write(&sw, &out)?);
    Ok(())
}

/// Runs point `p` in this process (skipped when done) and marks it done.
fn run_point(sw: &Sweep, out: &Path, p: &Point, device: &str) -> Result<()> {
    if sweep::done(out, p) {
        return Ok(());
    }
    let mut args = vec!["--device".to_string(), device.to_string()];
    args.extend(sw.argv(out, p));
    super::run_args(&args).map_err(|e| rarts::Error(format!("sweep point {}: {}", p.id, e.0)))?;
    sweep::mark_done(out, p)
}
