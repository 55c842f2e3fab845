//! Convolution on the host: each kernel runs the implementation [`path`]
//! picks for its geometry.

use super::{ConvGeom, ConvOps, Path, depthwise, gemm, path, reference};
use crate::backend::counts;
use crate::backend::{Cpu, Write};
use crate::error::Result;
use crate::real::Real;

impl<T: Real> ConvOps for Cpu<T> {
    fn conv2d_fwd(&self, g: &ConvGeom, x: &Vec<T>, w: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        counts::call(1);
        match path(g) {
            Path::Depthwise => depthwise::fwd(g, x, w, y),
            Path::Gemm => gemm::fwd(g, x, w, y),
            Path::Reference => reference::conv2d_fwd(g, x, w, y),
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
        counts::call(super::cuda::bwd_data_launches(g, write));
        match path(g) {
            Path::Depthwise => depthwise::bwd_data(g, x, w, dy, dx, write),
            Path::Gemm => gemm::bwd_data(g, x, w, dy, dx, write),
            Path::Reference => reference::conv2d_bwd_data(g, x, w, dy, dx, write),
        }
        Ok(())
    }

    /// `Write::Set` zeroes dw first (it is small: the weights) and adds.
    fn conv2d_bwd_filter(&self, g: &ConvGeom, x: &Vec<T>, dy: &Vec<T>, dw: &mut Vec<T>, write: Write) -> Result<()> {
        counts::call(super::cuda::bwd_filter_launches(g));
        if write == Write::Set {
            dw.fill(T::ZERO);
        }
        match path(g) {
            Path::Depthwise => depthwise::bwd_filter(g, x, dy, dw),
            Path::Gemm => gemm::bwd_filter(g, x, dy, dw),
            Path::Reference => reference::conv2d_bwd_filter(g, x, dy, dw),
        }
        Ok(())
    }

    /// Depthwise stride 1 with both gradients: one pass ([`depthwise::bwd`]).
    fn conv2d_bwd(
        &self,
        g: &ConvGeom,
        x: &Vec<T>,
        w: &Vec<T>,
        dy: &Vec<T>,
        mut dx: Option<(&mut Vec<T>, Write)>,
        mut dw: Option<(&mut Vec<T>, Write)>,
    ) -> Result<()> {
        if let (Path::Depthwise, Some((dx, write)), Some((dw, dw_write))) = (path(g), dx.as_mut(), dw.as_mut())
            && depthwise::bwd(g, x, w, dy, dx, *write, dw, *dw_write)
        {
            counts::call(super::cuda::bwd_data_launches(g, *write) + super::cuda::bwd_filter_launches(g));
            return Ok(());
        }
        super::bwd_each(self, g, x, w, dy, dx, dw)
    }
}
