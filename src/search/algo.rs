//! The search algorithms of SPEC §1–§2 over any recorded problem: DARTS
//! first order, DARTS second order (unrolled, finite-difference
//! Hessian-vector product) and RARTS (fused or exact schedule).

use crate::backend::{Backend, Coef, NormThen, Part, SgdStep, Write};
use crate::error::Result;
use crate::exec::Exec;
use crate::optim::{Adam, AdamSlots, Scalars, Sgd, SgdSlots};
use crate::tape::NodeId;

/// The search algorithms (`--algo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Algo {
    Rarts,
    Darts1,
    Darts2,
}

impl Algo {
    pub fn name(&self) -> &'static str {
        match self {
            Algo::Darts1 => "darts1",
            Algo::Darts2 => "darts2",
            Algo::Rarts => "rarts",
        }
    }
}

/// When RARTS computes the α gradient (`--schedule`): `Fused` from the
/// same two passes that give the weight gradients (2 passes a step),
/// `Exact` recomputed at the updated `w`, `y` (4 passes a step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Schedule {
    Fused,
    Exact,
}

/// How α is updated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArchOpt {
    /// Adam, as DARTS does: lr, betas, weight decay.
    Adam { lr: f32, betas: (f32, f32), weight_decay: f32 },
    /// A plain gradient step (the solvable model of SPEC §2.1).
    Plain { lr: f32 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    pub algo: Algo,
    pub schedule: Schedule,
    /// Weight SGD (the learning rate is set per epoch by the caller).
    pub sgd: SgdStep,
    pub clip: Option<f32>,
    pub arch: ArchOpt,
    pub lambda: f32,
    pub beta: f32,
    /// DARTS second order: unrolling step ξ; `None` uses the current weight lr.
    pub xi: Option<f32>,
}

/// Which batch an input feed should provide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
    /// RARTS: the train batch into the `w` network and the validation batch
    /// into the `y` network.
    Both,
}

/// Puts batches into the tape's input nodes, in two halves so that the
/// step's kernels never wait for the host: `draw` before the step (host
/// work and uploads), `put` inside it (device copies only, which a captured
/// step replays).
pub trait Feed<B: Backend> {
    /// Draws the step's batches, one of each split, and sends them to the device.
    fn draw(&mut self, ex: &mut Exec<B>) -> Result<()>;
    /// Puts the drawn batch of `split` into the input nodes (DARTS second
    /// order puts its one training batch twice: for the unroll, then for
    /// the `w±` passes and the weight step).
    fn put(&mut self, ex: &mut Exec<B>, split: Split) -> Result<()>;
}

/// The nodes an algorithm works on.
#[derive(Clone, Debug)]
pub struct Problem {
    /// `L_train(w, α)`.
    pub loss_train: NodeId,
    /// DARTS: `L_val(w, α)` (may be the same node as `loss_train`, fed other
    /// data); RARTS: `L_val(y, α)`.
    pub loss_val: NodeId,
    /// RARTS only: `λ·L_train(w, α) + L_val(y, α)`.
    pub total: Option<NodeId>,
    pub w: Vec<NodeId>,
    /// RARTS only: the second network's weights, pairwise matching `w`.
    pub y: Vec<NodeId>,
    /// RARTS with both networks recorded side by side (`Tape::set_nets`):
    /// `w` and `y` are the same nodes, `w` their first copy, `y` the second.
    pub side_by_side: bool,
    pub alpha: Vec<NodeId>,
    pub group_w: u32,
    pub group_y: u32,
    pub group_arch: u32,
    /// `(logits, labels)` of the training batch's network (`w`), whose
    /// accuracy each step reports, if the problem classifies.
    pub acc_train: Option<(NodeId, NodeId)>,
    /// RARTS: the same for the validation batch in the `y` network.
    pub acc_val: Option<(NodeId, NodeId)>,
}

