//! Timing search steps: `rarts bench` (whole steps) and `rarts profile`
//! (op family by op family), and the profile table that `rarts
//! bench-train --profile` prints too.

use std::fmt::Write as _;
use std::time::Instant;

use crate::backend::Backend;
use crate::backend::counts::{self, Counts};
use crate::error::Result;
use crate::exec::Profile;
use crate::flags::need;
use crate::search::config::SearchConfig;
use crate::search::prepare::{Prepared, prepare};

/// One warm-up step, then the wall time in seconds of each of `steps`
/// steps, the device synchronised before every clock read.
fn timed_steps<B: Backend<Elem = f32>>(p: &mut Prepared<B>, steps: usize) -> Result<Vec<f64>> {
    p.step()?;
    p.search.ex.be.synchronize()?;
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = Instant::now();
        p.step()?;
        p.search.ex.be.synchronize()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(times)
}

/// A whole-step timing of one configuration.
#[derive(Clone, Debug)]
pub struct SearchStepTiming {
    /// Median wall time of a step, seconds.
    pub median_s: f64,
    pub min_s: f64,
    /// Network weights (of one network).
    pub weights: usize,
    /// Images a step consumes (training and validation batches).
    pub images: usize,
}

/// Times `steps` whole search steps after one warm-up step.
pub fn bench<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig, steps: usize) -> Result<SearchStepTiming> {
    need(steps >= 1, "--steps", steps, "at least 1")?;
    let mut p = prepare(be, cfg)?;
    let mut times = timed_steps(&mut p, steps)?;
    times.sort_by(f64::total_cmp);
    Ok(SearchStepTiming {
        median_s: times[times.len() / 2],
        min_s: times[0],
        weights: p.weights,
        images: 2 * cfg.step.batch,
    })
}

/// Times `steps` search steps op family by op family (after one warm-up
/// step); returns the profile and the plain step time measured before it.
pub fn profile<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig, steps: usize) -> Result<StepProfile> {
    need(steps >= 1, "--steps", steps, "at least 1")?;
    if cfg.step.cuda_graph {
        crate::bail!(
            "--cuda-graph: rarts profile times op by op, which a graph replay hides; time whole steps with rarts bench --cuda-graph"
        );
    }
    let mut p = prepare(be, cfg)?;
    let times = timed_steps(&mut p, steps)?;
    let step_s = times.iter().sum::<f64>() / steps as f64;
    p.search.ex.profile = Some(Profile::default());
    let (c0, l0) = (counts::now(), counts::cuda_launches());
    for _ in 0..steps {
        p.step()?;
    }
    let (c, l) = (counts::now() - c0, counts::cuda_launches() - l0);
    let mut ops = p.search.ex.profile.take().unwrap_or_default();
    // What no op launched: the optimizers, the coupling, DARTS' unrolling,
    // the inputs and the losses' readout.
    let in_ops: u64 = ops.rows.values().map(|r| r.launches).sum();
    if c.launches > in_ops {
        let e = ops.rows.entry(("optimizers, other", "step")).or_default();
        e.launches = c.launches - in_ops;
        e.ops = steps;
    }
    Ok(StepProfile { ops, step_s, counts: c, cuda_launches: l })
}

/// What `rarts profile` measured over its steps.
pub struct StepProfile {
    /// Time per op family and direction.
    pub ops: Profile,
    /// Mean wall time of an unprofiled step.
    pub step_s: f64,
    /// Backend calls, the CUDA launches they stand for, host reads: totals.
    pub counts: Counts,
    /// Launches the CUDA backend really made (0 on the CPU): total.
    pub cuda_launches: u64,
}

/// The counts of a profile, per step.
pub fn counts_line(p: &StepProfile, steps: usize, cuda: bool) -> String {
    let per = |v: u64| v as f64 / steps as f64;
    let mut s = format!(
        "per step: {:.0} backend calls, {:.0} CUDA launches, {:.0} host reads",
        per(p.counts.calls),
        per(p.counts.launches),
        per(p.counts.reads)
    );
    if cuda {
        let _ = write!(s, " (the CUDA backend counted {:.0} launches)", per(p.cuda_launches));
    }
    s.push('\n');
    s
}

/// The profile as a table sorted by time, per step.
pub fn profile_table(prof: &Profile, steps: usize, step_s: f64) -> String {
    let total: f64 = prof.rows.values().map(|v| v.secs).sum();
    let mut s = format!(
        "step time {:.2} ms (unprofiled); profiled ops {:.2} ms/step\n{:<18} {:>4} {:>11} {:>7} {:>9} {:>14}\n",
        step_s * 1e3,
        total * 1e3 / steps as f64,
        "op family",
        "dir",
        "ms/step",
        "share",
        "ops/step",
        "launches/step"
    );
    for (fam, dir, r) in prof.sorted() {
        let _ = writeln!(
            s,
            "{fam:<18} {dir:>4} {:>11.3} {:>6.1}% {:>9} {:>14}",
            r.secs * 1e3 / steps as f64,
            100.0 * r.secs / total,
            r.ops / steps,
            r.launches / steps as u64
        );
    }
    s
}
