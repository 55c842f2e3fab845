//! What `rarts search` is told, each setting declared once: its flag, its
//! help and its default are the field's (`#[derive(clap::Args)]`), and the
//! command line and the library both go through [`SearchConfig::validate`].
//! [`StepConfig`] is a step's settings (what `profile` and `bench` take);
//! [`SearchConfig`] adds the epochs, what each one logs, and the folder.

use std::path::PathBuf;

use crate::data::DataSpec;
use crate::error::Result;
use crate::flags::{flag_defaults, momentum, need, rate, show, sizes};
use crate::rundir::RunOptions;
use crate::search::algo::{Algo, Schedule};
use crate::space::SpaceKind;

/// A search step's settings: the data, the space and its sizes, the
/// algorithm and its rates. `Default` gives DARTS' search settings (SPEC §4)
/// on the embedded data.
#[derive(clap::Args, Clone, Debug)]
pub struct StepConfig {
    #[arg(long, default_value_t = DataSpec::Embedded, help = crate::data::spec::help())]
    pub data: DataSpec,
    /// The search space: DARTS' cells; NAS-Bench-201's (`nb201`: --c is the
    /// first stage's channels, --cells-per-stage the cells of each of its
    /// three stages; --layers does not apply); or the channel widths of a
    /// CIFAR ResNet (`width`: --depth, --macs-target, --macs-weight).
    #[arg(long, value_enum, default_value_t = SpaceKind::Darts)]
    pub space: SpaceKind,
    /// NB201: cells per stage (5 in NATS-Bench).
    #[arg(long, default_value_t = 5)]
    pub cells_per_stage: usize,
    /// Width: the CIFAR ResNet's depth, 6n + 2 (20 or 56).
    #[arg(long, default_value_t = 20)]
    pub depth: usize,
    /// Width: the multiply-add target as a fraction of the full network's.
    #[arg(long, default_value_t = 0.5)]
    pub macs_target: f64,
    /// Width: μ, the weight of max(0, E[MACs]/target − 1) in α's loss.
    #[arg(long, default_value_t = 2.0)]
    pub macs_weight: f32,
    #[arg(long, value_enum, default_value_t = Algo::Rarts)]
    pub algo: Algo,
    /// RARTS: `fused` takes α's gradient from the weight passes (2 passes a
    /// step); `exact` recomputes it at the new weights (4).
    #[arg(long, value_enum, default_value_t = Schedule::Fused)]
    pub schedule: Schedule,
    /// RARTS weight λ of the training loss.
    #[arg(long, default_value_t = 1.0)]
    pub lambda: f32,
    /// RARTS coupling β between the two networks.
    #[arg(long, default_value_t = 1.0)]
    pub beta: f32,
    /// DARTS second order unrolling step ξ (default: the current weight lr).
    #[arg(long)]
    pub xi: Option<f32>,
    /// Initial channels C.
    #[arg(long, default_value_t = 16)]
    pub c: usize,
    /// Cells.
    #[arg(long, default_value_t = 8)]
    pub layers: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Fraction of the training set that trains the weights; the rest trains α.
    #[arg(long, default_value_t = 0.5)]
    pub train_portion: f64,
    #[arg(long, default_value_t = 0.025)]
    pub lr: f32,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    #[arg(long, default_value_t = 3e-4)]
    pub weight_decay: f32,
    /// Gradient-norm clip of the weights.
    #[arg(long, default_value_t = 5.0)]
    pub clip: f32,
    #[arg(long, default_value_t = 3e-4)]
    pub arch_lr: f32,
    #[arg(long, default_value_t = 1e-3)]
    pub arch_weight_decay: f32,
    #[arg(long, default_value_t = 2)]
    pub seed: u64,
    /// CUDA only: replay each step's kernels as a CUDA graph (the first step
    /// runs as it comes, the second is captured). Off by default until it
    /// has run on a GPU.
    #[arg(long)]
    pub cuda_graph: bool,
    /// RARTS: record `w` and `y` side by side, each op of the pair one op
    /// (one launch) over both (the default); `false` records them as two
    /// networks, op by op, the same arithmetic (kept to check one against
    /// the other). Not a flag.
    #[arg(skip = true)]
    pub side_by_side: bool,
}

