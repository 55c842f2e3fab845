//! What a search and a training run share beyond their folder
//! ([`crate::rundir`]): the record a checkpoint keeps of the run itself
//! (settings by flag, the data, epochs done, the log so far), the network's
//! persistent tensors, the resume point, and the `log.jsonl` text.

use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::data::{DataSpec, Dataset};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::hash::Hasher;
use crate::rundir::{Existing, RunDir};
use crate::search::config::differences;
use crate::tape::{Kind, NodeId, Tape};

/// The data a run was made on: image counts (`TRAIN+TEST`) and a hash of
/// every image and label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataId {
    pub images: String,
    pub hash: String,
}

impl DataId {
    pub fn of(train: &Dataset, test: Option<&Dataset>) -> DataId {
        let mut h = Hasher::default();
        train.fingerprint(&mut h);
        if let Some(t) = test {
            t.fingerprint(&mut h);
        }
        DataId {
            images: format!("{}+{}", train.len(), test.map_or(0, |t| t.len())),
            hash: format!("{:016x}", h.finish()),
        }
    }
}

/// What identifies a run in its checkpoint.
pub struct Stamp<'a> {
    /// The checkpoint header's `format` field.
    pub format: &'static str,
    /// Every setting that shapes the run, by flag.
    pub settings: Vec<(&'static str, String)>,
    pub data: &'a DataSpec,
    pub data_id: &'a DataId,
}

impl Stamp<'_> {
    /// Writes the stamp, the epochs done and the log lines into `ck`'s header.
    pub fn write(&self, ck: &mut Checkpoint, epochs_done: usize, log_lines: &[String]) {
        ck.set("format", self.format);
        for (flag, v) in &self.settings {
            ck.set(&format!("setting{flag}"), v);
        }
        ck.set("data_images", &self.data_id.images);
        ck.set("data_hash", &self.data_id.hash);
        ck.set("epochs_done", epochs_done);
        for (i, line) in log_lines.iter().enumerate() {
            ck.set(&format!("log.{i}"), line);
        }
    }

    /// Checks that `ck` belongs to this run (format, settings, data);
    /// returns its epochs done (at most `epochs`) and its log lines.
    pub fn check(&self, ck: &Checkpoint, epochs: usize) -> Result<(usize, Vec<String>)> {
        if ck.get("format") != Some(self.format) {
            crate::bail!("its format is {:?}; expected {}", ck.get("format").unwrap_or("(none)"), self.format);
        }
        let then: Vec<(String, String)> = ck
            .header
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("setting").map(|f| (f.to_string(), v.clone())))
            .collect();
        let diff = differences(&then, &self.settings);
        if !diff.is_empty() {
            crate::bail!("the checkpoint was written with other settings:\n  {}", diff.join("\n  "));
        }
        let (images, hash) = (ck.get("data_images").unwrap_or("?"), ck.get("data_hash").unwrap_or("?"));
        if (images, hash) != (self.data_id.images.as_str(), self.data_id.hash.as_str()) {
            crate::bail!(
                "the checkpoint was made on other data than --data {} holds now: {images} images with hash {hash} \
                 then, {} images with hash {} now",
                self.data,
                self.data_id.images,
                self.data_id.hash
            );
        }
        let done: usize = ck.parse("epochs_done")?;
        if done > epochs {
            crate::bail!("the checkpoint is after epoch {done}, past --epochs {epochs}");
        }
        let log = (0..done)
            .map(|i| ck.get(&format!("log.{i}")).map(String::from).ok_or_else(|| Error(format!("no log line {i}"))))
            .collect::<Result<_>>()?;
        Ok((done, log))
    }
}

/// Parameters and BN running statistics, in recording order: what a
/// checkpoint keeps of a network.
pub fn persistent_nodes(t: &Tape) -> Vec<NodeId> {
    (0..t.nodes.len()).filter(|&i| matches!(t.nodes[i].kind, Kind::Param { .. } | Kind::State { .. })).collect()
}

