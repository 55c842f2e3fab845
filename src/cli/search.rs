//! `rarts search`: the flags of a search (also those of `profile` and
//! `bench`, which time its steps), the output folder's, and the command.

use std::path::PathBuf;

use rarts::Result;
use rarts::data::DataSpec;
use rarts::rundir::Existing;
use rarts::search::config::SearchConfig;
use rarts::search::driver;

use super::{AlgoArg, ScheduleArg, SpaceArg, Target, data_help};

#[derive(clap::Args, Clone)]
pub(super) struct SearchArgs {
    #[arg(long, default_value_t = SearchConfig::default().data, help = data_help())]
    pub(super) data: DataSpec,
    /// The search space: DARTS' cells; NAS-Bench-201's (`nb201`: --c is the
    /// first stage's channels, --cells-per-stage the cells of each of its
    /// three stages; --layers does not apply); or the channel widths of a
    /// CIFAR ResNet (`width`: --depth, --macs-target, --macs-weight).
    #[arg(long, value_enum, default_value_t = SpaceArg::Darts)]
    pub(super) space: SpaceArg,
    /// NB201: cells per stage (5 in NATS-Bench).
    #[arg(long, default_value_t = SearchConfig::default().cells_per_stage)]
    pub(super) cells_per_stage: usize,
    /// Width: the CIFAR ResNet's depth, 6n + 2 (20 or 56).
    #[arg(long, default_value_t = SearchConfig::default().depth)]
    pub(super) depth: usize,
    /// Width: the multiply-add target as a fraction of the full network's.
    #[arg(long, default_value_t = SearchConfig::default().macs_target)]
    pub(super) macs_target: f64,
    /// Width: μ, the weight of max(0, E[MACs]/target − 1) in α's loss.
    #[arg(long, default_value_t = SearchConfig::default().macs_weight)]
    pub(super) macs_weight: f32,
    #[arg(long, value_enum, default_value_t = SearchConfig::default().algo.into())]
    pub(super) algo: AlgoArg,
    /// RARTS: `fused` takes α's gradient from the weight passes (2 passes a
    /// step); `exact` recomputes it at the new weights (4).
    #[arg(long, value_enum, default_value_t = SearchConfig::default().schedule.into())]
    pub(super) schedule: ScheduleArg,
    /// RARTS weight λ of the training loss.
    #[arg(long, default_value_t = SearchConfig::default().lambda)]
    pub(super) lambda: f32,
    /// RARTS coupling β between the two networks.
    #[arg(long, default_value_t = SearchConfig::default().beta)]
    pub(super) beta: f32,
    /// DARTS second order unrolling step ξ (default: the current weight lr).
    #[arg(long)]
    pub(super) xi: Option<f32>,
    /// Initial channels C.
    #[arg(long, default_value_t = SearchConfig::default().c)]
    pub(super) c: usize,
    /// Cells.
    #[arg(long, default_value_t = SearchConfig::default().layers)]
    pub(super) layers: usize,
    #[arg(long, default_value_t = SearchConfig::default().batch)]
    pub(super) batch: usize,
    /// Fraction of the training set that trains the weights; the rest trains α.
    #[arg(long, default_value_t = SearchConfig::default().train_portion)]
    pub(super) train_portion: f64,
    #[arg(long, default_value_t = SearchConfig::default().lr)]
    pub(super) lr: f32,
    #[arg(long, default_value_t = SearchConfig::default().momentum)]
    pub(super) momentum: f32,
    #[arg(long, default_value_t = SearchConfig::default().weight_decay)]
    pub(super) weight_decay: f32,
    /// Gradient-norm clip of the weights.
    #[arg(long, default_value_t = SearchConfig::default().clip)]
    pub(super) clip: f32,
    #[arg(long, default_value_t = SearchConfig::default().arch_lr)]
    pub(super) arch_lr: f32,
    #[arg(long, default_value_t = SearchConfig::default().arch_weight_decay)]
    pub(super) arch_weight_decay: f32,
    #[arg(long, default_value_t = SearchConfig::default().seed)]
    pub(super) seed: u64,
    /// CUDA only: replay each step's kernels as a CUDA graph (the first step
    /// runs as it comes, the second is captured). Off by default until it
    /// has run on a GPU.
    #[arg(long)]
    pub(super) cuda_graph: bool,
}

