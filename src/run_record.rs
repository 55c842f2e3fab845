//! What a search and a training run share beyond their folder
//! ([`crate::rundir`]): the record a checkpoint keeps of the run itself
//! (settings by flag, the data, epochs done, the log so far), the network's
//! persistent tensors, the resume point, and the `log.jsonl` text.

use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::data::{DataSpec, Dataset};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::flags::differences;
use crate::hash::Hasher;
use crate::rundir::{Existing, RunDir};
use crate::tape::{Kind, NodeId, Tape};

/// The `format` header field of a search's checkpoint (`rarts search`; the
/// file format itself is versioned by [`crate::checkpoint::VERSION`]).
/// Format 4 may be written inside an epoch (its `step` and `epoch_sums`).
pub const SEARCH_FORMAT: &str = "rarts-search-4";
/// The `format` of a training's checkpoint (`rarts train`); format 2 may
/// be written inside an epoch.
pub const TRAIN_FORMAT: &str = "rarts-train-2";
/// Older formats still read: each is its successor written only at the
/// end of an epoch.
pub const OLDER_FORMATS: [&str; 2] = ["rarts-search-3", "rarts-train-1"];

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
        // Timings apart from the state: two runs of the same work (one of
        // them killed and resumed) then differ only under `timing.`.
        for (i, line) in log_lines.iter().enumerate() {
            let (rest, timing) = split_timings(line);
            ck.set(&format!("log.{i}"), rest);
            if let Some(t) = timing {
                ck.set(&format!("{TIMING_KEY}{i}"), t);
            }
        }
    }

    /// Checks that `ck` belongs to this run (format, settings, data);
    /// returns its epochs done (at most `epochs`) and its log lines.
    pub fn check(&self, ck: &Checkpoint, epochs: usize) -> Result<(usize, Vec<String>)> {
        let format = ck.get("format").unwrap_or("(none)");
        if !reads_as(format, self.format) {
            crate::bail!("its format is {format:?}; expected {} (or an older one this version reads)", self.format);
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
            .map(|i| {
                let rest = ck.get(&format!("log.{i}")).ok_or_else(|| Error(format!("no log line {i}")))?;
                Ok(join_timings(rest, ck.get(&format!("{TIMING_KEY}{i}"))))
            })
            .collect::<Result<_>>()?;
        Ok((done, log))
    }
}

/// Whether a checkpoint of format `found` reads as one of format `current`:
/// the same, or an older format of the same kind of run.
pub fn reads_as(found: &str, current: &str) -> bool {
    fn kind(f: &str) -> Option<&str> {
        f.rsplit_once('-').map(|x| x.0)
    }
    found == current || OLDER_FORMATS.iter().any(|f| *f == found && kind(f) == kind(current))
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

/// The checkpoint header keys (`timing.N`) that hold log line N's timings.
pub const TIMING_KEY: &str = "timing.";

/// The fields of a log line that measure time, which two runs of the same
/// work never share. Each log line writes them last, from the first of them
/// to its end.
pub const TIMING_FIELDS: [&str; 4] = ["step_ms", "step_ms_median", "step_cpu_ms", "epoch_s"];

/// A log line without its timing fields, and those fields as a JSON object
/// (`None` for a line with none). [`join_timings`] puts the line together again.
pub fn split_timings(line: &str) -> (String, Option<String>) {
    let at = TIMING_FIELDS.iter().filter_map(|f| line.find(&format!(",\"{f}\":"))).min();
    match at {
        Some(i) if line.ends_with('}') => (format!("{}}}", &line[..i]), Some(format!("{{{}", &line[i + 1..]))),
        _ => (line.to_string(), None),
    }
}

/// The line [`split_timings`] took apart, byte for byte.
pub fn join_timings(rest: &str, timing: Option<&str>) -> String {
    match (timing, rest.strip_suffix('}')) {
        (Some(t), Some(head)) if t.len() > 2 => format!("{head},{}", &t[1..]),
        _ => rest.to_string(),
    }
}

/// What differs between two run folders that did the same work, with
/// timings left out: every header value and every tensor's bytes of their
/// checkpoints but the `timing.` entries; every log line but its timing
/// fields; every other file rarts wrote (the α trace, genotypes, the table's
/// references, the trained model) byte for byte. Empty: the same run. This
/// is what "a resumed run ends with the same checkpoint and log" means.
pub fn run_differences(a: &std::path::Path, b: &std::path::Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let read = |d: &std::path::Path, f: &str| std::fs::read(d.join(f)).ok();
    match (read(a, "checkpoint.bin").is_some(), read(b, "checkpoint.bin").is_some()) {
        (true, true) => {
            let (ca, cb) = (Checkpoint::load(&a.join("checkpoint.bin"))?, Checkpoint::load(&b.join("checkpoint.bin"))?);
            let state = |c: &Checkpoint| -> Vec<(String, String)> {
                c.header.iter().filter(|(k, _)| !k.starts_with(TIMING_KEY)).cloned().collect()
            };
            let (ha, hb) = (state(&ca), state(&cb));
            for (k, v) in &ha {
                match hb.iter().find(|(kb, _)| kb == k) {
                    Some((_, w)) if w == v => {}
                    Some((_, w)) => out.push(format!("checkpoint.bin: {k}: {v} / {w}")),
                    None => out.push(format!("checkpoint.bin: {k} only in the first")),
                }
            }
            for (k, _) in hb.iter().filter(|(k, _)| !ha.iter().any(|(ka, _)| ka == k)) {
                out.push(format!("checkpoint.bin: {k} only in the second"));
            }
            if ha.iter().map(|e| &e.0).ne(hb.iter().map(|e| &e.0)) && out.is_empty() {
                out.push("checkpoint.bin: the header's keys come in another order".into());
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            if ca.tensors.len() != cb.tensors.len() {
                out.push(format!("checkpoint.bin: {} / {} tensors", ca.tensors.len(), cb.tensors.len()));
            }
            for ((na, va), (nb, vb)) in ca.tensors.iter().zip(&cb.tensors) {
                if na != nb {
                    out.push(format!("checkpoint.bin: tensor {na} / {nb}"));
                } else if bits(va) != bits(vb) {
                    out.push(format!("checkpoint.bin: tensor {na} differs"));
                }
            }
        }
        (false, false) => {}
        _ => out.push("checkpoint.bin in one folder only".into()),
    }
    let lines = |d: &std::path::Path| -> Option<Vec<String>> {
        Some(String::from_utf8(read(d, "log.jsonl")?).ok()?.lines().map(|l| split_timings(l).0).collect())
    };
    if lines(a) != lines(b) {
        out.push("log.jsonl: the lines differ beyond their timings".into());
    }
    for f in ["alpha.jsonl", "genotype.txt", "genotype.json", "bench.json", "model.safetensors"] {
        if read(a, f) != read(b, f) {
            out.push(format!("{f} differs"));
        }
    }
    Ok(out)
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
