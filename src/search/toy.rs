//! The solvable model of SPEC §2.1, recorded on the same tape and run by the
//! same algorithms as the supernet: scalars `w, y, α`,
//! `L_train(w, α) = ½(w − α)²`, `L_val(u, α) = ½(u − 1)² + ½cα²`.

use crate::backend::{Backend, SgdStep};
use crate::error::Result;
use crate::exec::Exec;
use crate::ops::record::*;
use crate::search::algo::{Algo, ArchOpt, Feed, Hyper, Problem, Schedule, Search, Split};
use crate::shape::Shape;
use crate::space::{GROUP_ARCH, GROUP_W, GROUP_Y};
use crate::tape::{Init, NodeId, Tape};

/// What `rarts toy` is told; each field is its flag.
#[derive(Clone, Copy, Debug, PartialEq, clap::Args)]
pub struct ToyConfig {
    #[arg(long, value_enum, default_value_t = Algo::Rarts)]
    pub algo: Algo,
    /// RARTS: `fused` or `exact` (both reach the same fixed point).
    #[arg(long, value_enum, default_value_t = Schedule::Fused)]
    pub schedule: Schedule,
    /// Weight c of the α² term of the validation loss.
    #[arg(long, default_value_t = 1.0)]
    pub c: f64,
    #[arg(long, default_value_t = 1.0)]
    pub lambda: f32,
    #[arg(long, default_value_t = 1.0)]
    pub beta: f32,
    /// DARTS second order unrolling step ξ.
    #[arg(long, default_value_t = 0.5)]
    pub xi: f32,
    /// Step size of every block.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f32,
    #[arg(long = "steps", value_name = "STEPS", default_value_t = 20_000)]
    pub max_steps: usize,
    /// Stop once no parameter moves more than this in a step (not a flag).
    #[arg(skip = 1e-12)]
    pub tol: f64,
}

impl Default for ToyConfig {
    fn default() -> Self {
        crate::flags::flag_defaults(&[])
    }
}

impl ToyConfig {
    /// Every setting inside its domain; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        use crate::flags::need;
        let pos = |flag: &str, v: f64| need(v.is_finite() && v > 0.0, flag, v, "a finite positive number");
        pos("--c", self.c)?;
        pos("--lr", self.lr as f64)?;
        // The closed form divides by λ and β.
        pos("--lambda", self.lambda as f64)?;
        pos("--beta", self.beta as f64)?;
        need(self.xi.is_finite() && self.xi >= 0.0, "--xi", self.xi, "a finite non-negative number")?;
        need(self.max_steps >= 1, "--steps", self.max_steps, "at least 1")
    }
}

/// The fixed points SPEC §2.1 derives in closed form.
pub fn closed_form(cfg: &ToyConfig) -> f64 {
    let (c, l, b, xi) = (cfg.c, cfg.lambda as f64, cfg.beta as f64, cfg.xi as f64);
    match cfg.algo {
        Algo::Darts1 => 0.0,
        Algo::Darts2 => xi / (xi + c),
        Algo::Rarts => 1.0 / (1.0 + c + c / l + c / b),
    }
}

/// The model needs no data.
struct NoData;

impl<B: Backend> Feed<B> for NoData {
    fn draw(&mut self, _: &mut Exec<B>) -> Result<()> {
        Ok(())
    }
    fn put(&mut self, _: &mut Exec<B>, _: Split) -> Result<()> {
        Ok(())
    }
}

