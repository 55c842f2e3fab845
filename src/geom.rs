//! The geometry of each op family: everything a kernel needs besides its
//! buffers. Built once when the tape is recorded; the same values are passed
//! to the CPU and the CUDA kernels.

use crate::shape::Shape;

/// 2-D convolution, NCHW input `(n, cin, h, w)`, weights `(cout, cin/groups, k, k)`,
/// output `(n, cout, oh, ow)`. With `relu_in` the kernel reads `max(x, 0)`
/// instead of `x` (every DARTS conv is preceded by a ReLU; fusing it saves a
/// buffer and a pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub oh: usize,
    pub ow: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub dil: usize,
    pub groups: usize,
    pub relu_in: bool,
}

impl ConvGeom {
    /// Output size of one spatial axis, as PyTorch computes it.
    pub fn out_len(len: usize, k: usize, stride: usize, pad: usize, dil: usize) -> usize {
        (len + 2 * pad - dil * (k - 1) - 1) / stride + 1
    }
    pub fn x_shape(&self) -> Shape {
        Shape::nchw(self.n, self.cin, self.h, self.w)
    }
    pub fn w_shape(&self) -> Shape {
        Shape::nchw(self.cout, self.cin / self.groups, self.k, self.k)
    }
    pub fn y_shape(&self) -> Shape {
        Shape::nchw(self.n, self.cout, self.oh, self.ow)
    }
    /// Multiply-adds of the forward pass.
    pub fn macs(&self) -> usize {
        self.n * self.cout * self.oh * self.ow * (self.cin / self.groups) * self.k * self.k
    }
}

/// k×k pooling window with stride and padding (`pad ≤ k/2`); average
/// pooling divides by the number of in-bounds elements (PyTorch's
/// `count_include_pad=False`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl PoolGeom {
    pub fn x_shape(&self) -> Shape {
        Shape::nchw(self.n, self.c, self.h, self.w)
    }
    pub fn y_shape(&self) -> Shape {
        Shape::nchw(self.n, self.c, self.oh, self.ow)
    }
}

/// BatchNorm over `(n, c, hw)`: statistics per channel over `n·hw` values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnGeom {
    pub n: usize,
    pub c: usize,
    pub hw: usize,
    pub eps: f32,
    /// Running-statistics update factor (PyTorch's `momentum`, 0.1).
    pub momentum: f32,
}

/// Copying a block of channels between two NCHW tensors with the same n and
/// plane size: channels `[off, off + c_part)` of the whole `(n, c_whole, hw)`
/// tensor correspond to all channels of the part `(n, c_part, hw)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelSlice {
    pub n: usize,
    pub hw: usize,
    pub c_part: usize,
    pub c_whole: usize,
    pub off: usize,
}
