//! rarts: differentiable architecture search (RARTS, DARTS first and second
//! order) on a small reverse-mode tape, with a CPU reference backend and
//! handwritten CUDA kernels.

pub mod backend;
pub mod checkpoint;
pub mod compare;
pub mod data;
pub mod device;
pub mod epochs;
pub mod error;
pub mod eval;
pub mod exec;
pub mod export;
pub mod flags;
pub mod genotype;
pub mod hash;
pub mod hugealloc;
pub mod json;
pub mod model;
pub mod ops;
pub mod optim;
pub mod par;
pub mod real;
pub mod report;
pub mod run_record;
pub mod rundir;
pub mod score;
pub mod search;
pub mod shape;
pub mod signals;
pub mod space;
pub mod sweep;
pub mod tape;
pub mod train;

pub use error::{Error, Result};
