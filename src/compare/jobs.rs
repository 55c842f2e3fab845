//! A comparison's jobs as data: each search and training with its folder
//! (which is also its name), its settings and the job it waits for, and the
//! last job that writes the table. `rarts compare` writes them into
//! `DIR/jobs.tsv` with the arguments that made the comparison, so that one
//! job (`rarts compare --out DIR --job ID`, what a Slurm task runs), the
//! table or a resubmission can be made from the folder alone, on any
//! machine that sees it.

use std::path::{Path, PathBuf};

use super::{METHODS, Preset, done_search, done_training, method_name, search_config, train_config};
use crate::data::DataSpec;
use crate::error::{Context, Error, Result};
use crate::search::algo::Algo;
use crate::space::SpaceKind;
use crate::space::nb201::table::{self, Nb201Table};

/// The file of a comparison's jobs.
pub const JOBS_FILE: &str = "jobs.tsv";
const HEADER: &str = "rarts-compare-jobs v1";

/// The arguments of `rarts compare` that make a comparison: its space,
/// preset, data, the NAS-Bench-201 table (resolved to a path) and whether
/// cells are retrained.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub space: SpaceKind,
    pub preset: String,
    pub data: Option<DataSpec>,
    pub nb201_table: Option<PathBuf>,
    pub no_retrain: bool,
}

impl Invocation {
    /// The comparison's settings.
    pub fn preset(&self) -> Result<Preset> {
        let mut p = Preset::of(self.space, &self.preset, self.data.clone())?;
        p.retrain &= !self.no_retrain;
        Ok(p)
    }

    /// The table that judges its cells (NB201 only).
    pub fn table(&self) -> Result<Option<Nb201Table>> {
        match self.space {
            SpaceKind::Nb201 => table::from_flag(self.nb201_table.as_deref()),
            _ => Ok(None),
        }
    }

    /// As `rarts compare` flags, one per field.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("--space", self.space.name().to_string()), ("--preset", self.preset.clone())];
        if let Some(d) = &self.data {
            v.push(("--data", d.to_string()));
        }
        if let Some(t) = &self.nb201_table {
            v.push(("--nb201-table", t.display().to_string()));
        }
        if self.no_retrain {
            v.push(("--no-retrain", String::new()));
        }
        v
    }
}

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// A method's search on a seed.
    Search { algo: Algo, seed: u64 },
    /// Retraining a method's cell (`None`: a random cell) on a seed.
    Train { method: Option<Algo>, seed: u64 },
    /// The width space's whole comparison: its trainings depend on what
    /// its searches and its full network came to, so it is one job.
    Widths,
    /// `results.md` from every other job.
    Results,
}

/// One job of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Its name, and its folder under the comparison's.
    pub id: String,
    pub kind: JobKind,
    /// The jobs it waits for.
    pub after: Vec<String>,
    /// Its settings, as flags (for reading; the job runs from the preset).
    pub settings: String,
}

