//! `rarts profile`: time and launches per op family over a few search steps.

use rarts::Result;
use rarts::search::bench;
use rarts::search::config::{SearchConfig, StepConfig};

use super::Target;

#[derive(clap::Args)]
pub(super) struct ProfileArgs {
    #[command(flatten)]
    step: StepConfig,
    /// Steps to time.
    #[arg(long, default_value_t = 3)]
    steps: usize,
}

pub(super) fn command(a: ProfileArgs, target: Target) -> Result<()> {
    let ProfileArgs { step, steps } = a;
    let cfg = SearchConfig { step, ..SearchConfig::default() };
    let cuda = matches!(target, Target::Cuda);
    let prof = with_backend!(target, f32, |make| bench::profile(make()?, &cfg, steps)?);
    print!("{}", bench::profile_table(&prof.ops, steps, prof.step_s));
    print!("{}", bench::counts_line(&prof, steps, cuda));
    Ok(())
}
