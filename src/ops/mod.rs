//! The kernels, one folder per op family. Each folder holds the family's
//! trait in `mod.rs` (the one place each kernel's signature and contract is
//! written, with the family's geometry type), its CPU implementation in
//! `cpu.rs` (generic over the element type: f32 for the engine, f64 for
//! finite-difference checks) and its CUDA launchers in `cuda.rs` (the
//! kernels themselves are `kernels/<family>.cu`). All follow the
//! conventions of `backend`: forward `=`, backward `+=`. A geometry is built
//! once when the tape is recorded; the same value is passed to the CPU and
//! the CUDA kernels.

pub mod bn;
pub mod conv;
pub mod elementwise;
pub mod layout;
pub mod linear;
pub mod optim;
pub mod pool;
pub mod simd;
pub mod softmax;
