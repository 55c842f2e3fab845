//! Which batches and which BatchNorm statistics each algorithm's passes use,
//! on a small real supernet: DARTS second order reads one training batch a
//! step for all its training-side passes, and no auxiliary pass (DARTS' `w'`
//! and `w±`, RARTS' exact-schedule pass) moves the running statistics.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rarts::backend::{Cpu, SgdStep};
use rarts::exec::Exec;
use rarts::ops::record::*;
use rarts::search::algo::{Algo, ArchOpt, Feed, Hyper, Problem, Schedule, Search, Split};
use rarts::shape::Shape;
use rarts::space::darts::{SuperNetConfig, alphas, supernet};
use rarts::space::{GROUP_ARCH, GROUP_W, GROUP_Y};
use rarts::tape::{NodeId, Tape};

type Be = Cpu<f32>;
const BATCH: usize = 4;
const SIDE: usize = 8;
const CLASSES: usize = 3;

/// A supernet (two for RARTS) of C=2, 3 cells on 3×8×8 images.
fn problem(algo: Algo) -> (Tape, Problem, [(NodeId, NodeId); 2]) {
    let net = SuperNetConfig::new(2, 3, CLASSES, 3);
    let mut t = Tape::new();
    let (an, ar, mw) = alphas(&mut t, &net, GROUP_ARCH);
    let one = |t: &mut Tape, group: u32, tag: &str| {
        let x = t.input(Shape::nchw(BATCH, 3, SIDE, SIDE), &format!("{tag}.x"));
        let y = t.input(Shape::vec(BATCH), &format!("{tag}.y"));
        let n = supernet(t, &net, x, mw, group);
        (t.cross_entropy(n.logits, y), n.weight_params, (x, y))
    };
    let (lt, w, io_t) = one(&mut t, GROUP_W, "w");
    let (lv, y, io_v, total) = if algo == Algo::Rarts {
        let (lv, y, io_v) = one(&mut t, GROUP_Y, "y");
        let total = t.combine(&[(lt, 1.0), (lv, 1.0)]);
        (lv, y, io_v, Some(total))
    } else {
        (lt, vec![], io_t, None)
    };
    let prob = Problem {
        loss_train: lt,
        loss_val: lv,
        total,
        w,
        y,
        side_by_side: false,
        alpha: vec![an, ar],
        group_w: GROUP_W,
        group_y: GROUP_Y,
        group_arch: GROUP_ARCH,
        acc_train: None,
        acc_val: None,
    };
    (t, prob, [io_t, io_v])
}

/// Random batches, one stream per split (so the training batches do not
/// depend on the validation seed), counting every draw and every put.
struct CountingFeed {
    io: [(NodeId, NodeId); 2],
    rng: [StdRng; 2],
    last: [(Vec<f32>, Vec<f32>); 2],
    draws: usize,
    puts: [usize; 2],
}

impl CountingFeed {
    fn new(io: [(NodeId, NodeId); 2], train_seed: u64, val_seed: u64) -> Self {
        let empty = || (Vec::new(), Vec::new());
        CountingFeed {
            io,
            rng: [StdRng::seed_from_u64(train_seed), StdRng::seed_from_u64(val_seed)],
            last: [empty(), empty()],
            draws: 0,
            puts: [0; 2],
        }
    }

    fn sides(split: Split) -> &'static [usize] {
        match split {
            Split::Train => &[0],
            Split::Val => &[1],
            Split::Both => &[0, 1],
        }
    }
}

impl Feed<Be> for CountingFeed {
    fn draw(&mut self, _: &mut Exec<Be>) -> rarts::Result<()> {
        for i in 0..2 {
            let rng = &mut self.rng[i];
            let x = (0..BATCH * 3 * SIDE * SIDE).map(|_| rng.random_range(-2.0..2.0)).collect();
            let y = (0..BATCH).map(|_| rng.random_range(0..CLASSES) as f32).collect();
            self.last[i] = (x, y);
        }
        self.draws += 1;
        Ok(())
    }