/// Losses seen by one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    pub loss_train: f64,
    /// DARTS second order: taken at the unrolled weights `w'`.
    pub loss_val: f64,
    /// Weight-gradient norm before clipping (of `w`).
    pub grad_norm: f64,
    /// Accuracy of the last forward's training batch (`w`); NaN when the
    /// problem has no classifier.
    pub acc_train: f64,
    /// RARTS: accuracy of the validation batch in `y`; NaN otherwise.
    pub acc_val: f64,
}

/// The slots of a search's step scalars ([`Scalars`]): inputs the host
/// writes before a step, then what the step's kernels write, all read back
/// once at its end.
pub mod slot {
    /// Weight learning rate (`w` and `y`).
    pub const LR: usize = 0;
    /// α's learning rate.
    pub const LR_ARCH: usize = 1;
    /// Adam's step count for α.
    pub const T: usize = 2;
    /// DARTS second order's unrolling step ξ.
    pub const XI: usize = 3;
    pub const SCALE_W: usize = 4;
    pub const SCALE_Y: usize = 5;
    pub const SCALE_ARCH: usize = 6;
    pub const NORM_W: usize = 7;
    pub const NORM_Y: usize = 8;
    pub const NORM_ARCH: usize = 9;
    /// DARTS second order: ‖∇w' L_val(w')‖, its ε and `c = ξ/2ε`.
    pub const NORM_V: usize = 10;
    pub const EPS: usize = 11;
    pub const C: usize = 12;
    pub const LOSS_TRAIN: usize = 13;
    pub const LOSS_VAL: usize = 14;
    pub const ACC_TRAIN: usize = 15;
    pub const ACC_VAL: usize = 16;
    pub const COUNT: usize = 17;
}

/// Per-parameter scratch buffers of DARTS second order.
struct Unroll<B: Backend> {
    backup: Vec<B::Buf>,
    v: Vec<B::Buf>,
    d_alpha: Vec<B::Buf>,
    g_plus: Vec<B::Buf>,
}

enum ArchState<B: Backend> {
    Adam(Adam<B>),
    Plain(Sgd<B>),
}

/// One search: the executor, the problem's nodes and the optimizers' state.
pub struct Search<B: Backend> {
    pub ex: Exec<B>,
    pub prob: Problem,
    pub hp: Hyper,
    pub w_opt: Sgd<B>,
    pub y_opt: Option<Sgd<B>>,
    arch: ArchState<B>,
    unroll: Option<Unroll<B>>,
    /// The step scalars (see [`slot`]).
    sc: Scalars<B>,
    /// Replay the step as a CUDA graph (see [`Search::set_cuda_graph`]).
    cuda_graph: bool,
    /// Whether a step has run (made the device tables and scratch buffers
    /// a capture cannot make).
    warmed_up: bool,
    /// The captured step.
    graph: Option<B::Graph>,
}

fn alloc_like<B: Backend>(ex: &Exec<B>, nodes: &[NodeId]) -> Result<Vec<B::Buf>> {
    nodes.iter().map(|&n| ex.be.alloc(ex.shape(n).numel())).collect()
}

fn refs<T>(v: &[T]) -> Vec<&T> {
    v.iter().collect()
}

fn refs_mut<T>(v: &mut [T]) -> Vec<&mut T> {
    v.iter_mut().collect()
}

impl Problem {
    /// The parts of the `w` and `y` nodes that hold each network.
    pub fn parts(&self) -> (Part, Part) {
        if self.side_by_side { (Part::net(0, 2), Part::net(1, 2)) } else { (Part::WHOLE, Part::WHOLE) }
    }
}