impl Default for StepConfig {
    fn default() -> Self {
        flag_defaults(&[])
    }
}

/// Everything `rarts search` is told: a step's settings, the schedule of
/// epochs, what each epoch evaluates and logs, and the output folder.
#[derive(clap::Args, Clone, Debug)]
pub struct SearchConfig {
    #[command(flatten)]
    pub step: StepConfig,
    #[arg(long, default_value_t = 50)]
    pub epochs: usize,
    /// Caps the steps of each epoch (short runs).
    #[arg(long)]
    pub steps_per_epoch: Option<usize>,
    /// The weights' learning rate at the end of the cosine schedule.
    #[arg(long, default_value_t = 0.001)]
    pub lr_min: f32,
    /// Test images evaluated after each epoch (0: none; default 1000 where
    /// the data have a test split, else none).
    #[arg(long)]
    pub eval_images: Option<usize>,
    /// Steps between two samples of softmax(α) in alpha.jsonl (default:
    /// about 24 per epoch).
    #[arg(long)]
    pub alpha_every: Option<usize>,
    /// NB201: look the cell up after every epoch in this NAS-Bench-201 table
    /// (NATS-Bench's nats_bench.csv format; default: $RARTS_NB201_TABLE) and
    /// log its three accuracies. A judge, not a setting: it may be added
    /// when resuming.
    #[arg(long)]
    pub nb201_table: Option<PathBuf>,
    /// The output folder and how the run treats it (the command line's
    /// run flags).
    #[arg(skip = RunOptions::new("runs/search"))]
    pub run: RunOptions,
}

impl Default for SearchConfig {
    fn default() -> Self {
        flag_defaults(&[])
    }
}

/// Test images evaluated per epoch when `--eval-images` is not given.
pub const DEFAULT_EVAL_IMAGES: usize = 1000;

