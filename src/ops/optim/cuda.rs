//! The optimizer updates on the device: launchers of `kernels/optim.cu`.
//! Each list kernel reads its tensors through a table of their addresses
//! and lengths in device memory (`list_find` in the kernel), made the first
//! time a list of these buffers is seen and kept for the backend's life:
//! the buffers of a plan never move, so every later step (and a captured
//! one) reuses it without a copy.

use std::collections::HashMap;
use std::sync::Mutex;

use cudarc::driver::CudaSlice;

use super::{
    AdamKernel, AdamParams, Coef, CoupleParams, LincombParams, ListParams, NormFinishParams, NormThen, OptimOps, Part,
    SgdKernel, SgdParams,
};
use crate::device::cuda::{Cuda, CudaBuf, REDUCE_PARTS, family_state, int, launch};
use crate::device::{Write, counts};
use crate::error::{Error, Result};

family_state! {
    /// The kernels of `kernels/optim.cu` and the tables of the lists they read.
    struct Kernels from "optim" {
        kernels: [sgd_list_f32, adam_list_f32, couple_list_f32, sumsq_list_partial_f64, norm_finish_f32, lincomb_list_f32],
        /// The device tables of the tensor lists the kernels have been given,
        /// by their lengths and addresses (see `list_table`).
        lists: Mutex<HashMap<Vec<u64>, CudaSlice<i64>>> = |_: &Cuda| -> Result<_> { Ok(Mutex::new(HashMap::new())) },
    }
}

/// Launches of `norm`: the partial sums, then the finishing block.
pub(crate) const NORM_LAUNCHES: u64 = 2;

impl Cuda {
    /// The device address of the table of `lists` (see `kernels/optim.cu`)
    /// and its tensor count; checks that every list has as many tensors as
    /// the first, each part as long as the first's. List `l` is read at
    /// `parts[l]` of each tensor (its address is the part's first
    /// element). Empty tensors are left out.
    fn list_table(&self, kernel: &str, names: &[&str], lists: &[Vec<&CudaBuf>], parts: &[Part]) -> Result<(u64, i32)> {
        let (first, part0) = (&lists[0], parts[0]);
        let part_len = |b: &CudaBuf, part: Part| part.range(b.len).len();
        for (l, list) in lists.iter().enumerate().skip(1) {
            if list.len() != first.len() {
                crate::bail!(
                    "cuda: {kernel}: {} lists {} tensors, {} lists {}",
                    names[l],
                    list.len(),
                    names[0],
                    first.len()
                );
            }
            for (i, (b, f)) in list.iter().zip(first).enumerate() {
                let (got, want) = (part_len(b, parts[l]), part_len(f, part0));
                if got != want {
                    crate::bail!(
                        "cuda: {kernel}: {} tensor {i} holds {got} elements (of {}), expected {want}",
                        names[l],
                        b.len
                    );
                }
            }
        }
        let kept: Vec<usize> = (0..first.len()).filter(|&i| part_len(first[i], part0) > 0).collect();
        let mut key: Vec<u64> = Vec::with_capacity(1 + kept.len() * (1 + lists.len()));
        key.push(lists.len() as u64);
        key.extend(kept.iter().map(|&i| part_len(first[i], part0) as u64));
        for (list, &part) in lists.iter().zip(parts) {
            let at = |b: &CudaBuf| self.ptr(&b.mem) + (part.range(b.len).start * std::mem::size_of::<f32>()) as u64;
            key.extend(kept.iter().map(|&i| at(list[i])));
        }
        let t = int(kernel, kept.len())?;
        let mut tables =
            self.family::<Kernels>()?.lists.lock().map_err(|_| Error::new("cuda: the tensor-list lock is poisoned"))?;
        if let Some(tab) = tables.get(&key) {
            return Ok((self.ptr(tab), t));
        }
        // A table made now (a list no eager step has used) would be copied
        // from a host vector freed before any replay: refused mid-capture.
        self.capture.forbid(&format!("{kernel}: a new tensor-list table"))?;
        // starts, then the addresses list by list (the key's order).
        let mut tab: Vec<i64> = Vec::with_capacity(kept.len() + 1 + lists.len() * kept.len());
        let mut at = 0i64;
        for &i in &kept {
            tab.push(at);
            at += part_len(first[i], part0) as i64;
        }
        tab.push(at);
        tab.extend(key[1 + kept.len()..].iter().map(|&p| p as i64));
        let dev = self.stream.clone_htod(&tab).map_err(|e| Error::new(format!("cuda: {kernel}: list table: {e}")))?;
        let ptr = self.ptr(&dev);
        tables.insert(key, dev);
        Ok((ptr, t))
    }
}