/// What `rarts search` takes beyond a step's settings: the schedule of
/// epochs, what each epoch evaluates and logs, and its output folder.
#[derive(clap::Args, Clone)]
pub(super) struct SearchRunArgs {
    #[command(flatten)]
    pub(super) search: SearchArgs,
    #[arg(long, default_value_t = SearchConfig::default().epochs)]
    pub(super) epochs: usize,
    /// Caps the steps of each epoch (short runs).
    #[arg(long)]
    pub(super) steps_per_epoch: Option<usize>,
    /// The weights' learning rate at the end of the cosine schedule.
    #[arg(long, default_value_t = SearchConfig::default().lr_min)]
    pub(super) lr_min: f32,
    /// Test images evaluated after each epoch (0: none; default 1000 where
    /// the data have a test split, else none).
    #[arg(long)]
    pub(super) eval_images: Option<usize>,
    /// Steps between two samples of softmax(α) in alpha.jsonl (default:
    /// about 24 per epoch).
    #[arg(long)]
    pub(super) alpha_every: Option<usize>,
    /// NB201: look the cell up after every epoch in this NAS-Bench-201 table
    /// (NATS-Bench's nats_bench.csv format; default: $RARTS_NB201_TABLE) and
    /// log its three accuracies. A judge, not a setting: it may be added
    /// when resuming.
    #[arg(long)]
    nb201_table: Option<PathBuf>,
    #[command(flatten)]
    pub(super) run: RunArgs,
}

/// The output folder and what to do with one that holds a run.
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
}

impl RunArgs {
    pub(super) fn out(&self, default: PathBuf) -> PathBuf {
        self.out.clone().unwrap_or(default)
    }

    pub(super) fn existing(&self) -> Existing {
        match (self.resume, self.force) {
            (true, _) => Existing::Resume,
            (_, true) => Existing::Force,
            _ => Existing::Refuse,
        }
    }
}

/// A whole search's settings from the flags (the library checks them).
impl SearchRunArgs {
    pub(super) fn config(self) -> SearchConfig {
        let a = self;
        SearchConfig {
            epochs: a.epochs,
            steps_per_epoch: a.steps_per_epoch,
            lr_min: a.lr_min,
            eval_images: a.eval_images,
            alpha_every: a.alpha_every,
            out: a.run.out(SearchConfig::default().out),
            existing: a.run.existing(),
            progress: !a.run.quiet,
            report: !a.run.no_report,
            nb201_table: a.nb201_table,
            ..a.search.config()
        }
    }
}

/// A step's settings from the flags (`profile`, `bench`: no epochs, no
/// output folder); the rest at their defaults.
impl SearchArgs {
    pub(super) fn config(self) -> SearchConfig {
        let a = self;
        SearchConfig {
            data: a.data,
            space: a.space.into(),
            cells_per_stage: a.cells_per_stage,
            depth: a.depth,
            macs_target: a.macs_target,
            macs_weight: a.macs_weight,
            algo: a.algo.into(),
            schedule: a.schedule.into(),
            lambda: a.lambda,
            beta: a.beta,
            xi: a.xi,
            c: a.c,
            layers: a.layers,
            batch: a.batch,
            train_portion: a.train_portion,
            lr: a.lr,
            momentum: a.momentum,
            weight_decay: a.weight_decay,
            clip: a.clip,
            arch_lr: a.arch_lr,
            arch_weight_decay: a.arch_weight_decay,
            seed: a.seed,
            cuda_graph: a.cuda_graph,
            side_by_side: true,
            ..SearchConfig::default()
        }
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
