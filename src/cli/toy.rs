//! `rarts toy`: the solvable model of the specification.

use rarts::Result;
use rarts::search::toy::{self, ToyConfig};

use super::{AlgoArg, ScheduleArg, Target};

#[derive(clap::Args)]
pub(super) struct ToyArgs {
    #[arg(long, value_enum, default_value_t = AlgoArg::Rarts)]
    algo: AlgoArg,
    /// Weight c of the α² term of the validation loss.
    #[arg(long, default_value_t = 1.0)]
    c: f64,
    #[arg(long, default_value_t = 1.0)]
    lambda: f32,
    #[arg(long, default_value_t = 1.0)]
    beta: f32,
    /// DARTS second order unrolling step ξ.
    #[arg(long, default_value_t = 0.5)]
    xi: f32,
    /// RARTS: `fused` or `exact` (both reach the same fixed point).
    #[arg(long, value_enum, default_value_t = ScheduleArg::Fused)]
    schedule: ScheduleArg,
    /// Step size of every block.
    #[arg(long, default_value_t = 0.05)]
    lr: f32,
    #[arg(long, default_value_t = 20_000)]
    steps: usize,
}

pub(super) fn command(a: ToyArgs, target: Target) -> Result<()> {
    let cfg = ToyConfig {
        algo: a.algo.into(),
        schedule: a.schedule.into(),
        c: a.c,
        lambda: a.lambda,
        beta: a.beta,
        xi: a.xi,
        lr: a.lr,
        max_steps: a.steps,
        tol: 1e-12,
    };
    // The CPU runs the model in f64 (fixed point to 1e-9); the GPU
    // kernels are f32, which stops at the fixed point to about 1e-6.
    let (alpha, steps) = with_backend!(target, f64, |make| toy::solve(make()?, &cfg)?);
    println!("algo={} steps={steps} closed_form={:.9}", cfg.algo.name(), toy::closed_form(&cfg));
    println!("alpha={alpha:.9}");
    if steps == cfg.max_steps {
        eprintln!(
            "warning: no fixed point within --steps {steps} (the parameters still moved by more than {:e} a \
             step); alpha is where the run stopped, not a limit",
            cfg.tol
        );
    }
    Ok(())
}
