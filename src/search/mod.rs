//! Architecture search: the algorithms, the solvable model, and the
//! end-to-end search on the DARTS supernet.
//!
//! - `algo`: DARTS first and second order and RARTS over a recorded problem
//! - `toy`: the solvable model
//! - `config`: the settings of a search and their checks
//! - `graph`: the supernet(s) of a search recorded on a tape
//! - `feed`: batches from the two halves of the training set into the graph
//! - `prepare`: data, graph, parameters and optimizers set up on a backend
//! - `driver`: `rarts search` — the epoch and step loop
//! - `log`: an epoch's `log.jsonl` line
//! - `resume`: the checkpoint a search writes and resumes from
//! - `bench`: timing search steps (`rarts bench`, `rarts profile`)

pub mod algo;
pub mod bench;
pub mod config;
pub mod driver;
mod feed;
mod graph;
pub mod log;
pub mod prepare;
mod resume;
pub mod toy;
