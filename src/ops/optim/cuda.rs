//! The optimizer updates on the device: launchers of `kernels/optim.cu`.

use super::{AdamStep, OptimOps, SgdStep};
use crate::backend::counts;
use crate::backend::cuda::{Cuda, CudaBuf, check_len, launch};
use crate::error::Result;

impl OptimOps for Cuda {
    fn sgd_step(
        &self,
        st: &SgdStep,
        grad_scale: f32,
        p: &mut CudaBuf,
        grad: &CudaBuf,
        buf: &mut CudaBuf,
    ) -> Result<()> {
        counts::call(1);
        let k = "sgd_step_f32";
        check_len(k, "grad", grad, p.len)?;
        check_len(k, "momentum buffer", buf, p.len)?;
        let n = p.len;
        if n == 0 {
            return Ok(());
        }
        // sgd_step_f32(float* p, const float* grad, float* buf, float lr, float mu, float wd, float s, long long n)
        launch!(self, sgd_step_f32, Cuda::flat(n);
            &mut p.mem, &grad.mem, &mut buf.mem, &st.lr, &st.momentum, &st.weight_decay, &grad_scale, &(n as i64))
    }

    fn adam_step(
        &self,
        st: &AdamStep,
        grad_scale: f32,
        p: &mut CudaBuf,
        grad: &CudaBuf,
        m: &mut CudaBuf,
        v: &mut CudaBuf,
    ) -> Result<()> {
        counts::call(1);
        let k = "adam_step_f32";
        check_len(k, "grad", grad, p.len)?;
        check_len(k, "m", m, p.len)?;
        check_len(k, "v", v, p.len)?;
        let n = p.len;
        if n == 0 {
            return Ok(());
        }
        // The bias corrections as the CPU reference computes them: powers in
        // f64, rounded to f32, the square root taken in f32.
        let (b1, b2) = (st.beta1 as f64, st.beta2 as f64);
        let c1 = (1.0 - b1.powi(st.t as i32)) as f32;
        let c2 = ((1.0 - b2.powi(st.t as i32)) as f32).sqrt();
        // adam_step_f32(float* p, const float* grad, float* m, float* v, float lr, float b1, float b2, float eps,
        //               float wd, float s, float c1, float c2, long long n)
        launch!(self, adam_step_f32, Cuda::flat(n);
            &mut p.mem, &grad.mem, &mut m.mem, &mut v.mem, &st.lr, &st.beta1, &st.beta2, &st.eps, &st.weight_decay,
            &grad_scale, &c1, &c2, &(n as i64))
    }

    fn couple(&self, beta: f32, p: &CudaBuf, other: &CudaBuf, grad: &mut CudaBuf) -> Result<()> {
        counts::call(1);
        let k = "couple_f32";
        check_len(k, "other", other, p.len)?;
        check_len(k, "grad", grad, p.len)?;
        let n = p.len;
        if n == 0 {
            return Ok(());
        }
        // couple_f32(float beta, const float* p, const float* other, float* grad, long long n)
        launch!(self, couple_f32, Cuda::flat(n); &beta, &p.mem, &other.mem, &mut grad.mem, &(n as i64))
    }
}
