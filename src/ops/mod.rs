//! CPU reference kernels, one file per op family. Each is generic over the
//! element type (f32 for the engine, f64 for finite-difference checks) and
//! follows the conventions of `backend`: forward `=`, backward `+=`.

pub mod bn;
pub mod conv;
pub mod elementwise;
pub mod layout;
pub mod linear;
pub mod optim;
pub mod pool;
pub mod simd;
pub mod softmax;