impl SearchConfig {
    /// Every setting inside its domain; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        sizes(self.step.c, self.step.layers, self.step.batch, self.epochs, self.steps_per_epoch)?;
        need(self.step.cells_per_stage >= 1, "--cells-per-stage", self.step.cells_per_stage, "at least 1")?;
        if let Some(n) = self.alpha_every {
            need(n >= 1, "--alpha-every", n, "at least 1")?;
        }
        need(
            self.step.train_portion > 0.0 && self.step.train_portion < 1.0,
            "--train-portion",
            self.step.train_portion,
            "a fraction strictly between 0 and 1",
        )?;
        rate("--lr", self.step.lr, true)?;
        rate("--lr-min", self.lr_min, false)?;
        need(self.lr_min <= self.step.lr, "--lr-min", self.lr_min, "at most --lr")?;
        rate("--clip", self.step.clip, true)?;
        rate("--weight-decay", self.step.weight_decay, false)?;
        rate("--arch-lr", self.step.arch_lr, true)?;
        rate("--arch-weight-decay", self.step.arch_weight_decay, false)?;
        momentum(self.step.momentum)?;
        rate("--lambda", self.step.lambda, false)?;
        rate("--beta", self.step.beta, false)?;
        if let Some(xi) = self.step.xi {
            rate("--xi", xi, false)?;
        }
        if let Some(t) = &self.nb201_table
            && self.step.space != SpaceKind::Nb201
        {
            crate::bail!("--nb201-table {}: the table judges NB201 cells; expected --space nb201", t.display());
        }
        Ok(())
    }

    /// The flags that size the network and the batch, for messages.
    pub fn size_flags(&self) -> String {
        match self.step.space {
            SpaceKind::Darts => {
                format!("--c {} --layers {} --batch {}", self.step.c, self.step.layers, self.step.batch)
            }
            SpaceKind::Nb201 => {
                format!(
                    "--space nb201 --c {} --cells-per-stage {} --batch {}",
                    self.step.c, self.step.cells_per_stage, self.step.batch
                )
            }
            SpaceKind::Width => format!("--space width --depth {} --batch {}", self.step.depth, self.step.batch),
        }
    }

    /// The settings that must match for `--resume` to continue a run, by
    /// flag name (`--out` and the progress switch are not among them).
    pub fn identity(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "default".into());
        [
            ("--data", self.step.data.to_string()),
            ("--space", self.step.space.name().into()),
            ("--algo", self.step.algo.name().into()),
            ("--schedule", format!("{:?}", self.step.schedule).to_lowercase()),
            ("--lambda", self.step.lambda.to_string()),
            ("--beta", self.step.beta.to_string()),
            ("--xi", opt(self.step.xi.map(|v| v.to_string()))),
            ("--c", self.step.c.to_string()),
            match self.step.space {
                SpaceKind::Darts => ("--layers", self.step.layers.to_string()),
                SpaceKind::Nb201 => ("--cells-per-stage", self.step.cells_per_stage.to_string()),
                SpaceKind::Width => ("--depth", self.step.depth.to_string()),
            },
            ("--batch", self.step.batch.to_string()),
            ("--epochs", self.epochs.to_string()),
            ("--steps-per-epoch", opt(self.steps_per_epoch.map(|v| v.to_string()))),
            ("--train-portion", self.step.train_portion.to_string()),
            ("--lr", self.step.lr.to_string()),
            ("--lr-min", self.lr_min.to_string()),
            ("--momentum", self.step.momentum.to_string()),
            ("--weight-decay", self.step.weight_decay.to_string()),
            ("--clip", self.step.clip.to_string()),
            ("--arch-lr", self.step.arch_lr.to_string()),
            ("--arch-weight-decay", self.step.arch_weight_decay.to_string()),
            ("--seed", self.step.seed.to_string()),
            ("--eval-images", opt(self.eval_images.map(|v| v.to_string()))),
        ]
        .into_iter()
        .chain(
            (self.step.space == SpaceKind::Width)
                .then(|| {
                    [
                        ("--macs-target", self.step.macs_target.to_string()),
                        ("--macs-weight", self.step.macs_weight.to_string()),
                    ]
                })
                .into_iter()
                .flatten(),
        )
        // The ResNet's channels are fixed: --c does not apply.
        .filter(|(f, _)| !(self.step.space == SpaceKind::Width && *f == "--c"))
        .collect()
    }

    /// Cosine annealing per epoch (PyTorch's `CosineAnnealingLR`, `T_max = epochs`).
    pub fn lr_at(&self, epoch: usize) -> f32 {
        let t = epoch as f64 / self.epochs.max(1) as f64;
        (self.lr_min as f64 + (self.step.lr - self.lr_min) as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
            as f32
    }

    /// The flag whose rate moves a tensor of the checkpoint or the tape
    /// (`alpha_*` and α's optimizer state: `--arch-lr`; the rest: `--lr`).
    pub fn rate_flag_of(&self, tensor: &str) -> String {
        let arch = tensor.starts_with("alpha") || tensor.starts_with("opt.arch");
        // DARTS second order: α's gradient is taken at w' = w − ξ∇w, so a ξ
        // larger than the weights' own rate is the likelier cause.
        if let (Algo::Darts2, Some(xi)) = (self.step.algo, self.step.xi)
            && xi > self.step.lr
        {
            let other = if arch {
                format!("--arch-lr (now {})", show(self.step.arch_lr))
            } else {
                format!("--lr (now {})", show(self.step.lr))
            };
            return format!("--xi (now {}) or {other}", show(xi));
        }
        if arch {
            format!("--arch-lr (now {})", show(self.step.arch_lr))
        } else {
            format!("--lr (now {})", show(self.step.lr))
        }
    }
}