fn total(list: &[&CudaBuf], part: Part) -> usize {
    list.iter().map(|b| part.range(b.len).len()).sum()
}

/// Every list read whole.
const WHOLE: [Part; 4] = [Part::WHOLE; 4];

fn shared<'a>(v: &'a [&mut CudaBuf]) -> Vec<&'a CudaBuf> {
    v.iter().map(|b| &**b).collect()
}

impl OptimOps for Cuda {
    fn sgd_step(
        &self,
        k: &SgdKernel,
        sc: &CudaBuf,
        p: &mut [&mut CudaBuf],
        grad: &[&CudaBuf],
        buf: &mut [&mut CudaBuf],
        part: Part,
    ) -> Result<()> {
        counts::call(1);
        let name = "sgd_list_f32";
        let (ps, bs) = (shared(p), shared(buf));
        let n = total(&ps, part);
        let parts = [part, part, Part::WHOLE];
        let (tab, t) = self.list_table(name, &["p", "grad", "momentum"], &[ps, grad.to_vec(), bs], &parts)?;
        let (lr, scale) = (int(name, k.lr)?, int(name, k.scale)?);
        let params = SgdParams {
            tensors: t,
            lr_at: lr,
            scale_at: scale,
            mu: k.momentum,
            wd: k.weight_decay,
            nesterov: i32::from(k.nesterov),
        };
        launch!(self, sgd_list_f32, Cuda::flat(n);
            &tab, &sc.mem, &params)
    }

    fn adam_step(
        &self,
        k: &AdamKernel,
        sc: &CudaBuf,
        p: &mut [&mut CudaBuf],
        grad: &[&CudaBuf],
        m: &mut [&mut CudaBuf],
        v: &mut [&mut CudaBuf],
    ) -> Result<()> {
        counts::call(1);
        let name = "adam_list_f32";
        let ps = shared(p);
        let n = total(&ps, Part::WHOLE);
        let lists = [ps, grad.to_vec(), shared(m), shared(v)];
        let (tab, t) = self.list_table(name, &["p", "grad", "m", "v"], &lists, &WHOLE)?;
        let (lr, step) = (int(name, k.lr)?, int(name, k.t)?);
        let params =
            AdamParams { tensors: t, lr_at: lr, t_at: step, b1: k.beta1, b2: k.beta2, eps: k.eps, wd: k.weight_decay };
        launch!(self, adam_list_f32, Cuda::flat(n);
            &tab, &sc.mem, &params)
    }

    fn couple(
        &self,
        beta: f32,
        p: &[&CudaBuf],
        other: &[&CudaBuf],
        grad: &mut [&mut CudaBuf],
        part: Part,
        other_part: Part,
    ) -> Result<()> {
        counts::call(1);
        let name = "couple_list_f32";
        let n = total(p, part);
        let lists = [p.to_vec(), other.to_vec(), shared(grad)];
        let (tab, t) = self.list_table(name, &["p", "other", "grad"], &lists, &[part, other_part, part])?;
        launch!(self, couple_list_f32, Cuda::flat(n); &tab, &CoupleParams { tensors: t, beta })
    }