/// Appends every persistent tensor of `ex` to `ck`, under its node name.
pub fn push_persistent<B: Backend>(ex: &Exec<B>, ck: &mut Checkpoint) -> Result<()> {
    for n in persistent_nodes(&ex.tape) {
        ck.push(ex.tape.nodes[n].name.clone(), ex.get(n)?.iter().map(|&v| v as f32).collect());
    }
    Ok(())
}

/// Loads every persistent tensor of `ex` from `ck`, from tensor `*cur` on.
pub fn take_persistent<B: Backend<Elem = f32>>(ex: &mut Exec<B>, ck: &mut Checkpoint, cur: &mut usize) -> Result<()> {
    for n in persistent_nodes(&ex.tape) {
        let name = ex.tape.nodes[n].name.clone();
        let d = ck.take(cur, &name, ex.shape(n).numel())?;
        ex.set_elems(n, &d)?;
    }
    Ok(())
}

/// The checkpoint a run continues from: `Some` with `--resume` and a
/// checkpoint in the folder; `None` for a new run (also `--resume` on a folder
/// with none of `files`, so a script can always pass it). A folder holding
/// other outputs but no checkpoint is refused.
pub fn resume_point(dir: &RunDir, existing: Existing, files: &[&str], checkpoint: &str) -> Result<Option<Checkpoint>> {
    if existing != Existing::Resume {
        return Ok(None);
    }
    let ck_path = dir.join(checkpoint);
    if ck_path.exists() {
        return Checkpoint::load(&ck_path).map(Some);
    }
    let others: Vec<&str> = files.iter().copied().filter(|f| dir.join(f).exists()).collect();
    if !others.is_empty() {
        crate::bail!(
            "--resume: {} holds {} but no {checkpoint} to resume from; use --force to start over",
            dir.path().display(),
            others.join(", ")
        );
    }
    eprintln!("--resume: no checkpoint in {} yet; starting a new run", dir.path().display());
    Ok(None)
}

/// CPU time this process has used so far, all threads, in seconds (user +
/// system, from `/proc/self/stat`, 10 ms resolution); `None` where there is
/// no such file. Unlike wall time it does not grow when other work shares
/// the machine, so it measures what a step costs on a busy machine too.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, so split after
    // its closing parenthesis): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ, which Linux fixes at 100 for every architecture it exposes it on.
    Some(ticks as f64 / 100.0)
}

/// `log.jsonl`'s text: one line each.
pub fn log_text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A number for a JSON line: `null` where it is not finite.
pub fn json_num(v: f64) -> String {
    if v.is_finite() { format!("{v:.6}") } else { "null".into() }
}

/// The column of a row's largest value (the first of equal ones).
pub fn argmax(row: &[f64]) -> usize {
    row.iter().enumerate().fold(0, |b, (i, v)| if *v > row[b] { i } else { b })
}

/// Fraction of the rows of `logits` whose largest value is at the label.
pub fn accuracy<B: Backend>(ex: &Exec<B>, logits: NodeId, labels: NodeId) -> Result<f64> {
    let z = ex.get(logits)?;
    let l = ex.get(labels)?;
    let k = z.len() / l.len();
    let hits = z.chunks(k).zip(&l).filter(|(row, lab)| argmax(row) == **lab as usize).count();
    Ok(hits as f64 / l.len() as f64)
}

/// Test images to evaluate per epoch: `asked` (an error where the data have
/// no test split), else `default` where they have one, else none.
pub fn eval_images(asked: Option<usize>, test: Option<&Dataset>, default: usize, data: &DataSpec) -> Result<usize> {
    Ok(match (asked, test) {
        (Some(n), None) if n > 0 => crate::bail!(
            "--eval-images {n}: --data {data} has no test split, so there is nothing to evaluate; \
             use --eval-images 0 or data with a test set"
        ),
        (Some(n), _) => n,
        (None, Some(t)) => default.min(t.len()),
        (None, None) => 0,
    })
}