impl<B: Backend> Search<B> {
    pub fn new(ex: Exec<B>, prob: Problem, hp: Hyper) -> Result<Self> {
        if hp.algo == Algo::Rarts && (prob.total.is_none() || prob.y.len() != prob.w.len()) {
            crate::bail!("RARTS needs two networks of the same shape and a combined loss");
        }
        if prob.side_by_side && hp.algo != Algo::Rarts {
            crate::bail!("two networks side by side are RARTS's; {} trains one", hp.algo.name());
        }
        let (w_part, y_part) = prob.parts();
        let w_slots = SgdSlots { lr: slot::LR, norm: slot::NORM_W, scale: slot::SCALE_W };
        let w_opt = Sgd::new(&ex, prob.w.clone(), w_part, hp.sgd.momentum, hp.sgd.weight_decay, hp.clip, w_slots)?;
        let y_opt = match hp.algo {
            Algo::Rarts => {
                let y_slots = SgdSlots { lr: slot::LR, norm: slot::NORM_Y, scale: slot::SCALE_Y };
                Some(Sgd::new(&ex, prob.y.clone(), y_part, hp.sgd.momentum, hp.sgd.weight_decay, hp.clip, y_slots)?)
            }
            _ => None,
        };
        let mut sc = Scalars::new(&ex.be, slot::COUNT)?;
        sc.set(slot::LR, hp.sgd.lr as f64);
        let arch = match hp.arch {
            ArchOpt::Adam { lr, betas, weight_decay } => {
                sc.set(slot::LR_ARCH, lr as f64);
                let slots = AdamSlots { lr: slot::LR_ARCH, t: slot::T };
                ArchState::Adam(Adam::new(&ex, prob.alpha.clone(), betas, weight_decay, slots)?)
            }
            ArchOpt::Plain { lr } => {
                sc.set(slot::LR_ARCH, lr as f64);
                ArchState::Plain(Sgd::new(
                    &ex,
                    prob.alpha.clone(),
                    Part::WHOLE,
                    0.0,
                    0.0,
                    None,
                    SgdSlots { lr: slot::LR_ARCH, norm: slot::NORM_ARCH, scale: slot::SCALE_ARCH },
                )?)
            }
        };
        let unroll = match hp.algo {
            Algo::Darts2 => Some(Unroll {
                backup: alloc_like(&ex, &prob.w)?,
                v: alloc_like(&ex, &prob.w)?,
                d_alpha: alloc_like(&ex, &prob.alpha)?,
                g_plus: alloc_like(&ex, &prob.alpha)?,
            }),
            _ => None,
        };
        Ok(Search { ex, prob, hp, w_opt, y_opt, arch, unroll, sc, cuda_graph: false, warmed_up: false, graph: None })
    }

    /// Runs the step's kernels as a CUDA graph: the first step as it comes
    /// (it makes the device tables and buffers that a capture may not),
    /// the second captured and replayed, every later one replayed. Only
    /// the batch uploads, the step scalars' upload and their read happen
    /// outside the graph. Refused by devices without graphs.
    pub fn set_cuda_graph(&mut self, on: bool) {
        self.cuda_graph = on;
        self.graph = None;
    }

    /// Sets the weight learning rate (cosine schedule, per epoch).
    pub fn set_lr(&mut self, lr: f32) {
        self.hp.sgd.lr = lr;
        self.sc.set(slot::LR, lr as f64);
    }

    pub fn arch_opt_state(&self) -> Result<(u32, Vec<Vec<f32>>)> {
        match &self.arch {
            ArchState::Adam(a) => Ok((a.t, a.state(&self.ex.be)?)),
            ArchState::Plain(s) => Ok((0, s.state(&self.ex.be)?)),
        }
    }

    pub fn load_arch_opt_state(&mut self, t: u32, data: &[Vec<f32>]) -> Result<()> {
        match &mut self.arch {
            ArchState::Adam(a) => {
                a.t = t;
                a.load_state(&self.ex.be, data)
            }
            ArchState::Plain(s) => s.load_state(&self.ex.be, data),
        }
    }

    fn arch_step(&mut self) -> Result<()> {
        match &mut self.arch {
            ArchState::Adam(a) => a.step(&mut self.ex, &self.sc.buf),
            ArchState::Plain(s) => s.step(&mut self.ex, &mut self.sc.buf),
        }
    }

