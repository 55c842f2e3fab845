//! What the benches share: the timing loop.

use std::time::Instant;

/// Median seconds of `f` over enough runs to fill about `fill` seconds (at
/// least `min_runs`, at most 200), after one untimed run.
pub fn median_secs(fill: f64, min_runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64();
    let runs = ((fill / once.max(1e-6)) as usize).clamp(min_runs, 200);
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
