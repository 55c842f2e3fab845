//! The forward pass: each op's kernels (its family's `op.rs`), timed per
//! family when profiling.

use crate::backend::{Backend, counts};
use crate::error::Result;
use crate::ops::node::Fwd;

use super::Exec;

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
        let io = Fwd { be: &self.be, vals: &mut self.vals, aux: &mut self.aux, train: self.train };
        let r = op.forward(io, &mut out);
        self.vals[oi] = Some(out);
        r
    }
}
