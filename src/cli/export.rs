//! `rarts export`: a DARTS network in quark0/darts' layout, for PyTorch.

use std::path::PathBuf;

use clap::ValueEnum;
use rarts::Result;

#[derive(clap::Args)]
pub(super) struct ExportArgs {
    /// A `rarts train` folder or its model.safetensors; a DARTS search
    /// folder or its checkpoint.bin; or a file in DARTS' layout, read into
    /// the network it describes and written again.
    #[arg(long)]
    model: PathBuf,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// A RARTS search: `w` (trained on the training half) or `y` (on the
    /// validation half). Default: w, a DARTS search's only network.
    #[arg(long, value_enum)]
    net: Option<NetArg>,
    /// For a file in DARTS' layout without a genotype in its metadata.
    #[arg(long)]
    genotype: Option<String>,
}

/// `rarts export --net`: a RARTS search's two networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum NetArg {
    W,
    Y,
}

pub(super) fn command(a: ExportArgs) -> Result<()> {
    let ExportArgs { model, out, net, genotype } = a;
    let file = rarts::model::model_path(&model);
    rarts::rundir::check_output("--out", &out, &[("--model", &model), ("--model's file", &file)], &[])?;
    let net = net.map(|n| match n {
        NetArg::W => rarts::export::Net::W,
        NetArg::Y => rarts::export::Net::Y,
    });
    let n = rarts::export::export(&model, &out, net, genotype.as_deref())?;
    println!("{}: {n} tensors", out.display());
    Ok(())
}
