//! Softmax and cross-entropy on the device: launchers of `kernels/softmax.cu`.

use super::{SoftmaxOps, SoftmaxParams};
use crate::device::counts;
use crate::device::cuda::{Cuda, CudaBuf, check_len, family_state, int, launch};
use crate::error::Result;

family_state! {
    /// The kernels of `kernels/softmax.cu`.
    struct Kernels from "softmax" {
        kernels: [softmax_rows_fwd_f32, softmax_rows_bwd_f32, cross_entropy_fwd_f32, cross_entropy_bwd_f32, accuracy_f32],
    }
}

impl SoftmaxOps for Cuda {
    fn softmax_rows_fwd(&self, rows: usize, cols: usize, x: &CudaBuf, y: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let k = "softmax_rows_fwd_f32";
        check_len(k, "x", x, rows * cols)?;
        check_len(k, "y", y, rows * cols)?;
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        let (r, c) = (int(k, rows)?, int(k, cols)?);
        launch!(self, softmax_rows_fwd_f32, Cuda::flat(rows);
            &x.mem, &mut y.mem, &SoftmaxParams { rows: r, cols: c, ..Default::default() })
    }

    fn softmax_rows_bwd(&self, rows: usize, cols: usize, y: &CudaBuf, dy: &CudaBuf, dx: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let k = "softmax_rows_bwd_f32";
        check_len(k, "y", y, rows * cols)?;
        check_len(k, "dy", dy, rows * cols)?;
        check_len(k, "dx", dx, rows * cols)?;
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        let (r, c) = (int(k, rows)?, int(k, cols)?);
        launch!(self, softmax_rows_bwd_f32, Cuda::flat(rows);
            &y.mem, &dy.mem, &mut dx.mem, &SoftmaxParams { rows: r, cols: c, ..Default::default() })
    }

    fn accuracy(
        &self,
        n: usize,
        k: usize,
        logits: &CudaBuf,
        labels: &CudaBuf,
        out: &mut CudaBuf,
        at: usize,
    ) -> Result<()> {
        counts::call(1);
        let kn = "accuracy_f32";
        check_len(kn, "logits", logits, n * k)?;
        check_len(kn, "labels", labels, n)?;
        if at >= out.len || n == 0 || k == 0 {
            crate::bail!("cuda: {kn}: slot {at} of {}, batch {n}×{k}", out.len);
        }
        let (ni, ki) = (int(kn, n)?, int(kn, k)?);
        launch!(self, accuracy_f32, Cuda::per_block(1)?;
            &logits.mem, &labels.mem, &mut out.mem, &SoftmaxParams { at: at as i64, rows: ni, cols: ki })
    }

    fn cross_entropy_fwd(
        &self,
        n: usize,
        k: usize,
        logits: &CudaBuf,
        labels: &CudaBuf,
        loss: &mut CudaBuf,
        probs: &mut CudaBuf,
    ) -> Result<()> {
        counts::call(1);
        let kn = "cross_entropy_fwd_f32";
        check_len(kn, "logits", logits, n * k)?;
        check_len(kn, "probs", probs, n * k)?;
        check_len(kn, "labels", labels, n)?;
        if loss.len == 0 {
            crate::bail!("cuda: {kn}: loss is empty");
        }
        if n == 0 || k == 0 {
            crate::bail!("cuda: {kn}: empty batch ({n}×{k})");
        }
        let (ni, ki) = (int(kn, n)?, int(kn, k)?);
        let params = SoftmaxParams { rows: ni, cols: ki, ..Default::default() };
        launch!(self, cross_entropy_fwd_f32, Cuda::per_block(1)?;
            &logits.mem, &labels.mem, &mut loss.mem, &mut probs.mem, &params)
    }

    fn cross_entropy_bwd(
        &self,
        n: usize,
        k: usize,
        probs: &CudaBuf,
        labels: &CudaBuf,
        dloss: &CudaBuf,
        dlogits: &mut CudaBuf,
    ) -> Result<()> {
        counts::call(1);
        let kn = "cross_entropy_bwd_f32";
        check_len(kn, "probs", probs, n * k)?;
        check_len(kn, "dlogits", dlogits, n * k)?;
        check_len(kn, "labels", labels, n)?;
        if dloss.len == 0 {
            crate::bail!("cuda: {kn}: dloss is empty");
        }
        if n == 0 || k == 0 {
            return Ok(());
        }
        let (ni, ki) = (int(kn, n)?, int(kn, k)?);
        let params = SoftmaxParams { rows: ni, cols: ki, ..Default::default() };
        launch!(self, cross_entropy_bwd_f32, Cuda::flat(n * k);
            &probs.mem, &labels.mem, &dloss.mem, &mut dlogits.mem, &params)
    }
}
