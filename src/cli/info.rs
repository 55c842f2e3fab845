//! `rarts info`: the device and a data set.

use rarts::Result;
use rarts::data::{DataSpec, describe};

use super::Target;

#[derive(clap::Args)]
pub(super) struct InfoArgs {
    #[arg(long, default_value = "embedded", help = rarts::data::spec::help())]
    data: DataSpec,
}

pub(super) fn command(a: InfoArgs, target: Target) -> Result<()> {
    let InfoArgs { data } = a;
    println!("device: {}", target.name()?);
    let split = data.load()?;
    println!("train: {}", describe(&split.train));
    if let Some(t) = split.test {
        println!("test: {}", describe(&t));
    }
    if let DataSpec::Folder(_) = data {
        println!(
            "order: each split shuffled by a fixed permutation (seed {:#x}; the files are read sorted by class)",
            rarts::data::folder::SHUFFLE_SEED
        );
        if let Some(dir) = rarts::data::folder::cache_dir() {
            println!("decoded images cached in {} (RARTS_CACHE_DIR=none: no cache)", dir.display());
        }
    }
    Ok(())
}
