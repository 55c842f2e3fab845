//! `rarts train`: a genotype's network trained from scratch.

use std::path::PathBuf;

use rarts::Result;
use rarts::data::DataSpec;
use rarts::train::{self, TrainConfig};

use super::search::RunArgs;
use super::{SpaceArg, Target, data_help};

#[derive(clap::Args)]
pub(super) struct TrainArgs {
    #[arg(long, default_value_t = TrainConfig::default().data, help = data_help())]
    data: DataSpec,
    /// The space the architecture comes from; it picks the recipe that the
    /// flags below default to (darts: DARTS' CIFAR-10 recipe; nb201:
    /// NATS-Bench's; width: He et al.'s with a cosine schedule).
    #[arg(long, value_enum, default_value_t = SpaceArg::Darts)]
    space: SpaceArg,
    /// darts: a search's --out folder, its genotype.txt or genotype.json, an
    /// inline `Genotype(...)`, DARTS_V1, DARTS_V2, or random:SEED; nb201: an
    /// arch string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, a search's --out
    /// folder or its genotype file, or random:SEED; width (as --widths): a
    /// width search's --out folder or its genotype file, `full`,
    /// `uniform:FRACTION`, or `expected:DIR` (the widths nearest the
    /// expected ones, `widths_expected` of its genotype.json).
    #[arg(long, visible_alias = "widths")]
    genotype: String,
    /// width: the ResNet's depth, 6n + 2 [default: 20].
    #[arg(long)]
    depth: Option<usize>,
    /// Initial channels C [default: 36 (darts), 16 (nb201)].
    #[arg(long)]
    c: Option<usize>,
    /// darts: cells [default: 20].
    #[arg(long)]
    layers: Option<usize>,
    /// nb201: cells per stage [default: 5].
    #[arg(long)]
    cells_per_stage: Option<usize>,
    /// [default: 96 (darts), 256 (nb201)]
    #[arg(long)]
    batch: Option<usize>,
    /// [default: 600 (darts), 200 (nb201)]
    #[arg(long)]
    epochs: Option<usize>,
    /// Caps the steps of each epoch (short runs).
    #[arg(long)]
    steps_per_epoch: Option<usize>,
    /// Initial learning rate, cosine-annealed to 0 [default: 0.025 (darts), 0.1 (nb201)].
    #[arg(long)]
    lr: Option<f32>,
    /// [default: 0.9]
    #[arg(long)]
    momentum: Option<f32>,
    /// Nesterov momentum [default: false (darts), true (nb201)].
    #[arg(long)]
    nesterov: Option<bool>,
    /// [default: 3e-4 (darts), 5e-4 (nb201)]
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Gradient-norm clip, 0 for none [default: 5 (darts), 0 (nb201)].
    #[arg(long)]
    clip: Option<f32>,
    /// Side of the cutout square, 0 for none (DARTS uses 16 on CIFAR-10) [default: 0].
    #[arg(long)]
    cutout: Option<usize>,
    /// darts: drop-path probability at the last epoch (grows as p·epoch/epochs; 0: off) [default: 0.2].
    #[arg(long)]
    drop_path: Option<f32>,
    /// darts: DARTS' auxiliary head after cell 2L/3 (needs 32×32 inputs), loss weight 0.4.
    #[arg(long)]
    auxiliary: bool,
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Test images evaluated after each epoch (default: all).
    #[arg(long)]
    eval_images: Option<usize>,
    /// Start from a trained model's weights (a `rarts train` folder or its
    /// model.safetensors) instead of random ones: the same network, or for
    /// width a wider one of the same depth, whose searchable convs keep the
    /// filters of largest L1 norm (Li et al. 2017's pruning; fine-tune it
    /// with a lower --lr); or for darts a file in DARTS' layout of the same
    /// genotype (from `rarts export`, or PyTorch's NetworkCIFAR state_dict).
    #[arg(long, visible_alias = "init")]
    init_from: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

pub(super) fn command(a: TrainArgs, target: Target) -> Result<()> {
    let r = TrainConfig::recipe(a.space.into());
    let cfg = TrainConfig {
        data: a.data,
        genotype: a.genotype,
        c: a.c.unwrap_or(r.c),
        layers: a.layers.unwrap_or(r.layers),
        cells_per_stage: a.cells_per_stage.unwrap_or(r.cells_per_stage),
        depth: a.depth.unwrap_or(r.depth),
        batch: a.batch.unwrap_or(r.batch),
        epochs: a.epochs.unwrap_or(r.epochs),
        lr: a.lr.unwrap_or(r.lr),
        momentum: a.momentum.unwrap_or(r.momentum),
        nesterov: a.nesterov.unwrap_or(r.nesterov),
        weight_decay: a.weight_decay.unwrap_or(r.weight_decay),
        clip: a.clip.unwrap_or(r.clip),
        cutout: a.cutout.unwrap_or(r.cutout),
        drop_path: a.drop_path.unwrap_or(r.drop_path),
        auxiliary: a.auxiliary,
        seed: a.seed,
        steps_per_epoch: a.steps_per_epoch,
        eval_images: a.eval_images,
        init_from: a.init_from,
        out: a.run.out(r.out.clone()),
        existing: a.run.existing(),
        progress: !a.run.quiet,
        report: !a.run.no_report,
        ..r
    };
    let res = with_backend!(target, f32, |make| train::train(make()?, &cfg)?);
    if let Some(last) = res.epochs.last().and_then(|e| e.test.as_ref()) {
        println!("test accuracy: {:.4} ({} images)", last.accuracy(), last.seen());
    }
    Ok(())
}