    /// A forward and backward pass; the loss's value goes to slot `keep`.
    fn pass(&mut self, loss: NodeId, groups: &[u32], keep: Option<usize>) -> Result<()> {
        self.ex.forward()?;
        self.ex.backward(loss, groups)?;
        match keep {
            Some(at) => self.ex.be.copy_elem(self.ex.val(loss), 0, &mut self.sc.buf, at),
            None => Ok(()),
        }
    }

    /// Puts the accuracy of `io` (logits, labels) into slot `at`.
    fn keep_accuracy(&mut self, io: Option<(NodeId, NodeId)>, at: usize) -> Result<()> {
        let Some((logits, labels)) = io else { return Ok(()) };
        let (n, k) = (self.ex.shape(labels).numel(), self.ex.shape(logits).numel() / self.ex.shape(labels).numel());
        self.ex.be.accuracy(n, k, self.ex.val(logits), self.ex.val(labels), &mut self.sc.buf, at)
    }

    /// One search step; `feed` supplies the batches. Every kernel of the
    /// step runs without waiting for the host; the step scalars are read
    /// once, at its end (losses, norm, accuracies), and checked there.
    pub fn step(&mut self, feed: &mut dyn Feed<B>) -> Result<StepStats> {
        feed.draw(&mut self.ex)?;
        if let ArchState::Adam(a) = &mut self.arch {
            a.t += 1;
            self.sc.set(slot::T, a.t as f64);
        }
        self.sc.set(slot::XI, self.hp.xi.unwrap_or(self.hp.sgd.lr) as f64);
        self.sc.upload(&self.ex.be)?;
        if self.cuda_graph {
            self.graph_step(feed)?;
        } else {
            self.device_step(feed)?;
        }
        let v = self.sc.read(&self.ex.be)?;
        let nan_unless = |some: bool, x: f64| if some { x } else { f64::NAN };
        let st = StepStats {
            loss_train: v[slot::LOSS_TRAIN],
            loss_val: v[slot::LOSS_VAL],
            grad_norm: v[slot::NORM_W],
            acc_train: nan_unless(self.prob.acc_train.is_some(), v[slot::ACC_TRAIN]),
            acc_val: nan_unless(self.prob.acc_val.is_some(), v[slot::ACC_VAL]),
        };
        for (what, x) in [("training loss", st.loss_train), ("validation loss", st.loss_val)] {
            if !x.is_finite() {
                crate::bail!(
                    "the {what} became {x} (non-finite): the search diverged; lower the learning rates or check the data"
                );
            }
        }
        let mut norms = vec![("weight", slot::NORM_W)];
        if self.hp.algo == Algo::Rarts {
            norms.push(("y-network weight", slot::NORM_Y));
        }
        if self.hp.algo == Algo::Darts2 {
            norms.push(("unrolled validation", slot::NORM_V));
        }
        for (what, at) in norms {
            if !v[at].is_finite() {
                crate::bail!(
                    "the {what} gradient norm became {} (non-finite): the search diverged; lower the learning rates or check the data",
                    v[at]
                );
            }
        }
        Ok(st)
    }

    /// α on the validation batch at the current w, then w on the train batch.
    /// The step's kernels, after its batches were drawn and its scalars
    /// uploaded: nothing here waits for the host.
    fn device_step(&mut self, feed: &mut dyn Feed<B>) -> Result<()> {
        match self.hp.algo {
            Algo::Darts1 => self.step_darts1(feed)?,
            Algo::Darts2 => self.step_darts2(feed)?,
            Algo::Rarts => self.step_rarts(feed)?,
        }
        self.keep_accuracy(self.prob.acc_train, slot::ACC_TRAIN)?;
        self.keep_accuracy(self.prob.acc_val, slot::ACC_VAL)
    }

