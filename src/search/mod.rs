//! Architecture search: the algorithms, the solvable model, and the
//! end-to-end search driver.

pub mod algo;
pub mod config;
pub mod driver;
pub mod toy;
