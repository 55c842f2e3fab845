//! What `rarts search` is told, checked in one place: the command line and
//! the library both go through [`SearchConfig::validate`].

use std::path::PathBuf;

use crate::data::DataSpec;
use crate::error::{Error, Result};
use crate::rundir::Existing;
use crate::search::algo::{Algo, Schedule};
use crate::space::SpaceKind;

/// Everything `rarts search` is told. `Default` gives DARTS' search
/// settings (SPEC §4) on the embedded data.
#[derive(Clone, Debug)]
pub struct SearchConfig {
    pub data: DataSpec,
    /// The search space.
    pub space: SpaceKind,
    /// NB201: cells per stage (5 in NATS-Bench).
    pub cells_per_stage: usize,
    /// Width: the ResNet's depth (20 or 56; 6n + 2).
    pub depth: usize,
    /// Width: the multiply-add target, a fraction of the full network's.
    pub macs_target: f64,
    /// Width: μ, the weight of the multiply-add cost.
    pub macs_weight: f32,
    pub algo: Algo,
    pub schedule: Schedule,
    pub lambda: f32,
    pub beta: f32,
    /// DARTS second order unrolling step; `None` = the current weight lr.
    pub xi: Option<f32>,
    pub c: usize,
    pub layers: usize,
    pub batch: usize,
    pub epochs: usize,
    /// Caps the steps of each epoch (short runs and tests); `None` = the whole split.
    pub steps_per_epoch: Option<usize>,
    pub train_portion: f64,
    pub lr: f32,
    pub lr_min: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub clip: f32,
    pub arch_lr: f32,
    pub arch_weight_decay: f32,
    pub seed: u64,
    /// Test images evaluated after each epoch: `None` = 1000 where the data
    /// have a test split, else none; `Some(n > 0)` on data without one is an
    /// error.
    pub eval_images: Option<usize>,
    /// Steps between two samples of softmax(α) in `alpha.jsonl` (`None`:
    /// about 24 per epoch).
    pub alpha_every: Option<usize>,
    pub out: PathBuf,
    /// What to do with an `out` folder that already holds a run.
    pub existing: Existing,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Write `report.html` and its figures into `out` after every epoch.
    pub report: bool,
    /// Replay each step as a CUDA graph (`--cuda-graph`; CUDA only).
    pub cuda_graph: bool,
    /// RARTS: record `w` and `y` side by side, each op of the pair one op
    /// (one launch) over both (the default); `false` records them as two
    /// networks, op by op, the same arithmetic (kept to check one against
    /// the other).
    pub side_by_side: bool,
    /// NB201: the NAS-Bench-201 table that judges the cell derived after
    /// every epoch (`--nb201-table`; `None`: `$RARTS_NB201_TABLE`, if set).
    /// A judge, not a setting: not part of what `--resume` compares.
    pub nb201_table: Option<PathBuf>,
}

/// Test images evaluated per epoch when `--eval-images` is not given.
pub const DEFAULT_EVAL_IMAGES: usize = 1000;

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            data: DataSpec::Embedded,
            algo: Algo::Rarts,
            schedule: Schedule::Fused,
            lambda: 1.0,
            beta: 1.0,
            xi: None,
            c: 16,
            layers: 8,
            batch: 64,
            epochs: 50,
            steps_per_epoch: None,
            train_portion: 0.5,
            lr: 0.025,
            lr_min: 0.001,
            momentum: 0.9,
            weight_decay: 3e-4,
            clip: 5.0,
            arch_lr: 3e-4,
            arch_weight_decay: 1e-3,
            seed: 2,
            eval_images: None,
            alpha_every: None,
            out: PathBuf::from("runs/search"),
            existing: Existing::Refuse,
            progress: true,
            report: true,
            cuda_graph: false,
            side_by_side: true,
            space: SpaceKind::Darts,
            cells_per_stage: 5,
            depth: 20,
            macs_target: 0.5,
            macs_weight: 2.0,
            nb201_table: None,
        }
    }
}

