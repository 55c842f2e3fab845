//! `rarts toy`: the solvable model of the specification.

use rarts::Result;
use rarts::search::toy::{self, ToyConfig};

use super::Target;

pub(super) fn command(cfg: ToyConfig, target: Target) -> Result<()> {
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
