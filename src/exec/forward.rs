//! The forward pass: each op's kernel, timed per family when profiling.

use crate::backend::{Backend, Write, counts};
use crate::error::Result;
use crate::tape::{NodeId, Op, Tape, concat_slices};

use super::{Exec, linear_dims, scale_geom};

impl<B: Backend> Exec<B> {
    pub fn forward(&mut self) -> Result<()> {
        for i in 0..self.tape.ops.len() {
            self.timed(i, "fwd", Self::forward_op)?;
        }
        Ok(())
    }

    /// Runs `f` for op `i`, timing it when profiling.
    pub(super) fn timed(&mut self, i: usize, dir: &'static str, f: fn(&mut Self, usize) -> Result<()>) -> Result<()> {
        if self.profile.is_none() {
            return f(self, i);
        }
        self.be.synchronize()?;
        let (t, c) = (std::time::Instant::now(), counts::now());
        f(self, i)?;
        let launches = (counts::now() - c).launches;
        self.be.synchronize()?;
        let fam = self.tape.ops[i].family();
        if let Some(p) = self.profile.as_mut() {
            p.add(fam, dir, t.elapsed().as_secs_f64(), launches);
        }
        Ok(())
    }

    fn forward_op(&mut self, i: usize) -> Result<()> {
        let op = &self.tape.ops[i];
        let oi = op.output();
        let mut out = self.vals[oi].take().expect("an op's output is written once per pass");
        // BN running statistics are separate nodes, updated while x is read:
        // take them out before the inputs are borrowed.
        let mut stats = match op {
            Op::BatchNorm { running, .. } if self.train => {
                Some((self.vals[running.0].take(), self.vals[running.1].take()))
            }
            _ => None,
        };
        let running = stats.as_mut().and_then(|(m, v)| Some((m.as_mut()?, v.as_mut()?)));
        let r = run_forward(&self.be, &self.tape, op, &self.vals, &mut self.aux, &mut out, running);
        self.vals[oi] = Some(out);
        if let (Op::BatchNorm { running: (m, v), .. }, Some((rm, rv))) = (op, stats) {
            (self.vals[*m], self.vals[*v]) = (rm, rv);
        }
        r
    }

    // ---- backward ---------------------------------------------------------
}

/// Op `op`'s forward kernel(s) into `out`; `stats` holds the BN running
/// statistics (taken out of `vals`) in training mode.
fn run_forward<B: Backend>(
    be: &B,
    tape: &Tape,
    op: &Op,
    vals: &[Option<B::Buf>],
    aux: &mut [B::Buf],
    out: &mut B::Buf,
    stats: Option<(&mut B::Buf, &mut B::Buf)>,
) -> Result<()> {
    let v = |n: NodeId| vals[n].as_ref().expect("inputs are recorded before outputs");
    match op {
        Op::Conv2d { x, w, geom, .. } => be.conv2d_fwd(geom, v(*x), v(*w), out)?,
        Op::MaxPool { x, geom, .. } => be.max_pool_fwd(geom, v(*x), out)?,
        Op::AvgPool { x, geom, .. } => be.avg_pool_fwd(geom, v(*x), out)?,
        Op::BatchNorm { x, affine, running, saved, geom, .. } => {
            let gamma = affine.map(|a| v(a.0));
            let beta = affine.map(|a| v(a.1));
            if let Some((rm, rv)) = stats {
                be.bn_fwd_train(geom, v(*x), gamma, beta, out, &mut aux[*saved], rm, rv)?
            } else {
                be.bn_fwd_eval(geom, v(*x), gamma, beta, v(running.0), v(running.1), out)?
            }
        }
        Op::Relu { x, .. } => be.relu_fwd(v(*x), out)?,
        Op::Combine { terms, .. } => {
            if terms.is_empty() {
                be.fill(out, 0.0)?;
            }
            for (t, &(x, c)) in terms.iter().enumerate() {
                be.axpy(c, v(x), out, if t == 0 { Write::Set } else { Write::Add })?;
            }
        }
        Op::Mul { a, b, .. } => be.mul_fwd(v(*a), v(*b), out)?,
        Op::MaskedSum { terms, .. } => {
            let terms: Vec<(&B::Buf, Option<&B::Buf>)> = terms.iter().map(|&(x, m)| (v(x), m.map(v))).collect();
            be.masked_sum_fwd(&terms, out)?
        }
        Op::Mix { terms, w, .. } => {
            let terms: Vec<(usize, &B::Buf)> = terms.iter().map(|t| (t.idx, v(t.x))).collect();
            be.mix_fwd(v(*w), &terms, out)?
        }
        Op::SoftmaxRows { x, rows, cols, .. } => be.softmax_rows_fwd(*rows, *cols, v(*x), out)?,
        Op::Concat { xs, groups, .. } => {
            let slices = concat_slices(tape, xs, op.output(), *groups);
            let parts: Vec<_> = xs.iter().zip(slices).map(|(x, s)| (s, v(*x))).collect();
            be.concat_fwd(&parts, out)?
        }
        Op::Slice { x, slice, .. } => be.channel_take(slice, v(*x), out, Write::Set)?,
        Op::ChannelScale { x, m, .. } => be.channel_scale_fwd(&scale_geom(tape, *x, *m), v(*x), v(*m), out)?,
        Op::Shift { x, .. } => {
            let s = tape.shape(*x);
            be.shift_fwd(s.n(), s.c(), s.h(), s.w(), v(*x), out)?
        }
        Op::Zeros { .. } => be.fill(out, 0.0)?,
        Op::GlobalAvgPool { x, .. } => {
            let s = tape.shape(*x);
            be.gap_fwd(s.n() * s.c(), s.hw(), v(*x), out)?
        }
        Op::Linear { x, w, b, .. } => {
            let (n, i, o, groups) = linear_dims(tape, *x, *w);
            be.linear_fwd(n, i, o, groups, v(*x), v(*w), b.map(v), out)?
        }
        Op::CrossEntropy { logits, labels, probs, .. } => {
            let s = tape.shape(*logits);
            be.cross_entropy_fwd(s.n(), s.c(), v(*logits), v(*labels), out, &mut aux[*probs])?
        }
        Op::SumAll { x, .. } => be.sum_all_fwd(v(*x), out)?,
    }
    Ok(())
}