    /// [`device_step`](Self::device_step) as a graph: run, then captured
    /// once, then replayed.
    fn graph_step(&mut self, feed: &mut dyn Feed<B>) -> Result<()> {
        if self.graph.is_none() {
            if !std::mem::replace(&mut self.warmed_up, true) {
                return self.device_step(feed);
            }
            self.ex.be.begin_capture()?;
            let r = self.device_step(feed);
            // The capture ends whether or not recording succeeded.
            let g = self.ex.be.end_capture();
            r?;
            self.graph = Some(g?);
        }
        self.ex.be.replay(self.graph.as_ref().expect("captured above"))
    }

    fn step_darts1(&mut self, feed: &mut dyn Feed<B>) -> Result<()> {
        let p = self.prob.clone();
        feed.put(&mut self.ex, Split::Val)?;
        self.pass(p.loss_val, &[p.group_arch], Some(slot::LOSS_VAL))?;
        self.arch_step()?;
        feed.put(&mut self.ex, Split::Train)?;
        self.weight_step()
    }

    /// The weight step shared by both DARTS orders, on the training batch
    /// the inputs hold.
    fn weight_step(&mut self) -> Result<()> {
        let p = self.prob.clone();
        self.pass(p.loss_train, &[p.group_w], Some(slot::LOSS_TRAIN))?;
        self.w_opt.step(&mut self.ex, &mut self.sc.buf)
    }

    /// DARTS second order (quark0/darts `architect.py`, unrolled):
    /// `dα = ∇α L_val(w', α) − ξ·[∇α L_train(w⁺) − ∇α L_train(w⁻)] / 2ε`,
    /// `w' = w − ξ(μ·buf + ∇w L_train + wd·w)`, `w± = w ± ε·∇w' L_val(w')`,
    /// `ε = 0.01 / ‖∇w' L_val(w')‖`; then the usual weight step.
    ///
    /// One training batch serves all three training-side passes (the
    /// unroll, `w±` and the weight step), as `train_search.py` feeds one
    /// batch to both `architect.step` and the weight update. Only the passes
    /// at the network's own weights `w` (1 and 6) move the BN running
    /// statistics; the passes at `w'` and `w±` leave them as they were.
    fn step_darts2(&mut self, feed: &mut dyn Feed<B>) -> Result<()> {
        let p = self.prob.clone();
        let (mu, wd) = (self.hp.sgd.momentum, self.hp.sgd.weight_decay);
        let mut u = self.unroll.take().expect("darts2 has scratch buffers");
        let r = (|| -> Result<()> {
            let sc = &mut self.sc.buf;
            // 1. ∇w L_train(w) on the train batch.
            feed.put(&mut self.ex, Split::Train)?;
            self.ex.forward()?;
            self.ex.backward(p.loss_train, &[p.group_w])?;
            // 2. w' = w − ξ(μ·buf + g + wd·w), keeping w.
            self.ex.be.copy_list(&self.ex.val_list(&p.w), &mut refs_mut(&mut u.backup))?;
            {
                let (be, mut vals, grads) = self.ex.update_lists(&p.w)?;
                let (mom, backup) = (self.w_opt.momentum(), refs(&u.backup));
                let terms = [
                    (Coef::times(-mu, slot::XI), &mom[..]),
                    (Coef::times(-1.0, slot::XI), &grads[..]),
                    (Coef::times(-wd, slot::XI), &backup[..]),
                ];
                be.lincomb(sc, &terms, &mut vals, Write::Add)?;
            }
            // 3. ∇α and ∇w' of L_val at w' (statistics kept aside until 5).
            self.ex.stash_running_stats()?;
            feed.put(&mut self.ex, Split::Val)?;
            self.ex.forward()?;
            self.ex.backward(p.loss_val, &[p.group_w, p.group_arch])?;
            self.ex.be.copy_elem(self.ex.val(p.loss_val), 0, sc, slot::LOSS_VAL)?;
            {
                let grads = self.ex.grad_list(&p.w)?;
                let be = &self.ex.be;
                be.copy_list(&grads, &mut refs_mut(&mut u.v))?;
                // ε = 0.01/‖v‖ and c = ξ/2ε, on the device.
                let perturb = NormThen::Perturb { xi: slot::XI, eps: slot::EPS, c: slot::C };
                be.norm(&grads, Part::WHOLE, sc, slot::NORM_V, perturb)?;
                let ga = self.ex.grad_list(&p.alpha)?;
                be.copy_list(&ga, &mut refs_mut(&mut u.d_alpha))?;
            }
            // 4. ∇α L_train at w ± εv on the same train batch.
            feed.put(&mut self.ex, Split::Train)?;
            for sign in [1.0f32, -1.0] {
                {
                    let (be, mut vals) = self.ex.val_list_mut(&p.w);
                    let (backup, v) = (refs(&u.backup), refs(&u.v));
                    let terms = [(Coef::k(1.0), &backup[..]), (Coef::times(sign, slot::EPS), &v[..])];
                    be.lincomb(sc, &terms, &mut vals, Write::Set)?;
                }
                self.ex.forward()?;
                self.ex.backward(p.loss_train, &[p.group_arch])?;
                if sign > 0.0 {
                    let ga = self.ex.grad_list(&p.alpha)?;
                    self.ex.be.copy_list(&ga, &mut refs_mut(&mut u.g_plus))?;
                }
            }
            // 5. dα = d_alpha − c·(g⁺ − g⁻), c = ξ/2ε, formed in d_alpha and
            //    written into α's gradient (which now holds g⁻); restore w
            //    and the BN statistics.
            {
                let ga = self.ex.grad_list(&p.alpha)?;
                let gp = refs(&u.g_plus);
                let terms = [(Coef::times(-1.0, slot::C), &gp[..]), (Coef::times(1.0, slot::C), &ga[..])];
                self.ex.be.lincomb(sc, &terms, &mut refs_mut(&mut u.d_alpha), Write::Add)?;
            }
            {
                let (be, mut ga) = self.ex.grad_list_mut(&p.alpha)?;
                be.copy_list(&refs(&u.d_alpha), &mut ga)?;
            }
            {
                let (be, mut vals) = self.ex.val_list_mut(&p.w);
                be.copy_list(&refs(&u.backup), &mut vals)?;
            }
            self.ex.restore_running_stats()
        })();
        self.unroll = Some(u);
        r?;
        self.arch_step()?;
        // 6. The weight step on the same train batch (the inputs hold it).
        self.weight_step()
    }