/// Fewest cells: the two reduction cells (at L/3 and 2L/3) and a normal cell.
pub const MIN_LAYERS: usize = 3;

/// Checks a flag's value; the error names the flag and what was expected.
pub fn need(ok: bool, flag: &str, value: impl std::fmt::Display, expected: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(Error(format!("{flag} {value}: expected {expected}"))) }
}

/// A rate, decay or weight: finite, and positive or non-negative.
pub fn rate(flag: &str, v: f32, positive: bool) -> Result<()> {
    let ok = v.is_finite() && if positive { v > 0.0 } else { v >= 0.0 };
    need(ok, flag, v, if positive { "a finite positive number" } else { "a finite non-negative number" })
}

/// `--momentum` in [0, 1).
pub fn momentum(m: f32) -> Result<()> {
    need(m.is_finite() && (0.0..1.0).contains(&m), "--momentum", m, "a number in [0, 1)")
}

/// The sizes a search and a training run share: `--c`, `--layers`,
/// `--batch`, `--epochs`, `--steps-per-epoch`.
pub fn sizes(c: usize, layers: usize, batch: usize, epochs: usize, steps_per_epoch: Option<usize>) -> Result<()> {
    need(c >= 2 && c.is_multiple_of(2), "--c", c, "an even channel count of at least 2")?;
    need(layers >= MIN_LAYERS, "--layers", layers, "at least 3 cells (the two reduction cells and a normal cell)")?;
    need(batch >= 1, "--batch", batch, "at least 1")?;
    need(epochs >= 1, "--epochs", epochs, "at least 1")?;
    if let Some(s) = steps_per_epoch {
        need(s >= 1, "--steps-per-epoch", s, "at least 1")?;
    }
    Ok(())
}

