//! `rarts eval`: top-1 and per-class accuracy of a trained model.

use std::path::PathBuf;

use rarts::Result;
use rarts::data::DataSpec;

use super::Target;

#[derive(clap::Args)]
pub(super) struct EvalArgs {
    /// A `rarts train` folder or its model.safetensors, or a file in
    /// DARTS' layout (from `rarts export`, or from PyTorch: NetworkCIFAR's
    /// or the search Network's state_dict names, the latter with
    /// alphas_normal and alphas_reduce; its sizes are read from the
    /// tensors' shapes).
    #[arg(long)]
    model: PathBuf,
    /// For a file in DARTS' layout without a genotype in its metadata
    /// (any form `rarts train --genotype` takes).
    #[arg(long)]
    genotype: Option<String>,
    /// Also write each image's logits to this file, a JSON array per line.
    #[arg(long)]
    logits: Option<PathBuf>,
    #[arg(long, default_value = "embedded", help = rarts::data::spec::help())]
    data: DataSpec,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// A search network's file only: write the training-mode loss of
    /// the first --batch images (`loss`) and its gradient with respect
    /// to α and every weight, under DARTS' names, to this safetensors file.
    #[arg(long)]
    grads: Option<PathBuf>,
}

pub(super) fn command(a: EvalArgs, target: Target) -> Result<()> {
    let EvalArgs { model, genotype, logits, data, batch, grads } = a;
    for (flag, out) in [("--logits", &logits), ("--grads", &grads)] {
        if let Some(out) = out {
            let file = rarts::model::model_path(&model);
            let inputs = [("the model", model.as_path()), ("--model's file", file.as_path())];
            let data: Vec<(&str, &std::path::Path)> = data.path().map(|p| ("the --data", p)).into_iter().collect();
            rarts::rundir::check_output(flag, out, &inputs, &data)?;
        }
    }
    let (g, gr) = (genotype.as_deref(), grads.as_deref());
    let e = with_backend!(target, f32, |make| rarts::eval::evaluate(make()?, &model, g, &data, batch, gr)?);
    let (split, classes, scores) = (e.split, e.classes, e.scores);
    println!("model: {} ({}, {} epochs)", model.display(), e.size, e.epochs.as_deref().unwrap_or("?"));
    println!("genotype: {}", rarts::error::printable(&e.arch));
    println!("data: {data} ({split} split, {} images)", scores.seen());
    println!("{:<14} {:>8} {:>8} {:>9}", "class", "correct", "images", "accuracy");
    for (name, (hit, n)) in classes.iter().zip(&scores.per_class) {
        let name = rarts::error::printable(name);
        println!("{name:<14} {hit:>8} {n:>8} {:>9.4}", *hit as f64 / (*n).max(1) as f64);
    }
    println!("loss: {:.4}", scores.loss);
    println!("top-1: {:.4}", scores.accuracy());
    if let Some(path) = logits {
        let text: String = scores
            .logits
            .iter()
            .map(|r| format!("[{}]\n", r.iter().map(|v| format!("{v:e}")).collect::<Vec<_>>().join(",")))
            .collect();
        rarts::rundir::write_atomic(&path, text.as_bytes())
            .map_err(|e| rarts::Error(format!("--logits {}: {}", path.display(), e.0)))?;
    }
    Ok(())
}
