//! Convolution on the host: each kernel runs the implementation [`path`]
//! picks for its geometry.

use super::{ChainGeom, ChainGrads, ChainNorm, ChainSaved, ConvGeom, ConvOps, Path, chain, depthwise, gemm, path};
use crate::device::counts;
use crate::device::{Cpu, Write};
use crate::error::Result;
use crate::real::Real;

impl<T: Real> ConvOps for Cpu<T> {
    fn conv2d_fwd(&self, g: &ConvGeom, x: &Vec<T>, w: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        match path(g) {
            Path::Depthwise => depthwise::fwd(g, x, w, y),
            Path::Gemm => gemm::fwd(g, x, w, y),
        }
        Ok(())
    }

    fn conv2d_bwd_data(
        &self,
        g: &ConvGeom,
        x: &Vec<T>,
        w: &Vec<T>,
        dy: &Vec<T>,
        dx: &mut Vec<T>,
        write: Write,
    ) -> Result<()> {
        counts::call(super::cuda::bwd_launches(g, Some(write), false));
        bwd_data(g, x, w, dy, dx, write);
        Ok(())
    }

    fn conv2d_bwd_filter(&self, g: &ConvGeom, x: &Vec<T>, dy: &Vec<T>, dw: &mut Vec<T>, write: Write) -> Result<()> {
        counts::call(super::cuda::bwd_launches(g, None, true));
        bwd_filter(g, x, dy, dw, write);
        Ok(())
    }

    /// Depthwise stride 1 with both gradients: one pass ([`depthwise::bwd`]).
    fn conv2d_bwd(
        &self,
        g: &ConvGeom,
        x: &Vec<T>,
        w: &Vec<T>,
        dy: &Vec<T>,
        dx: Option<(&mut Vec<T>, Write)>,
        dw: Option<(&mut Vec<T>, Write)>,
    ) -> Result<()> {
        counts::call(super::cuda::bwd_launches(g, dx.as_ref().map(|d| d.1), dw.is_some()));
        match (dx, dw) {
            (Some((dx, write)), Some((dw, dw_write))) => {
                if !(path(g) == Path::Depthwise && depthwise::bwd(g, x, w, dy, dx, write, dw, dw_write)) {
                    bwd_data(g, x, w, dy, dx, write);
                    bwd_filter(g, x, dy, dw, dw_write);
                }
            }
            (Some((dx, write)), None) => bwd_data(g, x, w, dy, dx, write),
            (None, Some((dw, dw_write))) => bwd_filter(g, x, dy, dw, dw_write),
            (None, None) => {}
        }
        Ok(())
    }

    fn chain_fwd(
        &self,
        c: &ChainGeom,
        x: &Vec<T>,
        w_dw: &Vec<T>,
        w_pw: &Vec<T>,
        norm: ChainNorm<'_, Vec<T>>,
        d: &mut Vec<T>,
        y: &mut Vec<T>,
    ) -> Result<()> {
        counts::call(super::cuda::chain_fwd_launches(c, norm.batch.is_some()));
        chain::fwd(c, x, w_dw, w_pw, norm, d, y);
        Ok(())
    }

    fn chain_bwd(
        &self,
        c: &ChainGeom,
        x: &Vec<T>,
        w_dw: &Vec<T>,
        w_pw: &Vec<T>,
        saved: ChainSaved<'_, Vec<T>>,
        dy: &Vec<T>,
        grads: ChainGrads<'_, Vec<T>>,
    ) -> Result<()> {
        counts::call(super::cuda::chain_bwd_launches(c, &grads));
        chain::bwd(c, x, w_dw, w_pw, saved, dy, grads);
        Ok(())
    }
}

fn bwd_data<T: Real>(g: &ConvGeom, x: &[T], w: &[T], dy: &[T], dx: &mut [T], write: Write) {
    match path(g) {
        Path::Depthwise => depthwise::bwd_data(g, x, w, dy, dx, write),
        Path::Gemm => gemm::bwd_data(g, x, w, dy, dx, write),
    }
}

/// `Write::Set` zeroes dw first (it is small: the weights) and adds.
fn bwd_filter<T: Real>(g: &ConvGeom, x: &[T], dy: &[T], dw: &mut [T], write: Write) {
    if write == Write::Set {
        dw.fill(T::ZERO);
    }
    match path(g) {
        Path::Depthwise => depthwise::bwd_filter(g, x, dy, dw),
        Path::Gemm => gemm::bwd_filter(g, x, dy, dw),
    }
}