impl SearchConfig {
    /// Every setting inside its domain; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        sizes(self.c, self.layers, self.batch, self.epochs, self.steps_per_epoch)?;
        need(self.cells_per_stage >= 1, "--cells-per-stage", self.cells_per_stage, "at least 1")?;
        if let Some(n) = self.alpha_every {
            need(n >= 1, "--alpha-every", n, "at least 1")?;
        }
        need(
            self.train_portion > 0.0 && self.train_portion < 1.0,
            "--train-portion",
            self.train_portion,
            "a fraction strictly between 0 and 1",
        )?;
        rate("--lr", self.lr, true)?;
        rate("--lr-min", self.lr_min, false)?;
        need(self.lr_min <= self.lr, "--lr-min", self.lr_min, "at most --lr")?;
        rate("--clip", self.clip, true)?;
        rate("--weight-decay", self.weight_decay, false)?;
        rate("--arch-lr", self.arch_lr, true)?;
        rate("--arch-weight-decay", self.arch_weight_decay, false)?;
        momentum(self.momentum)?;
        rate("--lambda", self.lambda, false)?;
        rate("--beta", self.beta, false)?;
        if let Some(xi) = self.xi {
            rate("--xi", xi, false)?;
        }
        if let Some(t) = &self.nb201_table
            && self.space != SpaceKind::Nb201
        {
            crate::bail!("--nb201-table {}: the table judges NB201 cells; expected --space nb201", t.display());
        }
        Ok(())
    }

    /// The flags that size the network and the batch, for messages.
    pub fn size_flags(&self) -> String {
        match self.space {
            SpaceKind::Darts => format!("--c {} --layers {} --batch {}", self.c, self.layers, self.batch),
            SpaceKind::Nb201 => {
                format!(
                    "--space nb201 --c {} --cells-per-stage {} --batch {}",
                    self.c, self.cells_per_stage, self.batch
                )
            }
            SpaceKind::Width => format!("--space width --depth {} --batch {}", self.depth, self.batch),
        }
    }

    /// The settings that must match for `--resume` to continue a run, by
    /// flag name (`--out` and the progress switch are not among them).
    pub fn identity(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "default".into());
        [
            ("--data", self.data.to_string()),
            ("--space", self.space.name().into()),
            ("--algo", self.algo.name().into()),
            ("--schedule", format!("{:?}", self.schedule).to_lowercase()),
            ("--lambda", self.lambda.to_string()),
            ("--beta", self.beta.to_string()),
            ("--xi", opt(self.xi.map(|v| v.to_string()))),
            ("--c", self.c.to_string()),
            match self.space {
                SpaceKind::Darts => ("--layers", self.layers.to_string()),
                SpaceKind::Nb201 => ("--cells-per-stage", self.cells_per_stage.to_string()),
                SpaceKind::Width => ("--depth", self.depth.to_string()),
            },
            ("--batch", self.batch.to_string()),
            ("--epochs", self.epochs.to_string()),
            ("--steps-per-epoch", opt(self.steps_per_epoch.map(|v| v.to_string()))),
            ("--train-portion", self.train_portion.to_string()),
            ("--lr", self.lr.to_string()),
            ("--lr-min", self.lr_min.to_string()),
            ("--momentum", self.momentum.to_string()),
            ("--weight-decay", self.weight_decay.to_string()),
            ("--clip", self.clip.to_string()),
            ("--arch-lr", self.arch_lr.to_string()),
            ("--arch-weight-decay", self.arch_weight_decay.to_string()),
            ("--seed", self.seed.to_string()),
            ("--eval-images", opt(self.eval_images.map(|v| v.to_string()))),
        ]
        .into_iter()
        .chain(
            (self.space == SpaceKind::Width)
                .then(|| {
                    [("--macs-target", self.macs_target.to_string()), ("--macs-weight", self.macs_weight.to_string())]
                })
                .into_iter()
                .flatten(),
        )
        // The ResNet's channels are fixed: --c does not apply.
        .filter(|(f, _)| !(self.space == SpaceKind::Width && *f == "--c"))
        .collect()
    }

    /// Cosine annealing per epoch (PyTorch's `CosineAnnealingLR`, `T_max = epochs`).
    pub fn lr_at(&self, epoch: usize) -> f32 {
        let t = epoch as f64 / self.epochs.max(1) as f64;
        (self.lr_min as f64 + (self.lr - self.lr_min) as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
    }

    /// The flag whose rate moves a tensor of the checkpoint or the tape
    /// (`alpha_*` and α's optimizer state: `--arch-lr`; the rest: `--lr`).
    pub fn rate_flag_of(&self, tensor: &str) -> String {
        let arch = tensor.starts_with("alpha") || tensor.starts_with("opt.arch");
        // DARTS second order: α's gradient is taken at w' = w − ξ∇w, so a ξ
        // larger than the weights' own rate is the likelier cause.
        if let (Algo::Darts2, Some(xi)) = (self.algo, self.xi)
            && xi > self.lr
        {
            let other = if arch {
                format!("--arch-lr (now {})", show(self.arch_lr))
            } else {
                format!("--lr (now {})", show(self.lr))
            };
            return format!("--xi (now {}) or {other}", show(xi));
        }
        if arch { format!("--arch-lr (now {})", show(self.arch_lr)) } else { format!("--lr (now {})", show(self.lr)) }
    }
}

/// A flag value as a person would write it: `0.025`, `1e30`.
pub fn show(v: f32) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e6).contains(&a) { format!("{v:e}") } else { v.to_string() }
}

/// The settings of `now` that differ from those recorded in `then`
/// (`flag=value` pairs), one line each: `--lambda: 1 in the checkpoint, 2 now`.
pub fn differences(then: &[(String, String)], now: &[(&'static str, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (flag, v) in now {
        match then.iter().find(|(f, _)| f == flag) {
            Some((_, old)) if old == v => {}
            Some((_, old)) => out.push(format!("{flag}: {old} in the checkpoint, {v} now")),
            None => out.push(format!("{flag}: not in the checkpoint, {v} now")),
        }
    }
    for (flag, old) in then {
        if !now.iter().any(|(f, _)| f == flag) {
            out.push(format!("{flag}: {old} in the checkpoint, not a setting now"));
        }
    }
    out
}
