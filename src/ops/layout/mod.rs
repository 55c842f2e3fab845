//! Kernels that move data without arithmetic worth the name: channel
//! concatenation, the one-pixel shift of FactorizedReduce, global average pool.

mod cpu;
mod cuda;
mod op;

/// The CUDA kernels this family launches: its module and their names.
pub const CUDA_KERNELS: (&str, &[&str]) = cuda::Kernels::NAMES;

use crate::device::kernel_params::{DevPtr, kernel_params};
use crate::device::{Device, Write};
use crate::error::Result;

pub use op::*;

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

/// Parts the concat kernels take in one launch; `CONCAT_MAX` of `kernels/layout.cu`.
pub const CONCAT_MAX: usize = 8;

kernel_params! {
    /// What the concat kernels are told, passed by value: the up to
    /// [`CONCAT_MAX`] parts (each part's address, its first channel in the
    /// whole and its channel count), their count `np`, and the whole (n,
    /// c_whole, hw); bit t of `add` (concat_bwd) set: part t adds rather than
    /// overwrites.
    pub struct ConcatParams {
        pub p: [DevPtr; CONCAT_MAX],
        pub off: [i32; CONCAT_MAX],
        pub c: [i32; CONCAT_MAX],
        pub np: i32,
        pub add: u32,
        pub n: i32,
        pub hw: i32,
        pub c_whole: i32,
    }
}

kernel_params! {
    /// channel_put/take: a part of c_part channels at channel `off` of a whole of
    /// c_whole, both (n, ·, hw); `add` 0 overwrites, 1 adds.
    pub struct ChannelSliceParams {
        pub n: i32,
        pub hw: i32,
        pub c_part: i32,
        pub c_whole: i32,
        pub off: i32,
        pub add: i32,
    }
}

kernel_params! {
    /// shift_fwd/bwd: nc planes of h×w.
    pub struct ShiftParams {
        pub nc: i32,
        pub h: i32,
        pub w: i32,
    }
}

kernel_params! {
    /// gap_fwd/bwd: global average pooling of nc planes of hw values.
    pub struct GapParams {
        pub nc: i32,
        pub hw: i32,
    }
}

/// Copies, shifts and the global average pool (`kernels/layout.cu` on CUDA).
pub trait LayoutOps: Device {
    /// `whole[:, off:off + c_part] (=|+=) part`, as `write` says (the rest of
    /// `whole` is left alone)
    fn channel_put(&self, s: &ChannelSlice, part: &Self::Buf, whole: &mut Self::Buf, write: Write) -> Result<()>;
    /// `dpart (=|+=) dwhole[:, off:off + c_part]`, as `write` says
    fn channel_take(&self, s: &ChannelSlice, dwhole: &Self::Buf, dpart: &mut Self::Buf, write: Write) -> Result<()>;
    /// [`channel_put`](Self::channel_put) for every part of a concatenation
    /// (disjoint slices of one whole); one call. The default puts them one
    /// by one.
    fn concat_fwd(&self, parts: &[(ChannelSlice, &Self::Buf)], whole: &mut Self::Buf) -> Result<()> {
        parts.iter().try_for_each(|(s, part)| self.channel_put(s, part, whole, Write::Set))
    }
    /// [`channel_take`](Self::channel_take) for every part of a
    /// concatenation, each written as its `Write` says; one call. The
    /// default takes them one by one.
    fn concat_bwd(&self, dwhole: &Self::Buf, parts: &mut [(ChannelSlice, &mut Self::Buf, Write)]) -> Result<()> {
        parts.iter_mut().try_for_each(|(s, part, write)| self.channel_take(s, dwhole, part, *write))
    }
    /// `y = x[:, :, 1:, 1:]` for x `(n, c, h, w)`, y `(n, c, h − 1, w − 1)`
    fn shift_fwd(&self, n: usize, c: usize, h: usize, w: usize, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx[:, :, 1:, 1:] += dy`
    fn shift_bwd(&self, n: usize, c: usize, h: usize, w: usize, dy: &Self::Buf, dx: &mut Self::Buf) -> Result<()>;
    /// Global average pool: `y[n, c] = mean over hw of x[n, c]`
    fn gap_fwd(&self, nc: usize, hw: usize, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// `dx[n, c, :] += dy[n, c] / hw`
    fn gap_bwd(&self, nc: usize, hw: usize, dy: &Self::Buf, dx: &mut Self::Buf) -> Result<()>;
}