/// Every job of `preset` into `out`, seed by seed, each search before the
/// retraining of its cell, the table last.
pub fn plan(preset: &Preset, out: &Path, table: Option<&Nb201Table>) -> Vec<Job> {
    let flags =
        |v: Vec<(&'static str, String)>| v.into_iter().map(|(f, x)| format!("{f} {x}")).collect::<Vec<_>>().join(" ");
    if preset.search.step.space == SpaceKind::Width {
        let settings = format!("rarts compare --space width --preset {} --out {}", preset.name, out.display());
        return vec![Job { id: "widths".into(), kind: JobKind::Widths, after: vec![], settings }];
    }
    let mut jobs = Vec::new();
    for &seed in &preset.seeds {
        for method in METHODS {
            let mut after = vec![];
            let genotype = match method {
                Some(algo) => {
                    let cfg = search_config(preset, out, algo, seed, table);
                    let id = format!("search-{}-s{seed}", algo.name());
                    let settings = format!("rarts search {} --out {}", flags(cfg.identity()), cfg.run.out.display());
                    jobs.push(Job { id: id.clone(), kind: JobKind::Search { algo, seed }, after: vec![], settings });
                    after.push(id);
                    cfg.run.out.display().to_string()
                }
                None => format!("random:{seed}"),
            };
            if preset.retrain {
                let id = format!("train-{}-s{seed}", method_name(method));
                let cfg = train_config(&preset.train, &genotype, seed, &out.join(&id), None);
                let settings = format!("rarts train {} --out {}", flags(cfg.identity()), cfg.run.out.display());
                jobs.push(Job { id, kind: JobKind::Train { method, seed }, after, settings });
            }
        }
    }
    let after = jobs.iter().map(|j| j.id.clone()).collect();
    let settings = format!("rarts compare --out {} --job results", out.display());
    jobs.push(Job { id: "results".into(), kind: JobKind::Results, after, settings });
    jobs
}

/// Whether `job` has finished (a search or training with all its epochs,
/// the table written).
pub fn done(preset: &Preset, out: &Path, job: &Job) -> bool {
    match job.kind {
        JobKind::Search { algo, seed } => {
            let cfg = search_config(preset, out, algo, seed, None);
            done_search(&cfg.run.out, cfg.epochs)
        }
        JobKind::Train { .. } => {
            let cfg = train_config(&preset.train, "", 0, &out.join(&job.id), None);
            done_training(&cfg.run.out, &cfg)
        }
        JobKind::Widths | JobKind::Results => out.join("results.md").exists(),
    }
}

/// Writes `out/jobs.tsv`: the invocation, then a line per job (its name,
/// the jobs it waits for, its settings), tab-separated.
pub fn write(out: &Path, invocation: &Invocation, jobs: &[Job]) -> Result<()> {
    let mut text = format!("{HEADER}\ninvocation");
    for (flag, v) in invocation.fields() {
        if v.contains(['\t', '\n']) {
            crate::bail!("{flag} {v:?}: a value with a tab or a line break cannot be recorded in {JOBS_FILE}");
        }
        text += &format!("\t{flag}\t{v}");
    }
    text += "\n# job\twaits for\tsettings\n";
    for j in jobs {
        let after = if j.after.is_empty() { "-".to_string() } else { j.after.join(",") };
        text += &format!("{}\t{after}\t{}\n", j.id, j.settings);
    }
    crate::rundir::write_atomic(&out.join(JOBS_FILE), text.as_bytes())
}

/// The invocation recorded in `out/jobs.tsv`, and the jobs' names.
pub fn read_jobs(out: &Path) -> Result<(Invocation, Vec<String>)> {
    let path = out.join(JOBS_FILE);
    let text = std::fs::read_to_string(&path).ctx(|| {
        format!(
            "--out {}: no comparison there ({} could not be read; `rarts compare` writes it)",
            out.display(),
            path.display()
        )
    })?;
    let bad = |what: String| Error(format!("{}: {what}", path.display()));
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(bad(format!("expected '{HEADER}' on its first line")));
    }
    let inv =
        lines.next().and_then(|l| l.strip_prefix("invocation\t")).ok_or_else(|| bad("no invocation line".into()))?;
    let tokens: Vec<&str> = inv.split('\t').collect();
    let mut it = tokens.chunks(2);
    let (mut space, mut preset, mut data, mut nb201_table, mut no_retrain) = (None, None, None, None, false);
    for pair in &mut it {
        let [flag, v] = pair else { return Err(bad(format!("invocation: '{}' has no value", pair[0]))) };
        match *flag {
            "--space" => {
                space = Some(
                    <SpaceKind as clap::ValueEnum>::from_str(v, false)
                        .map_err(|_| bad(format!("invocation: --space '{v}'")))?,
                )
            }
            "--preset" => preset = Some(v.to_string()),
            "--data" => data = Some(v.parse().map_err(|e| bad(format!("invocation: --data: {e}")))?),
            "--nb201-table" => nb201_table = Some(PathBuf::from(v)),
            "--no-retrain" => no_retrain = true,
            other => return Err(bad(format!("invocation: unknown flag '{other}'"))),
        }
    }
    let invocation = Invocation {
        space: space.ok_or_else(|| bad("invocation without --space".into()))?,
        preset: preset.ok_or_else(|| bad("invocation without --preset".into()))?,
        data,
        nb201_table,
        no_retrain,
    };
    let ids = lines.filter(|l| !l.starts_with('#')).filter_map(|l| l.split('\t').next()).map(String::from).collect();
    Ok((invocation, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jobs_file_reads_back_its_invocation() {
        let out = std::env::temp_dir().join(format!("rarts-jobs-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let inv = Invocation {
            space: SpaceKind::Nb201,
            preset: "smoke".into(),
            data: Some(DataSpec::Embedded),
            nb201_table: Some("/some where/table.csv".into()),
            no_retrain: true,
        };
        let p = inv.preset().unwrap();
        let jobs = plan(&p, &out, None);
        // NB201 smoke without retraining: 3 searches per seed, then the table.
        assert_eq!(jobs.len(), 3 * p.seeds.len() + 1);
        assert_eq!(jobs.last().unwrap().after.len(), jobs.len() - 1);
        write(&out, &inv, &jobs).unwrap();
        let (back, ids) = read_jobs(&out).unwrap();
        assert_eq!(back, inv);
        assert_eq!(ids, jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>());
        let with_retraining = Invocation { no_retrain: false, ..inv }.preset().unwrap();
        let jobs = plan(&with_retraining, &out, None);
        let train = jobs.iter().find(|j| j.id == "train-rarts-s0").unwrap();
        assert_eq!(train.after, vec!["search-rarts-s0".to_string()]);
        assert!(jobs.iter().find(|j| j.id == "train-random-s0").unwrap().after.is_empty());
        std::fs::remove_dir_all(&out).unwrap();
    }
}