    fn put(&mut self, ex: &mut Exec<Be>, split: Split) -> rarts::Result<()> {
        assert!(self.draws > 0, "a batch put in before any was drawn");
        for &i in Self::sides(split) {
            self.puts[i] += 1;
            ex.set_elems(self.io[i].0, &self.last[i].0)?;
            ex.set_elems(self.io[i].1, &self.last[i].1)?;
        }
        Ok(())
    }
}

/// A search on the supernet; `arch_lr` 0 keeps α fixed.
fn search(algo: Algo, schedule: Schedule, arch_lr: f32) -> (Search<Be>, [(NodeId, NodeId); 2]) {
    let (tape, prob, io) = problem(algo);
    let mut ex = Exec::new(Be::new(), tape).unwrap();
    ex.init_params(&mut StdRng::seed_from_u64(3)).unwrap();
    for (&w, &y) in prob.w.iter().zip(&prob.y) {
        ex.copy_node(w, y).unwrap();
    }
    let hp = Hyper {
        algo,
        schedule,
        sgd: SgdStep { lr: 0.05, momentum: 0.9, weight_decay: 3e-4 },
        clip: Some(5.0),
        arch: ArchOpt::Plain { lr: arch_lr },
        lambda: 1.0,
        beta: 1.0,
        xi: None,
    };
    (Search::new(ex, prob, hp).unwrap(), io)
}

fn running_stats(s: &Search<Be>) -> Vec<Vec<f64>> {
    s.ex.state_nodes().into_iter().map(|n| s.ex.get(n).unwrap()).collect()
}

/// Every algorithm draws one batch of each split per step. DARTS second
/// order puts its training batch in twice (the unroll, then the `w±`
/// passes and the weight step, which reuse it) and the validation batch
/// once; first order and RARTS put each in once.
#[test]
fn each_step_draws_one_batch_of_each_split() {
    for (algo, puts) in [(Algo::Darts2, [2, 1]), (Algo::Darts1, [1, 1]), (Algo::Rarts, [1, 1])] {
        let (mut s, io) = search(algo, Schedule::Fused, 0.1);
        let mut feed = CountingFeed::new(io, 1, 2);
        for step in 1..=3 {
            s.step(&mut feed).unwrap();
            assert_eq!(feed.draws, step, "{}: draws after {step} steps", algo.name());
            assert_eq!(feed.puts, puts.map(|p| p * step), "{}: puts (train, val) after {step} steps", algo.name());
        }
    }
}

/// With α held fixed, a DARTS second-order step's BN statistics must not
/// depend on the validation batch: only the `w'` pass sees it, and the `w±`
/// passes use weights moved along its gradient. (They do depend on the
/// training batch, so the comparison is not vacuous.)
#[test]
fn darts2_auxiliary_passes_leave_the_running_statistics_alone() {
    let after = |train_seed, val_seed| {
        let (mut s, io) = search(Algo::Darts2, Schedule::Fused, 0.0);
        let before = running_stats(&s);
        let mut feed = CountingFeed::new(io, train_seed, val_seed);
        let st = s.step(&mut feed).unwrap();
        let stats = running_stats(&s);
        assert_ne!(stats, before, "the passes at w move the statistics");
        (stats, st.loss_val)
    };
    let (a, loss_a) = after(1, 2);
    let (b, loss_b) = after(1, 3);
    let (c, _) = after(4, 2);
    assert_ne!(loss_a, loss_b, "the validation batches differ");
    assert_eq!(a, b, "the running statistics depend on the validation batch");
    assert_ne!(a, c, "the running statistics ignore the training batch");
}

/// The exact schedule's second pass (at the new weights) leaves the
/// statistics where the first pass put them: the same as the fused step's.
#[test]
fn rarts_exact_schedule_moves_the_statistics_like_the_fused_one() {
    let step = |schedule| {
        let (mut s, io) = search(Algo::Rarts, schedule, 0.1);
        let mut feed = CountingFeed::new(io, 1, 2);
        s.step(&mut feed).unwrap();
        let alpha = s.ex.get(s.prob.alpha[0]).unwrap();
        (running_stats(&s), alpha)
    };
    let (fused, alpha_fused) = step(Schedule::Fused);
    let (exact, alpha_exact) = step(Schedule::Exact);
    assert_ne!(alpha_fused, alpha_exact, "the exact schedule takes α's gradient elsewhere");
    assert_eq!(fused, exact);
}
