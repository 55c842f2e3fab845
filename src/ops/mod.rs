//! The kernels, one folder per op family. Each folder holds the family's
//! trait in `mod.rs` (the one place each kernel's signature and contract is
//! written, with the family's geometry type), its CPU implementation in
//! `cpu.rs` (generic over the element type: f32 for the engine, f64 for
//! finite-difference checks) and its CUDA launchers in `cuda.rs` (the
//! kernels themselves are `kernels/<family>.cu`). All follow the
//! conventions of `backend`: forward `=`, backward `+=`. A geometry is built
//! once when the tape is recorded; the same value is passed to the CPU and
//! the CUDA kernels.
//!
//! The ops the tape records are written in each family's `op.rs` too: the
//! op's struct (its nodes and geometry), the method that records it (in
//! the family's `Record…` trait) and its forward and backward rule, through
//! the interfaces of [`node`].

pub mod bn;
pub mod conv;
pub mod elementwise;
pub mod layout;
pub mod linear;
pub mod node;
pub mod optim;
pub mod pool;
pub mod simd;
pub mod softmax;

use crate::device::kernel_params::{Layout, layout};

/// Every family's recording methods (`t.conv(…)`, `t.relu(…)`, …), for
/// `use crate::ops::record::*`.
pub mod record {
    pub use super::bn::RecordBn;
    pub use super::conv::RecordConv;
    pub use super::elementwise::RecordElementwise;
    pub use super::layout::RecordLayout;
    pub use super::linear::RecordLinear;
    pub use super::pool::RecordPool;
    pub use super::softmax::RecordSoftmax;
}

/// Every family's CUDA module and the kernels it launches from it.
pub fn cuda_kernels() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        bn::CUDA_KERNELS,
        conv::CUDA_KERNELS,
        elementwise::CUDA_KERNELS,
        layout::CUDA_KERNELS,
        linear::CUDA_KERNELS,
        optim::CUDA_KERNELS,
        pool::CUDA_KERNELS,
        softmax::CUDA_KERNELS,
    ]
}

/// Every kernel params struct, for the layout test that holds each to its
/// `.cu` declaration (`tests/kernel_params.rs`).
pub fn kernel_params() -> Vec<Layout> {
    vec![
        layout::<bn::BnParams>(),
        layout::<conv::ConvParams>(),
        layout::<elementwise::FillParams>(),
        layout::<elementwise::LenParams>(),
        layout::<elementwise::CopyElemParams>(),
        layout::<elementwise::AxpyParams>(),
        layout::<elementwise::DropPathParams>(),
        layout::<elementwise::AxpyElemParams>(),
        layout::<elementwise::ReduceFinishParams>(),
        layout::<elementwise::ChannelScaleParams>(),
        layout::<elementwise::MixParams>(),
        layout::<pool::PoolParams>(),
        layout::<layout::ChannelSliceParams>(),
        layout::<layout::ConcatParams>(),
        layout::<layout::ShiftParams>(),
        layout::<layout::GapParams>(),
        layout::<linear::LinearParams>(),
        layout::<softmax::SoftmaxParams>(),
        layout::<optim::SgdParams>(),
        layout::<optim::AdamParams>(),
        layout::<optim::CoupleParams>(),
        layout::<optim::ListParams>(),
        layout::<optim::NormFinishParams>(),
        layout::<optim::LincombParams>(),
    ]
}

#[cfg(test)]
mod tests {
    use crate::device::cuda::KERNEL_PTX;
    use crate::device::ptx::params as ptx_params;

    /// Every kernel a family launches has an entry in the PTX nvcc built,
    /// with every parameter sized (no unknown type read as 0 bytes).
    #[test]
    fn every_kernel_has_sized_parameters_in_the_built_ptx() {
        let Some(ptx) = KERNEL_PTX else {
            eprintln!("skipped: no PTX was built (nvcc was not found at build time)");
            return;
        };
        let params: std::collections::HashMap<String, Vec<usize>> =
            ptx.iter().flat_map(|&(_, text)| ptx_params(text)).collect();
        for (module, names) in super::cuda_kernels() {
            for name in names {
                let sizes = params.get(*name).unwrap_or_else(|| panic!("{module}.ptx has no entry {name}"));
                assert!(!sizes.is_empty() && sizes.iter().all(|&b| b > 0), "{name}: {sizes:?}");
            }
        }
    }
}
