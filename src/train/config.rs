//! What `rarts train` is told, each setting declared once: its flag, its
//! help and its default are the field's (`#[derive(clap::Args)]`). The
//! settings whose defaults depend on `--space` are the [`Recipe`]: one per
//! space ([`Recipe::of`]), and [`RecipeOverrides`], the same settings as
//! flags, each an `Option` that replaces the space's value when given.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::data::DataSpec;
use crate::error::{Error, Result};
use crate::flags::{flag_defaults, momentum, need, rate, sizes};
use crate::genotype::Genotype;
use crate::rundir::RunOptions;
use crate::shape::Shape;
use crate::space::eval::EvalNetConfig;
use crate::space::nb201::{Nb201Cell, Nb201Config};
use crate::space::width::{WidthConfig, Widths};
use crate::space::{NetSpec, SpaceKind};

/// Declares the recipe's settings once: [`Recipe`] (the values) and
/// [`RecipeOverrides`] (the flags, whose help lists each space's value).
macro_rules! recipe {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty,)*) => {
        /// The settings whose defaults depend on the space.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Recipe {
            $($(#[doc = $doc])* pub $name: $ty,)*
        }

        /// The recipe's settings as flags: each one given replaces the
        /// space's value ([`Recipe::with`]).
        #[derive(clap::Args, Clone, Debug, Default, PartialEq)]
        pub struct RecipeOverrides {
            $(
                #[arg(long, help = recipe_help(concat!($($doc),*), |r| Shown::shown(&r.$name)))]
                pub $name: Option<$ty>,
            )*
        }

        impl Recipe {
            /// This recipe with the settings `o` gives replaced.
            pub fn with(self, o: &RecipeOverrides) -> Recipe {
                Recipe { $($name: o.$name.clone().unwrap_or(self.$name),)* }
            }
        }
    };
}

recipe! {
    /// Initial channels C
    c: usize,
    batch: usize,
    epochs: usize,
    /// Initial learning rate, cosine-annealed to 0
    lr: f32,
    /// Nesterov momentum
    nesterov: bool,
    weight_decay: f32,
    /// Gradient-norm clip, 0 for none
    clip: f32,
    /// darts: drop-path probability at the last epoch (grows as p·epoch/epochs; 0: off)
    drop_path: f32,
}

impl Recipe {
    /// The space's recipe: DARTS' CIFAR-10 recipe (SPEC §5: SGD with
    /// momentum, lr 0.025 cosine to 0, weight decay 3e-4, clip 5, drop path
    /// 0.2, C = 36, batch 96, 600 epochs); NATS-Bench's for NB201 (C = 16,
    /// SGD with Nesterov momentum, lr 0.1, weight decay 5e-4, batch 256,
    /// 200 epochs, no clipping, no drop path); He et al.'s CIFAR ResNet
    /// recipe with the cosine schedule for widths.
    pub fn of(space: SpaceKind) -> Recipe {
        let darts = Recipe {
            c: 36,
            batch: 96,
            epochs: 600,
            lr: 0.025,
            nesterov: false,
            weight_decay: 3e-4,
            clip: 5.0,
            drop_path: 0.2,
        };
        match space {
            SpaceKind::Darts => darts,
            SpaceKind::Nb201 => Recipe {
                c: 16,
                batch: 256,
                epochs: 200,
                lr: 0.1,
                nesterov: true,
                weight_decay: 5e-4,
                clip: 0.0,
                drop_path: 0.0,
            },
            SpaceKind::Width => {
                Recipe { batch: 128, epochs: 200, lr: 0.1, weight_decay: 1e-4, clip: 0.0, drop_path: 0.0, ..darts }
            }
        }
    }
}

/// A recipe value as the help shows it: `3e-4`, `0.025`, `96`, `true`.
trait Shown {
    fn shown(&self) -> String;
}