/// Records the model; returns the tape, the problem and the α node.
fn record(cfg: &ToyConfig) -> (Tape, Problem, [NodeId; 2]) {
    let mut t = Tape::new();
    let s = Shape::scalar();
    let w = t.param(s, GROUP_W, Init::Const(0.0), "w");
    let alpha = t.param(s, GROUP_ARCH, Init::Const(0.5), "alpha");
    let one = t.input(s, "one");
    let c = t.input(s, "c");
    let l_train = |t: &mut Tape, u: NodeId| {
        let d = t.sub(u, alpha);
        let sq = t.mul(d, d);
        t.scale(sq, 0.5)
    };
    let l_val = |t: &mut Tape, u: NodeId| {
        let d = t.sub(u, one);
        let sq = t.mul(d, d);
        let a2 = t.mul(alpha, alpha);
        let ca2 = t.mul(a2, c);
        t.combine(&[(sq, 0.5), (ca2, 0.5)])
    };
    let loss_train = l_train(&mut t, w);
    let (loss_val, total, y) = if cfg.algo == Algo::Rarts {
        let y = t.param(s, GROUP_Y, Init::Const(0.0), "y");
        let lv = l_val(&mut t, y);
        let total = t.combine(&[(loss_train, cfg.lambda), (lv, 1.0)]);
        (lv, Some(total), vec![y])
    } else {
        (l_val(&mut t, w), None, vec![])
    };
    let prob = Problem {
        loss_train,
        loss_val,
        total,
        w: vec![w],
        y,
        side_by_side: false,
        alpha: vec![alpha],
        group_w: GROUP_W,
        group_y: GROUP_Y,
        group_arch: GROUP_ARCH,
        acc_train: None,
        acc_val: None,
    };
    (t, prob, [one, c])
}

/// Runs the model to its fixed point; returns the final α and the number of steps.
/// A parameter of the solvable model beyond this size has diverged: its
/// fixed points are of order 1 for any λ, β, c a user would try.
const DIVERGED: f64 = 1e12;

pub fn solve<B: Backend>(be: B, cfg: &ToyConfig) -> Result<(f64, usize)> {
    cfg.validate()?;
    let (tape, prob, [one, c]) = record(cfg);
    let alpha = prob.alpha[0];
    let mut ex = Exec::new(be, tape)?;
    let mut rng = rand::rng();
    ex.init_params(&mut rng)?;
    ex.set(one, &[1.0])?;
    ex.set(c, &[cfg.c])?;
    let hp = Hyper {
        algo: cfg.algo,
        schedule: cfg.schedule,
        sgd: SgdStep { lr: cfg.lr, momentum: 0.0, weight_decay: 0.0 },
        clip: None,
        arch: ArchOpt::Plain { lr: cfg.lr },
        lambda: cfg.lambda,
        beta: cfg.beta,
        xi: Some(cfg.xi),
    };
    let params: Vec<NodeId> = prob.w.iter().chain(&prob.y).chain(&prob.alpha).copied().collect();
    let mut search = Search::new(ex, prob, hp)?;
    let read = |s: &Search<B>| -> Result<Vec<f64>> { params.iter().map(|&p| s.ex.scalar(p)).collect() };
    let mut before = read(&search)?;
    for step in 1..=cfg.max_steps {
        search.step(&mut NoData)?;
        let now = read(&search)?;
        if let Some(v) = now.iter().find(|v| !v.is_finite() || v.abs() > DIVERGED) {
            // The unrolled step ξ multiplies the weights' curvature in DARTS'
            // second order: the larger of the two rates is the likelier cause.
            let blame = match cfg.algo {
                Algo::Darts2 if cfg.xi > cfg.lr => format!("--xi (now {:e}) or --lr (now {:e})", cfg.xi, cfg.lr),
                Algo::Darts2 => format!("--lr (now {:e}) or --xi (now {:e})", cfg.lr, cfg.xi),
                _ => format!("--lr (now {:e})", cfg.lr),
            };
            crate::bail!("the model diverged at step {step} (a parameter reached {v:e}); lower {blame}");
        }
        let moved = now.iter().zip(&before).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        if moved < cfg.tol {
            return Ok((search.ex.scalar(alpha)?, step));
        }
        before = now;
    }
    Ok((search.ex.scalar(alpha)?, cfg.max_steps))
}
