//! `rarts bench`: whole search steps timed per algorithm and batch size.

use rarts::Result;
use rarts::flags::need;
use rarts::search::algo::Algo;
use rarts::search::bench;
use rarts::search::config::{SearchConfig, StepConfig};

use super::Target;

#[derive(clap::Args)]
pub(super) struct BenchArgs {
    #[command(flatten)]
    pub(super) step: StepConfig,
    /// Algorithms to time (comma-separated); `--algo A` alone times A only.
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "algo",
          default_values_t = [Algo::Darts1, Algo::Darts2, Algo::Rarts])]
    pub(super) algos: Vec<Algo>,
    /// Batch sizes to time (comma-separated); `--batch B` alone times B only.
    #[arg(long, value_delimiter = ',', conflicts_with = "batch",
          default_values_t = [StepConfig::default().batch])]
    pub(super) batches: Vec<usize>,
    /// Timed steps per configuration.
    #[arg(long, default_value_t = 5)]
    pub(super) steps: usize,
}

pub(super) fn command(a: BenchArgs, target: Target) -> Result<()> {
    let BenchArgs { step, algos, batches, steps } = a;
    let list = batches.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
    need(!batches.is_empty() && batches.iter().all(|&b| b >= 1), "--batches", list, "batch sizes of at least 1")?;
    let device = target.name()?;
    let mut rows = Vec::new();
    for &batch in &batches {
        for &algo in &algos {
            let cfg = SearchConfig { step: StepConfig { algo, batch, ..step.clone() }, ..SearchConfig::default() };
            let t = with_backend!(&target, f32, |make| bench::bench(make()?, &cfg, steps)?);
            let name = algo.name();
            println!(
                "{{\"algo\":\"{name}\",\"batch\":{batch},\"ms_per_step\":{:.2},\"min_ms\":{:.2},\"img_per_s\":{:.1},\"weights\":{},\"device\":\"{device}\"}}",
                t.median_s * 1e3,
                t.min_s * 1e3,
                t.images as f64 / t.median_s,
                t.weights
            );
            rows.push((name, batch, t));
        }
    }
    println!("device: {device}");
    println!("{:<8} {:>6} {:>12} {:>10}", "algo", "batch", "ms/step", "images/s");
    for (name, batch, t) in rows {
        println!("{name:<8} {batch:>6} {:>12.2} {:>10.1}", t.median_s * 1e3, t.images as f64 / t.median_s);
    }
    Ok(())
}
