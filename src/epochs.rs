//! The epoch loop a search and a training share: the steps of each epoch,
//! then what ends it in the same order for every job — the checkpoint is
//! made and checked before anything is written (a tensor gone non-finite
//! leaves the last good checkpoint and the files beside it as they were),
//! a score that failed is reported after that check (which names the
//! tensor), and only then are the checkpoint and the files that follow it
//! written. What a step is, what is logged and what a checkpoint holds are
//! the job's ([`EpochJob`]).

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::rundir::RunDir;

/// A job that runs in epochs of steps and writes a checkpoint after each.
pub trait EpochJob {
    /// The job in an error message: `the search`, `training`.
    const WHAT: &'static str;

    /// Before the steps of `epoch` (its learning rate, its log line's start).
    fn begin_epoch(&mut self, epoch: usize) -> Result<()>;

    /// Step `step` of `epoch`.
    fn step(&mut self, epoch: usize, step: usize) -> Result<()>;

    /// After the steps: scores the network and adds the epoch's log line.
    /// A score that failed is returned rather than raised, so that the
    /// checkpoint's own check, which names the tensor, comes first.
    fn end_epoch(&mut self, epoch: usize) -> Result<Option<Error>>;

    /// The checkpoint after `done` epochs: everything a resume needs.
    fn checkpoint(&self, done: usize) -> Result<Checkpoint>;

    /// The flag(s) to lower when `tensor` is not finite: `--lr (now 0.025)`.
    fn lower(&self, tensor: &str) -> String;

    /// Writes what follows each checkpoint (logs, a model file, a report).
    fn write_files(&mut self, dir: &RunDir, done: usize) -> Result<()>;
}

/// Runs `job` from epoch `start` up to `epochs`, `steps` steps each,
/// writing `dir/checkpoint` after every epoch.
pub fn run<J: EpochJob>(
    job: &mut J,
    dir: &RunDir,
    checkpoint: &str,
    start: usize,
    epochs: usize,
    steps: usize,
) -> Result<()> {
    let ck_path = dir.join(checkpoint);
    for epoch in start..epochs {
        job.begin_epoch(epoch)?;
        for s in 0..steps {
            job.step(epoch, s)?;
        }
        let score_failed = job.end_epoch(epoch)?;
        let ck = job.checkpoint(epoch + 1)?;
        if let Some((name, i, v)) = ck.first_non_finite() {
            crate::bail!(
                "epoch {epoch}: tensor '{name}' holds {v} at element {i}: {} diverged; lower {}. Nothing of this \
                 epoch was written; {}",
                J::WHAT,
                job.lower(name),
                if epoch > 0 {
                    format!("the checkpoint after epoch {epoch}, {}, is intact", ck_path.display())
                } else {
                    "no checkpoint was written".into()
                }
            );
        }
        if let Some(e) = score_failed {
            crate::bail!("epoch {epoch}: {e}; lower {}. Nothing of this epoch was written", job.lower("weights"));
        }
        ck.save(&ck_path)?;
        job.write_files(dir, epoch + 1)?;
    }
    Ok(())
}
