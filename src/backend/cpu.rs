//! The CPU backend: the reference implementation of every kernel, generic
//! over the element type so that tests can run the same code in f64.

use std::marker::PhantomData;

use super::{Backend, Device};
use crate::error::Result;
use crate::ops::elementwise as ew;
use crate::real::Real;

/// Runs every kernel on the host over all cores (`RARTS_THREADS` overrides).
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu<T: Real = f32>(PhantomData<T>);

impl<T: Real> Cpu<T> {
    pub fn new() -> Self {
        Cpu(PhantomData)
    }
}

#[inline]
fn r<T: Real>(v: f32) -> T {
    T::from_f32(v)
}

impl<T: Real> Device for Cpu<T> {
    type Elem = T;
    type Buf = Vec<T>;

    fn name(&self) -> String {
        format!("cpu ({} threads)", crate::par::threads())
    }
    fn reserve(&self, bytes: usize) -> Result<()> {
        let gib = |b: f64| b / (1u64 << 30) as f64;
        if let Some(avail) = mem_available()
            && bytes as u64 > avail
        {
            crate::bail!(
                "the network's values and gradients need {:.1} GiB, but only {:.1} GiB of memory is available; \
                 lower --batch, --c or --layers",
                gib(bytes as f64),
                gib(avail as f64)
            );
        }
        Ok(())
    }
    fn alloc(&self, len: usize) -> Result<Vec<T>> {
        Ok(vec![T::ZERO; len])
    }
    fn len(&self, b: &Vec<T>) -> usize {
        b.len()
    }
    fn upload(&self, dst: &mut Vec<T>, src: &[T]) -> Result<()> {
        if dst.len() != src.len() {
            crate::bail!("upload: buffer holds {} elements, data has {}", dst.len(), src.len());
        }
        dst.copy_from_slice(src);
        Ok(())
    }
    fn download(&self, src: &Vec<T>) -> Result<Vec<T>> {
        Ok(src.clone())
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
}

impl<T: Real> Backend for Cpu<T> {
    fn fill(&self, y: &mut Vec<T>, v: f32) -> Result<()> {
        ew::fill(r(v), y);
        Ok(())
    }
    fn copy(&self, src: &Vec<T>, dst: &mut Vec<T>) -> Result<()> {
        dst.copy_from_slice(src);
        Ok(())
    }
    fn axpy(&self, a: f32, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        ew::axpy(r(a), x, y);
        Ok(())
    }
    fn scale(&self, a: f32, y: &mut Vec<T>) -> Result<()> {
        ew::scale(r(a), y);
        Ok(())
    }
    fn sum_sq(&self, x: &Vec<T>) -> Result<f64> {
        Ok(ew::sum_sq(x))
    }
    fn relu_fwd(&self, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        ew::relu_fwd(x, y);
        Ok(())
    }
    fn relu_bwd(&self, x: &Vec<T>, dy: &Vec<T>, dx: &mut Vec<T>) -> Result<()> {
        ew::relu_bwd(x, dy, dx);
        Ok(())
    }
    fn mul_fwd(&self, a: &Vec<T>, b: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        ew::mul_fwd(a, b, y);
        Ok(())
    }
    fn mul_bwd(&self, b: &Vec<T>, dy: &Vec<T>, da: &mut Vec<T>) -> Result<()> {
        ew::mul_bwd(b, dy, da);
        Ok(())
    }
    fn drop_path_fwd(&self, x: &Vec<T>, mask: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        ew::drop_path_fwd(x, mask, y);
        Ok(())
    }
    fn drop_path_bwd(&self, mask: &Vec<T>, dy: &Vec<T>, dx: &mut Vec<T>) -> Result<()> {
        ew::drop_path_bwd(mask, dy, dx);
        Ok(())
    }
    fn axpy_elem(&self, w: &Vec<T>, idx: usize, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        ew::axpy(w[idx], x, y);
        Ok(())
    }
    fn mix_fwd(&self, w: &Vec<T>, terms: &[(usize, &Vec<T>)], y: &mut Vec<T>) -> Result<()> {
        let terms: Vec<(T, &[T])> = terms.iter().map(|&(idx, x)| (w[idx], x.as_slice())).collect();
        ew::weighted_sum(&terms, y);
        Ok(())
    }
    fn dot_elem(&self, a: &Vec<T>, b: &Vec<T>, out: &mut Vec<T>, idx: usize) -> Result<()> {
        out[idx] += ew::dot(a, b);
        Ok(())
    }
    fn sum_all_fwd(&self, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        y[0] = T::from_f64(x.iter().map(|v| v.to_f64()).sum());
        Ok(())
    }
    fn sum_all_bwd(&self, dy: &Vec<T>, dx: &mut Vec<T>) -> Result<()> {
        let d = dy[0];
        dx.iter_mut().for_each(|v| *v += d);
        Ok(())
    }
}

/// `MemAvailable` of /proc/meminfo in bytes (None where there is no such file).
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
