//! `rarts train`: a genotype's network trained from scratch.

use rarts::Result;
use rarts::train::{self, TrainConfig};

use super::Target;
use super::search::RunArgs;

/// `rarts train`'s flags: the training's own (declared on [`TrainConfig`])
/// and the output folder's.
#[derive(clap::Args)]
pub(super) struct TrainArgs {
    #[command(flatten)]
    train: TrainConfig,
    #[command(flatten)]
    run: RunArgs,
}

pub(super) fn command(a: TrainArgs, target: Target) -> Result<()> {
    let TrainArgs { train, run } = a;
    let cfg = TrainConfig { run: run.options(TrainConfig::default_out(train.space)), ..train };
    let res = with_backend!(target, f32, |make| train::train(make()?, &cfg)?);
    if let Some(last) = res.epochs.last().and_then(|e| e.test.as_ref()) {
        println!("test accuracy: {:.4} ({} images)", last.accuracy(), last.seen());
    }
    Ok(())
}