impl Shown for usize {
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl Shown for bool {
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl Shown for f32 {
    fn shown(&self) -> String {
        crate::flags::show(*self)
    }
}

/// A recipe flag's help: its doc line and each space's default.
fn recipe_help(doc: &str, value: impl Fn(&Recipe) -> String) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for &space in SpaceKind::value_variants() {
        let v = value(&Recipe::of(space));
        match groups.iter_mut().find(|(g, _)| *g == v) {
            Some((_, names)) => names.push(space.name()),
            None => groups.push((v, vec![space.name()])),
        }
    }
    let shown = match groups.as_slice() {
        [(v, _)] => v.clone(),
        _ => groups.iter().map(|(v, names)| format!("{v} ({})", names.join(", "))).collect::<Vec<_>>().join(", "),
    };
    let doc = doc.trim();
    if doc.is_empty() { format!("[default: {shown}]") } else { format!("{doc} [default: {shown}]") }
}

/// Everything `rarts train` is told. `Default` is DARTS' CIFAR-10 recipe
/// for DARTS_V2; [`TrainConfig::for_space`] each space's.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainConfig {
    #[arg(long, default_value_t = DataSpec::Embedded, help = crate::data::spec::help())]
    pub data: DataSpec,
    /// The space the architecture comes from; it picks the recipe that the
    /// flags below default to (darts: DARTS' CIFAR-10 recipe; nb201:
    /// NATS-Bench's; width: He et al.'s with a cosine schedule).
    #[arg(long, value_enum, default_value_t = SpaceKind::Darts)]
    pub space: SpaceKind,
    /// darts: a search's --out folder, its genotype.txt or genotype.json, an
    /// inline `Genotype(...)`, DARTS_V1, DARTS_V2, or random:SEED; nb201: an
    /// arch string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, a search's --out
    /// folder or its genotype file, or random:SEED; width (as --widths): a
    /// width search's --out folder or its genotype file, `full`,
    /// `uniform:FRACTION`, or `expected:DIR` (the widths nearest the
    /// expected ones, `widths_expected` of its genotype.json).
    #[arg(long, visible_alias = "widths")]
    pub genotype: String,
    /// width: the ResNet's depth, 6n + 2.
    #[arg(long, default_value_t = 20)]
    pub depth: usize,
    /// darts: cells.
    #[arg(long, default_value_t = 20)]
    pub layers: usize,
    /// nb201: cells per stage.
    #[arg(long, default_value_t = 5)]
    pub cells_per_stage: usize,
    /// The space's recipe where a flag replaces it ([`TrainConfig::recipe`]).
    #[command(flatten)]
    pub overrides: RecipeOverrides,
    /// Caps the steps of each epoch (short runs).
    #[arg(long)]
    pub steps_per_epoch: Option<usize>,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Side of the cutout square, 0 for none (DARTS uses 16 on CIFAR-10).
    #[arg(long, default_value_t = 0)]
    pub cutout: usize,
    /// darts: DARTS' auxiliary head after cell 2L/3 (needs 32×32 inputs), loss weight 0.4.
    #[arg(long)]
    pub auxiliary: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Test images evaluated after each epoch (default: all).
    #[arg(long)]
    pub eval_images: Option<usize>,
    /// Start from a trained model's weights (a `rarts train` folder or its
    /// model.safetensors) instead of random ones: the same network, or for
    /// width a wider one of the same depth, whose searchable convs keep the
    /// filters of largest L1 norm (Li et al. 2017's pruning; fine-tune it
    /// with a lower --lr); or for darts a file in DARTS' layout of the same
    /// genotype (from `rarts export`, or PyTorch's NetworkCIFAR state_dict).
    #[arg(long, visible_alias = "init")]
    pub init_from: Option<PathBuf>,
    /// The output folder and how the run treats it (the command line's
    /// run flags; the folder's default [`TrainConfig::default_out`]).
    #[arg(skip = RunOptions::new("runs/train"))]
    pub run: RunOptions,
}

impl Default for TrainConfig {
    fn default() -> Self {
        flag_defaults(&["--genotype", "DARTS_V2"])
    }
}

impl TrainConfig {
    /// The defaults for `space` (its recipe, its output folder), the
    /// genotype left empty.
    pub fn for_space(space: SpaceKind) -> TrainConfig {
        TrainConfig {
            space,
            genotype: String::new(),
            run: RunOptions::new(TrainConfig::default_out(space)),
            ..TrainConfig::default()
        }
    }

    /// `--out` when it is not given.
    pub fn default_out(space: SpaceKind) -> PathBuf {
        PathBuf::from(match space {
            SpaceKind::Darts => "runs/train",
            SpaceKind::Nb201 => "runs/train-nb201",
            SpaceKind::Width => "runs/train-width",
        })
    }

    /// The space's recipe with the flags given in its place.
    pub fn recipe(&self) -> Recipe {
        Recipe::of(self.space).with(&self.overrides)
    }

