//! `rarts bench-train`: DARTS' retraining step timed per batch size.

use rarts::Result;
use rarts::flags::need;
use rarts::genotype::Genotype;
use rarts::search::bench;
use rarts::shape::Shape;
use rarts::space::eval::EvalNetConfig;
use rarts::train;

use super::Target;

#[derive(clap::Args)]
pub(super) struct BenchTrainArgs {
    /// DARTS_V1, DARTS_V2, random:SEED, a search folder, …
    #[arg(long, default_value = "DARTS_V2")]
    genotype: String,
    #[arg(long, default_value_t = 16)]
    c: usize,
    #[arg(long, default_value_t = 8)]
    layers: usize,
    /// Image side.
    #[arg(long, default_value_t = 32)]
    hw: usize,
    /// Image channels.
    #[arg(long, default_value_t = 3)]
    in_ch: usize,
    #[arg(long, default_value_t = 10)]
    classes: usize,
    #[arg(long, value_delimiter = ',', default_values_t = [32, 96])]
    batches: Vec<usize>,
    /// Timed steps per batch size (after 3 warm-up steps).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// DARTS' auxiliary head (needs --hw 32).
    #[arg(long)]
    auxiliary: bool,
    /// Also print the time per op family.
    #[arg(long)]
    profile: bool,
}

pub(super) fn command(a: BenchTrainArgs, target: Target) -> Result<()> {
    let BenchTrainArgs { genotype, c, layers, hw, in_ch, classes, batches, steps, auxiliary, profile } = a;
    need(batches.iter().all(|&b| b >= 1), "--batches", format!("{batches:?}"), "batch sizes of at least 1")?;
    let genotype = Genotype::from_source(&genotype).map_err(|e| rarts::Error(format!("--genotype: {e}")))?;
    let net = EvalNetConfig { drop_path: true, auxiliary, ..EvalNetConfig::new(c, layers, classes, in_ch, genotype) };
    let device = target.name()?;
    let image = Shape::nchw(1, in_ch, hw, hw);
    let mut rows = Vec::new();
    for &batch in &batches {
        let t = with_backend!(&target, f32, |make| train::bench(make()?, &net, batch, image, steps, profile)?);
        println!(
            "{{\"batch\":{batch},\"ms_per_step\":{:.2},\"img_per_s\":{:.1},\"weights\":{},\"device\":\"{device}\"}}",
            t.median_s * 1e3,
            batch as f64 / t.median_s,
            t.weights
        );
        if let Some(p) = &t.profile {
            print!("{}", bench::profile_table(p, steps, t.median_s));
        }
        rows.push((batch, t.median_s));
    }
    println!("device: {device}");
    println!("{:>6} {:>12} {:>10}", "batch", "ms/step", "images/s");
    for (batch, s) in rows {
        println!("{batch:>6} {:>12.2} {:>10.1}", s * 1e3, batch as f64 / s);
    }
    Ok(())
}
