//! The epoch loop a search and a training share: the steps of each epoch,
//! then what ends it in the same order for every job — the checkpoint is
//! made and checked before anything is written (a tensor gone non-finite
//! leaves the last good checkpoint and the files beside it as they were),
//! a score that failed is reported after that check (which names the
//! tensor), and only then are the checkpoint and the files that follow it
//! written. What a step is, what is logged and what a checkpoint holds are
//! the job's ([`EpochJob`]).
//!
//! A checkpoint is also written inside an epoch: every `--checkpoint-every`
//! steps, and after the step under way when a signal asks the run to stop
//! ([`crate::signals`]). It holds the steps done of the epoch under way
//! (`step`) and the job's running sums for it (`epoch_sums`), so that a
//! resume continues with the next step and logs the epoch as an
//! uninterrupted run would.

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::rundir::RunDir;
use crate::signals;

/// Where a run stands: `epoch` epochs done, `step` steps of the next one
/// done, with the job's running sums for it (`EpochJob::epoch_sums`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Position {
    pub epoch: usize,
    pub step: usize,
    pub sums: String,
}

impl Position {
    /// Where the run of checkpoint `ck` stands, its epochs of `steps` steps:
    /// a checkpoint without a `step` field was written at the end of an
    /// epoch (as every checkpoint of the formats before mid-epoch ones was).
    pub fn of(ck: &Checkpoint, steps: usize) -> Result<Position> {
        let done: usize = ck.parse("epochs_done")?;
        let step: usize = match ck.get("step") {
            Some(_) => ck.parse("step")?,
            None => 0,
        };
        if step >= steps.max(1) {
            crate::bail!("checkpoint field 'step' is {step}; expected fewer than the {steps} steps of an epoch");
        }
        let sums = ck.get("epoch_sums").unwrap_or_default().to_string();
        if step > 0 && sums.is_empty() {
            crate::bail!("checkpoint written at step {step} of epoch {done} has no field 'epoch_sums'");
        }
        Ok(Position { epoch: done, step, sums })
    }

    /// `epoch 3` or `epoch 3 step 17`, for messages.
    pub fn show(&self) -> String {
        match self.step {
            0 => format!("epoch {}", self.epoch),
            s => format!("epoch {} step {s}", self.epoch),
        }
    }
}

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

    /// The checkpoint after `done` epochs (and, written mid-epoch, some
    /// steps of the next, which [`run`] adds): everything a resume needs.
    fn checkpoint(&self, done: usize) -> Result<Checkpoint>;

    /// The running sums of the epoch under way, as one line, for a
    /// checkpoint written inside it (floats in Rust's shortest form, which
    /// reads back to the same bits).
    fn epoch_sums(&self) -> String;

    /// Puts back what [`epoch_sums`](Self::epoch_sums) wrote, after
    /// [`begin_epoch`](Self::begin_epoch) of the same epoch.
    fn restore_epoch_sums(&mut self, sums: &str) -> Result<()>;

    /// The flag(s) to lower when `tensor` is not finite: `--lr (now 0.025)`.
    fn lower(&self, tensor: &str) -> String;

    /// Writes what follows each checkpoint (logs, a model file, a report).
    fn write_files(&mut self, dir: &RunDir, done: usize) -> Result<()>;
}

/// Runs `job` from `from` up to `epochs` epochs of `steps` steps each,
/// writing `dir/checkpoint` after every epoch, every `every` steps (counted
/// from the run's first step), and after the step under way when a signal
/// asks the run to stop — which then ends with an error saying so, and
/// [`signals::checkpointed`] set.
pub fn run<J: EpochJob>(
    job: &mut J,
    dir: &RunDir,
    checkpoint: &str,
    from: &Position,
    epochs: usize,
    steps: usize,
    every: Option<usize>,
) -> Result<()> {
    let ck_path = dir.join(checkpoint);
    let stopped = |sig: i32, at: String| {
        signals::set_checkpointed();
        Error(format!(
            "stopped by {} {at}; the checkpoint {} holds the run: the same command with --resume continues it \
             (rarts compare: the same command)",
            signals::name(sig),
            ck_path.display()
        ))
    };
    for epoch in from.epoch..epochs {
        job.begin_epoch(epoch)?;
        let first = if epoch == from.epoch { from.step } else { 0 };
        if first > 0 {
            job.restore_epoch_sums(&from.sums)?;
        }
        for s in first..steps {
            job.step(epoch, s)?;
            let done = epoch * steps + s + 1;
            signals::test_hook(done)?;
            if s + 1 == steps {
                break; // the epoch's end writes the checkpoint
            }
            let sig = signals::pending();
            if sig.is_some() || every.is_some_and(|n| done.is_multiple_of(n)) {
                let mut ck = job.checkpoint(epoch)?;
                ck.set("step", s + 1);
                ck.set("epoch_sums", job.epoch_sums());
                if let Some((name, i, v)) = ck.first_non_finite() {
                    crate::bail!(
                        "epoch {epoch} step {s}: tensor '{name}' holds {v} at element {i}: {} diverged; lower {}. \
                         The last checkpoint, {}, is as it was",
                        J::WHAT,
                        job.lower(name),
                        ck_path.display()
                    );
                }
                ck.save(&ck_path)?;
                if let Some(sig) = sig {
                    return Err(stopped(sig, format!("after step {} of {steps} of epoch {}", s + 1, epoch + 1)));
                }
            }
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
        if let Some(sig) = signals::pending().filter(|_| epoch + 1 < epochs) {
            return Err(stopped(sig, format!("after epoch {} of {epochs}", epoch + 1)));
        }
    }
    Ok(())
}

/// `name=value,…` with each float in Rust's shortest form, which reads back
/// to the same bits: what [`EpochJob::epoch_sums`] writes.
pub fn sums_line(sums: &[(&str, f64)]) -> String {
    sums.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(",")
}

/// The values of a [`sums_line`], in the order of `names`; an error names
/// the field that is missing or unreadable.
pub fn parse_sums<const N: usize>(line: &str, names: [&str; N]) -> Result<[f64; N]> {
    let mut out = [0.0; N];
    for (o, name) in out.iter_mut().zip(names) {
        let v = line
            .split(',')
            .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .ok_or_else(|| Error(format!("checkpoint field 'epoch_sums' has no '{name}': '{line}'")))?;
        *o = v.parse().map_err(|_| Error(format!("checkpoint field 'epoch_sums': '{name}={v}' is not a number")))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_read_back_to_the_same_bits() {
        let v = [0.1 + 0.2, f64::NAN, 1e-300, -2.5];
        let line = sums_line(&[("a", v[0]), ("b", v[1]), ("c", v[2]), ("d", v[3])]);
        let back = parse_sums(&line, ["a", "b", "c", "d"]).unwrap();
        assert!(v.iter().zip(back).all(|(x, y)| x.to_bits() == y.to_bits()), "{line}");
        assert!(parse_sums(&line, ["e"]).unwrap_err().0.contains("no 'e'"));
        assert!(parse_sums("a=x", ["a"]).unwrap_err().0.contains("'a=x' is not a number"));
    }
}