    /// Every setting inside its domain; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        let r = self.recipe();
        // --layers is DARTS' only; NB201 counts cells per stage.
        let layers = if self.space == SpaceKind::Darts { self.layers } else { crate::space::darts::MIN_LAYERS };
        sizes(r.c, layers, r.batch, r.epochs, self.steps_per_epoch)?;
        need(self.cells_per_stage >= 1, "--cells-per-stage", self.cells_per_stage, "at least 1")?;
        if self.space != SpaceKind::Darts {
            let nets = if self.space == SpaceKind::Nb201 { "NB201 networks" } else { "ResNets" };
            need(r.drop_path == 0.0, "--drop-path", r.drop_path, &format!("0 ({nets} have no drop path)"))?;
            need(!self.auxiliary, "--auxiliary", self.auxiliary, &format!("off ({nets} have no auxiliary head)"))?;
        }
        rate("--lr", r.lr, true)?;
        rate("--clip", r.clip, false)?;
        rate("--weight-decay", r.weight_decay, false)?;
        momentum(self.momentum)?;
        need(
            r.drop_path.is_finite() && (0.0..1.0).contains(&r.drop_path),
            "--drop-path",
            r.drop_path,
            "a probability in [0, 1)",
        )
    }

    /// The settings a resume must match. DARTS' list is the first
    /// format's, so that its checkpoints still resume; NB201 adds its own.
    pub fn identity(&self) -> Vec<(&'static str, String)> {
        let r = self.recipe();
        let opt = |v: Option<usize>| v.map_or_else(|| "default".into(), |v| v.to_string());
        let mut v = vec![
            ("--data", self.data.to_string()),
            ("--genotype", self.genotype.clone()),
            ("--c", r.c.to_string()),
            ("--layers", self.layers.to_string()),
            ("--batch", r.batch.to_string()),
            ("--epochs", r.epochs.to_string()),
            ("--lr", r.lr.to_string()),
            ("--momentum", self.momentum.to_string()),
            ("--weight-decay", r.weight_decay.to_string()),
            ("--clip", r.clip.to_string()),
            ("--cutout", self.cutout.to_string()),
            ("--drop-path", r.drop_path.to_string()),
            ("--auxiliary", self.auxiliary.to_string()),
            ("--seed", self.seed.to_string()),
            ("--steps-per-epoch", opt(self.steps_per_epoch)),
            ("--eval-images", opt(self.eval_images)),
        ];
        if self.space != SpaceKind::Darts {
            // DARTS' network shape and extras do not apply.
            v.retain(|(f, _)| !matches!(*f, "--layers" | "--drop-path" | "--auxiliary"));
            v.push(("--space", self.space.name().into()));
            match self.space {
                SpaceKind::Width => {
                    v.retain(|(f, _)| *f != "--c");
                    v.push(("--depth", self.depth.to_string()))
                }
                _ => v.push(("--cells-per-stage", self.cells_per_stage.to_string())),
            }
        }
        if r.nesterov {
            v.push(("--nesterov", "true".into()));
        }
        if let Some(m) = &self.init_from {
            v.push(("--init-from", m.display().to_string()));
        }
        v
    }

    /// The network to train on `image`-shaped inputs, from the
    /// architecture source and the sizes.
    pub fn net(&self, classes: usize, image: Shape) -> Result<NetSpec> {
        let in_channels = image.c();
        let r = self.recipe();
        Ok(match self.space {
            SpaceKind::Darts => {
                let genotype = Genotype::from_source(&self.genotype).map_err(|e| Error(format!("--genotype: {e}")))?;
                NetSpec::Darts(EvalNetConfig {
                    drop_path: r.drop_path > 0.0,
                    auxiliary: self.auxiliary,
                    ..EvalNetConfig::new(r.c, self.layers, classes, in_channels, genotype)
                })
            }
            SpaceKind::Nb201 => {
                let cell = Nb201Cell::from_source(&self.genotype).map_err(|e| Error(format!("--genotype: {e}")))?;
                NetSpec::Nb201(Nb201Config::new(r.c, self.cells_per_stage, classes, in_channels), cell)
            }
            SpaceKind::Width => {
                let cfg = WidthConfig::new(self.depth, classes, in_channels, (image.h(), image.w()));
                cfg.check()?;
                let w = Widths::from_source(&cfg, &self.genotype).map_err(|e| Error(format!("--widths: {e}")))?;
                NetSpec::Width(cfg, w)
            }
        })
    }
}

impl Recipe {
    /// Cosine annealing to 0 per epoch, as `train.py`.
    pub fn lr_at(&self, epoch: usize) -> f32 {
        let t = epoch as f64 / self.epochs as f64;
        (self.lr as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_darts_recipe_and_flags_override_one_setting() {
        let d = TrainConfig::default();
        assert_eq!(d.recipe(), Recipe::of(SpaceKind::Darts));
        assert_eq!((d.genotype.as_str(), d.layers, d.momentum, d.seed), ("DARTS_V2", 20, 0.9, 0));
        let nb: TrainConfig = flag_defaults(&["--genotype", "g", "--space", "nb201", "--lr", "0.05"]);
        assert_eq!(nb.recipe(), Recipe { lr: 0.05, ..Recipe::of(SpaceKind::Nb201) });
    }

    #[test]
    fn recipe_help_names_each_spaces_default() {
        assert_eq!(
            recipe_help(" Initial channels C", |r| r.c.shown()),
            "Initial channels C [default: 36 (darts, width), 16 (nb201)]"
        );
        assert_eq!(recipe_help("", |r| r.weight_decay.shown()), "[default: 3e-4 (darts), 5e-4 (nb201), 1e-4 (width)]");
        assert_eq!(recipe_help("", |_| "7".into()), "[default: 7]");
    }
}
