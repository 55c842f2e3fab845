//! The solvable model (SPEC §2.1): every algorithm, run through the tape and
//! the optimizers, reaches its closed-form fixed point.

use rarts::backend::Cpu;
use rarts::search::algo::{Algo, Schedule};
use rarts::search::toy::{ToyConfig, closed_form, solve};

fn cfg(algo: Algo, c: f64, lambda: f32, beta: f32, xi: f32) -> ToyConfig {
    ToyConfig { algo, schedule: Schedule::Fused, c, lambda, beta, xi, lr: 0.05, max_steps: 20_000, tol: 1e-12 }
}

fn check(cfg: ToyConfig) {
    let want = closed_form(&cfg);
    // DARTS second order keeps moving by ~1e-10 a step at its fixed point (the
    // finite-difference Hessian-vector product is not exact in f64), so the
    // run may end at max_steps; the distance to the closed form is the test.
    let (got, _steps) = solve(Cpu::<f64>::new(), &cfg).expect("toy run");
    assert!((got - want).abs() < 1e-6, "{cfg:?}: α = {got:.9}, closed form {want:.9}");
}

#[test]
fn darts_first_order_goes_to_zero() {
    for c in [0.1, 0.5, 2.0] {
        check(cfg(Algo::Darts1, c, 1.0, 1.0, 0.0));
    }
}

#[test]
fn darts_second_order_reaches_xi_over_xi_plus_c() {
    for (c, xi) in [(0.5, 0.1), (1.0, 0.5), (2.0, 1.0), (0.25, 0.05)] {
        check(cfg(Algo::Darts2, c, 1.0, 1.0, xi));
    }
}

#[test]
fn rarts_reaches_the_stationary_point_of_the_relaxed_objective() {
    for (c, l, b) in [(1.0, 1.0, 1.0), (0.5, 2.0, 4.0), (2.0, 0.5, 8.0), (0.1, 3.0, 0.5)] {
        check(cfg(Algo::Rarts, c, l, b, 0.0));
    }
}

/// The exact schedule recomputes α's gradient at the new `w`, `y`; where the
/// updates vanish the two schedules agree, so it reaches the same closed form.
#[test]
fn rarts_exact_schedule_reaches_the_same_stationary_point() {
    for (c, l, b) in [(1.0, 1.0, 1.0), (0.5, 2.0, 4.0), (2.0, 0.5, 8.0), (0.1, 3.0, 0.5)] {
        check(ToyConfig { schedule: Schedule::Exact, ..cfg(Algo::Rarts, c, l, b, 0.0) });
    }
}

/// The exact schedule is a different iteration, not the fused one renamed:
/// after a few steps from the same start the two are at different points.
#[test]
fn rarts_exact_and_fused_schedules_take_different_paths() {
    let few = |schedule| {
        let cfg = ToyConfig { schedule, max_steps: 3, ..cfg(Algo::Rarts, 1.0, 1.0, 1.0, 0.0) };
        solve(Cpu::<f64>::new(), &cfg).expect("toy run").0
    };
    let (fused, exact) = (few(Schedule::Fused), few(Schedule::Exact));
    assert!((fused - exact).abs() > 1e-6, "fused {fused}, exact {exact}");
}

#[test]
fn the_three_fixed_points_differ() {
    // The check above would pass trivially if the algorithms coincided.
    let a = closed_form(&cfg(Algo::Darts1, 1.0, 1.0, 1.0, 0.5));
    let b = closed_form(&cfg(Algo::Darts2, 1.0, 1.0, 1.0, 0.5));
    let c = closed_form(&cfg(Algo::Rarts, 1.0, 1.0, 1.0, 0.5));
    assert!((a - b).abs() > 0.1 && (b - c).abs() > 0.05 && (a - c).abs() > 0.1);
}
