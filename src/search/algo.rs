//! The search algorithms of SPEC §1–§2 over any recorded problem: DARTS
//! first order, DARTS second order (unrolled, finite-difference
//! Hessian-vector product) and RARTS (fused or exact schedule).

use crate::backend::{Backend, SgdStep, Write};
use crate::error::Result;
use crate::exec::Exec;
use crate::optim::{Adam, Sgd};
use crate::tape::NodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Darts1,
    Darts2,
    Rarts,
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

/// When RARTS computes the α gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// From the same two passes that give the weight gradients (2 passes a step).
    Fused,
    /// Recomputed at the updated `w`, `y` (4 passes a step).
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

/// Puts batches into the tape's input nodes.
pub trait Feed<B: Backend> {
    /// Draws the next batch of `split` and puts it in.
    fn feed(&mut self, ex: &mut Exec<B>, split: Split) -> Result<()>;
    /// Puts the batch last drawn for `split` back in, drawing nothing
    /// (DARTS second order uses one training batch for three passes).
    fn refeed(&mut self, ex: &mut Exec<B>, split: Split) -> Result<()>;
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
    pub alpha: Vec<NodeId>,
    pub group_w: u32,
    pub group_y: u32,
    pub group_arch: u32,
}

/// Losses seen by one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    pub loss_train: f64,
    /// DARTS second order: taken at the unrolled weights `w'`.
    pub loss_val: f64,
    /// Weight-gradient norm before clipping (of `w`).
    pub grad_norm: f64,
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
}

fn alloc_like<B: Backend>(ex: &Exec<B>, nodes: &[NodeId]) -> Result<Vec<B::Buf>> {
    nodes.iter().map(|&n| ex.be.alloc(ex.shape(n).numel())).collect()
}

impl<B: Backend> Search<B> {
    pub fn new(ex: Exec<B>, prob: Problem, hp: Hyper) -> Result<Self> {
        if hp.algo == Algo::Rarts && (prob.total.is_none() || prob.y.len() != prob.w.len()) {
            crate::bail!("RARTS needs two networks of the same shape and a combined loss");
        }
        let w_opt = Sgd::new(&ex, prob.w.clone(), hp.sgd, hp.clip)?;
        let y_opt = match hp.algo {
            Algo::Rarts => Some(Sgd::new(&ex, prob.y.clone(), hp.sgd, hp.clip)?),
            _ => None,
        };
        let arch = match hp.arch {
            ArchOpt::Adam { lr, betas, weight_decay } => {
                ArchState::Adam(Adam::new(&ex, prob.alpha.clone(), lr, betas, weight_decay)?)
            }
            ArchOpt::Plain { lr } => ArchState::Plain(Sgd::new(
                &ex,
                prob.alpha.clone(),
                SgdStep { lr, momentum: 0.0, weight_decay: 0.0 },
                None,
            )?),
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
        Ok(Search { ex, prob, hp, w_opt, y_opt, arch, unroll })
    }

    /// Sets the weight learning rate (cosine schedule, per epoch).
    pub fn set_lr(&mut self, lr: f32) {
        self.hp.sgd.lr = lr;
        self.w_opt.cfg.lr = lr;
        if let Some(o) = self.y_opt.as_mut() {
            o.cfg.lr = lr;
        }
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
            ArchState::Adam(a) => a.step(&mut self.ex),
            ArchState::Plain(s) => s.step(&mut self.ex).map(|_| ()),
        }
    }

    fn pass(&mut self, loss: NodeId, groups: &[u32]) -> Result<f64> {
        self.ex.forward()?;
        self.ex.backward(loss, groups)?;
        let l = self.ex.scalar(loss)?;
        if !l.is_finite() {
            crate::bail!(
                "the loss became {l} (non-finite): the search diverged; lower the learning rates or check the data"
            );
        }
        Ok(l)
    }

    /// One search step; `feed` supplies the batches.
    pub fn step(&mut self, feed: &mut dyn Feed<B>) -> Result<StepStats> {
        match self.hp.algo {
            Algo::Darts1 => self.step_darts1(feed),
            Algo::Darts2 => self.step_darts2(feed),
            Algo::Rarts => self.step_rarts(feed),
        }
    }

    /// α on the validation batch at the current w, then w on the train batch.
    fn step_darts1(&mut self, feed: &mut dyn Feed<B>) -> Result<StepStats> {
        let p = self.prob.clone();
        feed.feed(&mut self.ex, Split::Val)?;
        let loss_val = self.pass(p.loss_val, &[p.group_arch])?;
        self.arch_step()?;
        feed.feed(&mut self.ex, Split::Train)?;
        let (loss_train, grad_norm) = self.weight_step()?;
        Ok(StepStats { loss_train, loss_val, grad_norm })
    }