    fn norm(&self, x: &[&CudaBuf], part: Part, sc: &mut CudaBuf, at: usize, then: NormThen) -> Result<()> {
        counts::call(NORM_LAUNCHES);
        let name = "norm_finish_f32";
        let n = total(x, part);
        let (tab, t) = self.list_table("sumsq_list_partial_f64", &["x"], &[x.to_vec()], &[part])?;
        let mut scratch =
            self.scratch.lock().map_err(|_| Error::new("cuda: the reduction scratch lock is poisoned"))?;
        let cfg = Cuda::flat(n);
        let parts = cfg.grid_dim.0.min(REDUCE_PARTS as u32);
        let cfg = cudarc::driver::LaunchConfig { grid_dim: (parts, 1, 1), ..cfg };
        launch!(self, sumsq_list_partial_f64, cfg; &tab, &mut *scratch, &ListParams { tensors: t })?;
        let (mode, a, b, c, maxv) = match then {
            NormThen::Nothing => (0i32, 0, 0, 0, -1.0f32),
            // No clipping: a negative max tells the kernel the factor is 1.
            NormThen::Clip { max, scale } => (1, scale, 0, 0, max.unwrap_or(-1.0)),
            NormThen::Perturb { xi, eps, c } => (2, xi, eps, c, -1.0),
        };
        let (at, a, b, c) = (int(name, at)?, int(name, a)?, int(name, b)?, int(name, c)?);
        for (what, slot) in [("at", at), ("a", a), ("b", b), ("c", c)] {
            if slot as usize >= sc.len {
                crate::bail!("cuda: {name}: slot {what} = {slot} outside the {} step scalars", sc.len);
            }
        }
        launch!(self, norm_finish_f32, Cuda::per_block(1)?;
            &*scratch, &mut sc.mem, &NormFinishParams { parts: parts as i32, at, mode, a, b, c, maxv })
    }

    /// The linear-combination kernel with one term of coefficient 1, which
    /// reads no step scalar (the table's address stands in for `sc`).
    fn copy_list(&self, src: &[&CudaBuf], dst: &mut [&mut CudaBuf]) -> Result<()> {
        counts::call(1);
        let name = "lincomb_list_f32";
        let ds = shared(dst);
        let n = total(&ds, Part::WHOLE);
        let (tab, t) = self.list_table(name, &["dst", "src"], &[ds, src.to_vec()], &WHOLE)?;
        let none = -1i32;
        let params = LincombParams {
            tensors: t,
            nterms: 1i32,
            k0: 1.0f32,
            a0: none,
            k1: 0.0f32,
            a1: none,
            k2: 0.0f32,
            a2: none,
            add: 0i32,
        };
        launch!(self, lincomb_list_f32, Cuda::flat(n);
            &tab, &tab, &params)
    }

    fn lincomb(
        &self,
        sc: &CudaBuf,
        terms: &[(Coef, &[&CudaBuf])],
        out: &mut [&mut CudaBuf],
        write: Write,
    ) -> Result<()> {
        counts::call(1);
        let name = "lincomb_list_f32";
        if terms.is_empty() || terms.len() > 3 {
            crate::bail!("cuda: {name}: {} terms, expected 1 to 3", terms.len());
        }
        let os = shared(out);
        let n = total(&os, Part::WHOLE);
        let mut lists = vec![os];
        lists.extend(terms.iter().map(|(_, x)| x.to_vec()));
        let names = ["out", "term 1", "term 2", "term 3"];
        let (tab, t) = self.list_table(name, &names[..lists.len()], &lists, &WHOLE)?;
        let coef = |j: usize| -> Result<(f32, i32)> {
            match terms.get(j) {
                Some((Coef { k, at: Some(at) }, _)) => Ok((*k, int(name, *at)?)),
                Some((Coef { k, at: None }, _)) => Ok((*k, -1)),
                None => Ok((0.0, -1)),
            }
        };
        let ((k0, a0), (k1, a1), (k2, a2)) = (coef(0)?, coef(1)?, coef(2)?);
        let params =
            LincombParams { tensors: t, nterms: terms.len() as i32, k0, a0, k1, a1, k2, a2, add: write.add_flag() };
        launch!(self, lincomb_list_f32, Cuda::flat(n);
            &tab, &sc.mem, &params)
    }
}
