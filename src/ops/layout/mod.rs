//! Kernels that move data without arithmetic worth the name: channel
//! concatenation, the one-pixel shift of FactorizedReduce, global average pool.

mod cpu;
mod cuda;

use crate::device::{Device, Write};
use crate::error::Result;

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