    /// The weight step shared by both DARTS orders, on the training batch
    /// the inputs hold.
    fn weight_step(&mut self) -> Result<(f64, f64)> {
        let p = self.prob.clone();
        let loss = self.pass(p.loss_train, &[p.group_w])?;
        let norm = self.w_opt.step(&mut self.ex)?;
        Ok((loss, norm))
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
    fn step_darts2(&mut self, feed: &mut dyn Feed<B>) -> Result<StepStats> {
        let p = self.prob.clone();
        let xi = self.hp.xi.unwrap_or(self.hp.sgd.lr);
        let (mu, wd) = (self.hp.sgd.momentum, self.hp.sgd.weight_decay);
        let mut u = self.unroll.take().expect("darts2 has scratch buffers");
        let r = (|| -> Result<f64> {
            // 1. ∇w L_train(w) on the train batch.
            feed.feed(&mut self.ex, Split::Train)?;
            self.pass(p.loss_train, &[p.group_w])?;
            // 2. w' = w − ξ(μ·buf + g + wd·w), keeping w.
            for (i, &w) in p.w.iter().enumerate() {
                let (be, val, g) = self.ex.parts_mut(w);
                let g = g.expect("weights have gradients");
                be.copy(val, &mut u.backup[i])?;
                be.axpy(-xi * mu, self.w_opt.momentum(i), val, Write::Add)?;
                be.axpy(-xi, g, val, Write::Add)?;
                be.axpy(-xi * wd, &u.backup[i], val, Write::Add)?;
            }
            // 3. ∇α and ∇w' of L_val at w' (statistics kept aside until 5).
            self.ex.stash_running_stats()?;
            feed.feed(&mut self.ex, Split::Val)?;
            let loss_val = self.pass(p.loss_val, &[p.group_w, p.group_arch])?;
            let mut norm2 = 0.0;
            for (i, &w) in p.w.iter().enumerate() {
                let (be, _, g) = self.ex.parts_mut(w);
                let g = g.expect("weights have gradients");
                be.copy(g, &mut u.v[i])?;
                norm2 += be.sum_sq(g)?;
            }
            for (i, &a) in p.alpha.iter().enumerate() {
                let (be, _, g) = self.ex.parts_mut(a);
                be.copy(g.expect("α has a gradient"), &mut u.d_alpha[i])?;
            }
            let eps = 0.01 / norm2.sqrt().max(1e-12);
            // 4. ∇α L_train at w ± εv on the same train batch.
            feed.refeed(&mut self.ex, Split::Train)?;
            for sign in [1.0f64, -1.0] {
                for (i, &w) in p.w.iter().enumerate() {
                    let (be, val, _) = self.ex.parts_mut(w);
                    be.copy(&u.backup[i], val)?;
                    be.axpy((sign * eps) as f32, &u.v[i], val, Write::Add)?;
                }
                self.pass(p.loss_train, &[p.group_arch])?;
                if sign > 0.0 {
                    for (i, &a) in p.alpha.iter().enumerate() {
                        let (be, _, g) = self.ex.parts_mut(a);
                        be.copy(g.expect("α has a gradient"), &mut u.g_plus[i])?;
                    }
                }
            }
            // 5. dα = d_alpha − c·(g⁺ − g⁻), c = ξ/2ε, written into α's gradient
            //    (which now holds g⁻); restore w and the BN statistics.
            let c = (xi as f64 / (2.0 * eps)) as f32;
            for (i, &a) in p.alpha.iter().enumerate() {
                let (be, _, g) = self.ex.parts_mut(a);
                let g = g.expect("α has a gradient");
                be.scale(c, g)?;
                be.axpy(-c, &u.g_plus[i], g, Write::Add)?;
                be.axpy(1.0, &u.d_alpha[i], g, Write::Add)?;
            }
            for (i, &w) in p.w.iter().enumerate() {
                let (be, val, _) = self.ex.parts_mut(w);
                be.copy(&u.backup[i], val)?;
            }
            self.ex.restore_running_stats()?;
            Ok(loss_val)
        })();
        self.unroll = Some(u);
        let loss_val = r?;
        self.arch_step()?;
        // 6. The weight step on the same train batch (the inputs hold it).
        let (loss_train, grad_norm) = self.weight_step()?;
        Ok(StepStats { loss_train, loss_val, grad_norm })
    }

    /// RARTS, Gauss–Seidel: w, then y (coupled to the new w), then α.
    fn step_rarts(&mut self, feed: &mut dyn Feed<B>) -> Result<StepStats> {
        let p = self.prob.clone();
        let total = p.total.expect("checked in new");
        let beta = self.hp.beta;
        feed.feed(&mut self.ex, Split::Both)?;
        // ∇ of λ·L_train(w) + L_val(y): λ∇w L_train, ∇y L_val, and α's bracket.
        self.pass(total, &[p.group_w, p.group_y, p.group_arch])?;
        let loss_train = self.ex.scalar(p.loss_train)?;
        let loss_val = self.ex.scalar(p.loss_val)?;
        for (&w, &y) in p.w.iter().zip(&p.y) {
            self.ex.couple(beta, w, y)?;
        }
        let grad_norm = self.w_opt.step(&mut self.ex)?;
        for (&y, &w) in p.y.iter().zip(&p.w) {
            self.ex.couple(beta, y, w)?;
        }
        self.y_opt.as_mut().expect("rarts has a y optimizer").step(&mut self.ex)?;
        if self.hp.schedule == Schedule::Exact {
            // At the new w, y: not the weights the step started from, so
            // the BN running statistics stay as the first pass left them.
            self.ex.stash_running_stats()?;
            let r = self.pass(total, &[p.group_arch]);
            self.ex.restore_running_stats()?;
            r?;
        }
        self.arch_step()?;
        Ok(StepStats { loss_train, loss_val, grad_norm })
    }
}