    /// RARTS, Gauss–Seidel: w, then y (coupled to the new w), then α.
    fn step_rarts(&mut self, feed: &mut dyn Feed<B>) -> Result<()> {
        let p = self.prob.clone();
        let total = p.total.expect("checked in new");
        let beta = self.hp.beta;
        feed.put(&mut self.ex, Split::Both)?;
        // ∇ of λ·L_train(w) + L_val(y): λ∇w L_train, ∇y L_val, and α's bracket.
        self.pass(total, &[p.group_w, p.group_y, p.group_arch], None)?;
        self.ex.be.copy_elem(self.ex.val(p.loss_train), 0, &mut self.sc.buf, slot::LOSS_TRAIN)?;
        self.ex.be.copy_elem(self.ex.val(p.loss_val), 0, &mut self.sc.buf, slot::LOSS_VAL)?;
        let (w_part, y_part) = p.parts();
        self.ex.couple(beta, &p.w, &p.y, w_part, y_part)?;
        self.w_opt.step(&mut self.ex, &mut self.sc.buf)?;
        self.ex.couple(beta, &p.y, &p.w, y_part, w_part)?;
        self.y_opt.as_mut().expect("rarts has a y optimizer").step(&mut self.ex, &mut self.sc.buf)?;
        if self.hp.schedule == Schedule::Exact {
            // At the new w, y: not the weights the step started from, so
            // the BN running statistics stay as the first pass left them.
            self.ex.stash_running_stats()?;
            let r = self.pass(total, &[p.group_arch], None);
            self.ex.restore_running_stats()?;
            r?;
        }
        self.arch_step()
    }
}
