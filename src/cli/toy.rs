//! `rarts toy`: the solvable model of the specification.

use std::path::PathBuf;

use rarts::Result;
use rarts::search::toy::{self, ToyConfig};

use super::Target;

#[derive(clap::Args)]
pub(super) struct ToyArgs {
    #[command(flatten)]
    cfg: ToyConfig,
    /// Also write the result as one JSON object into FILE (the settings,
    /// α, its closed form, the steps taken, whether it converged).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

pub(super) fn command(a: ToyArgs, target: Target) -> Result<()> {
    let ToyArgs { cfg, json } = a;
    // The CPU runs the model in f64 (fixed point to 1e-9); the GPU
    // kernels are f32, which stops at the fixed point to about 1e-6.
    let (alpha, steps) = with_backend!(target, f64, |make| toy::solve(make()?, &cfg)?);
    println!("algo={} steps={steps} closed_form={:.9}", cfg.algo.name(), toy::closed_form(&cfg));
    println!("alpha={alpha:.9}");
    if let Some(path) = json {
        let converged = steps < cfg.max_steps;
        let text = format!(
            "{{\"algo\":\"{}\",\"schedule\":\"{}\",\"c\":{},\"lambda\":{},\"beta\":{},\"xi\":{},\"lr\":{},\
             \"alpha\":{alpha:e},\"closed_form\":{:e},\"steps\":{steps},\"converged\":{converged}}}\n",
            cfg.algo.name(),
            clap::ValueEnum::to_possible_value(&cfg.schedule).map(|v| v.get_name().to_string()).unwrap_or_default(),
            cfg.c,
            cfg.lambda,
            cfg.beta,
            cfg.xi,
            cfg.lr,
            toy::closed_form(&cfg)
        );
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| rarts::Error(format!("--json {}: {e}", path.display())))?;
        }
        rarts::rundir::write_atomic(&path, text.as_bytes())?;
    }
    if steps == cfg.max_steps {
        eprintln!(
            "warning: no fixed point within --steps {steps} (the parameters still moved by more than {:e} a \
             step); alpha is where the run stopped, not a limit",
            cfg.tol
        );
    }
    Ok(())
}
