//! rarts: differentiable architecture search (RARTS, DARTS first and second
//! order) on a small reverse-mode tape, with a CPU reference backend and
//! handwritten CUDA kernels.

pub mod backend;
pub mod data;
pub mod error;
pub mod geom;
pub mod ops;
pub mod par;
pub mod real;
pub mod shape;

pub use error::{Error, Result};
