//! `rarts search`: the search's flags (declared on [`SearchConfig`]), the
//! output folder's (shared with `train`), and the command.

use std::path::PathBuf;

use rarts::Result;
use rarts::rundir::{Existing, RunOptions};
use rarts::search::config::SearchConfig;
use rarts::search::driver;

use super::Target;

/// `rarts search`'s flags: the search's own (declared on
/// [`SearchConfig`]) and the output folder's.
#[derive(clap::Args, Clone)]
pub(super) struct SearchRunArgs {
    #[command(flatten)]
    pub(super) search: SearchConfig,
    #[command(flatten)]
    pub(super) run: RunArgs,
}

/// The output folder and what to do with one that holds a run
/// ([`RunOptions`]), for `search` and `train`.
#[derive(clap::Args, Clone)]
pub(super) struct RunArgs {
    /// Output folder (default runs/search or runs/train).
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    /// Continue from --out/checkpoint.bin (a new run if --out has none yet).
    #[arg(long, conflicts_with = "force")]
    pub(super) resume: bool,
    /// Remove the files an earlier run wrote into --out (and only those),
    /// then start anew.
    #[arg(long)]
    pub(super) force: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub(super) quiet: bool,
    /// Do not write --out/report.html and its figures after every epoch.
    #[arg(long)]
    pub(super) no_report: bool,
    /// Also write the checkpoint every N steps, inside epochs (for a kill
    /// without warning; SIGTERM, SIGINT and SIGUSR1 already make the run
    /// write one after the step under way and exit with code 75).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) checkpoint_every: Option<u64>,
}

impl RunArgs {
    /// The run's options, the folder `default` unless --out is given.
    pub(super) fn options(self, default: PathBuf) -> RunOptions {
        RunOptions {
            out: self.out.unwrap_or(default),
            existing: match (self.resume, self.force) {
                (true, _) => Existing::Resume,
                (_, true) => Existing::Force,
                _ => Existing::Refuse,
            },
            progress: !self.quiet,
            report: !self.no_report,
            checkpoint_every: self.checkpoint_every.map(|n| n as usize),
        }
    }
}

impl SearchRunArgs {
    /// The search's settings with the output folder's.
    pub(super) fn config(self) -> SearchConfig {
        SearchConfig { run: self.run.options(SearchConfig::default().run.out), ..self.search }
    }
}

pub(super) fn command(a: SearchRunArgs, target: Target) -> Result<()> {
    let cfg = a.config();
    let res = with_backend!(target, f32, |make| driver::search(make()?, &cfg)?);
    println!("genotype: {}", res.found.text);
    if let Some(w) = &res.found.warning {
        eprintln!("warning: {w}");
    }
    print!("{}", res.closing(&cfg));
    if let Some(w) = res.alpha_warning(&cfg) {
        eprintln!("warning: {w}");
    }
    Ok(())
}
