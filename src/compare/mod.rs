//! `rarts compare`: the paper's comparison in one command, in DARTS' space
//! or NB201's (the width space's, beside pruning baselines, is in
//! `width.rs`). For each method (RARTS, DARTS first and second order, and a
//! random cell) and each seed: search (the same data, steps and `α`
//! learning rate for every method), retrain the architecture from scratch,
//! and read its test accuracy; then one table in `DIR/results.md`. Every
//! job resumes from its checkpoint and is skipped once done, so the whole
//! can be stopped and run again.

use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::error::{Context, Error, Result};
use crate::rundir::{Existing, RunOptions};
use crate::search::algo::{Algo, Schedule};
use crate::search::config::{SearchConfig, StepConfig};
use crate::search::driver;
use crate::space::SpaceKind;
use crate::space::nb201::table::{Accuracies, Nb201Table};
use crate::space::nb201::{self, Nb201Cell};
use crate::train::{self, TrainConfig};

mod jobs;
mod plan;
mod presets;
pub mod slurm;
mod table;
mod width;

pub use jobs::{Invocation, JOBS_FILE, Job, JobKind, read_jobs};
pub use plan::PLAN_FILE;

/// The methods compared, in table order: the search algorithms, then a
/// random cell (`None`: nothing searched).
pub const METHODS: [Option<Algo>; 4] = [Some(Algo::Rarts), Some(Algo::Darts1), Some(Algo::Darts2), None];

/// A method's name in the table and in its jobs' folder names.
fn method_name(method: Option<Algo>) -> &'static str {
    method.map_or("random", |a| a.name())
}

/// A comparison's settings.
#[derive(Clone, Debug)]
pub struct Preset {
    pub name: &'static str,
    pub seeds: Vec<u64>,
    /// Search settings shared by every method (`algo`, `seed`, `out` are set per job).
    pub search: SearchConfig,
    /// Retraining settings (`genotype`, `seed`, `out` are set per job).
    pub train: TrainConfig,
    /// Width: fine-tuning the L1-pruned network (`genotype`, `seed`,
    /// `out`, `init_from` are set per job); `None` elsewhere.
    pub finetune: Option<TrainConfig>,
    /// Whether each cell is retrained; NB201 with a table may leave it to
    /// the table (`--no-retrain`).
    pub retrain: bool,
}

/// One method on one seed.
#[derive(Clone, Debug, Default)]
struct Outcome {
    /// NB201 with a table: the cell's three accuracies from it.
    bench: Option<Accuracies>,
    /// What the search cost (none for random).
    search: Option<Cost>,
    /// Largest |softmax(α) − 1/K| at the end of the search (K ops).
    alpha_spread: Option<f64>,
    genotype: String,
    /// NB201: the cell's edges per op, in `nb201::OPS` order.
    op_counts: Option<[usize; nb201::OPS.len()]>,
    /// NB201: the cell's output does not depend on its input.
    cut_off: bool,
    /// After retraining (none when the table is the only judge).
    test_acc: Option<f64>,
}

/// Runs (or continues) every job of `preset` into `out`, then writes
/// `out/results.md` and returns its text. Seed by seed, so that a
/// comparison stopped part-way has whole seeds. `table` (NB201) judges
/// each cell; the searches log its accuracies every epoch. The jobs are
/// written to `out/jobs.tsv` first (see [`jobs`]).
pub fn compare<B: Backend<Elem = f32>>(
    make: impl Fn() -> Result<B>,
    preset: &Preset,
    invocation: &Invocation,
    out: &Path,
    table: Option<&Nb201Table>,
) -> Result<String> {
    let plan = prepare(preset, invocation, out, table)?;
    for job in &plan {
        if job.kind != JobKind::Results {
            run_job(&make, preset, out, table, job)?;
        }
    }
    results(&make, preset, out, table)
}

/// Checks `out` and the settings, records the plan and the jobs; the jobs.
pub fn prepare(preset: &Preset, invocation: &Invocation, out: &Path, table: Option<&Nb201Table>) -> Result<Vec<Job>> {
    if matches!(preset.name, "paper" | "cifar-cpu") {
        plan::cifar_sized(&preset.search.step.data, preset.name)?;
    }
    plan::check_plan(out, preset)?;
    if preset.search.step.space != SpaceKind::Width && !preset.retrain && table.is_none() {
        crate::bail!(
            "compare --preset {}: nothing would judge the cells: retraining is off and no NAS-Bench-201 table is \
             given; expected --nb201-table FILE (or {}), or retraining",
            preset.name,
            nb201::table::ENV
        );
    }
    if let Some(t) = table {
        crate::rundir::write_atomic(
            &out.join(nb201::table::REFERENCE_FILE),
            (nb201::table::reference_json(t) + "\n").as_bytes(),
        )?;
    }
    let plan = jobs::plan(preset, out, table);
    jobs::write(out, invocation, &plan)?;
    Ok(plan)
}

/// Whether every search and training of `plan` has finished (the table
/// then needs only `results`).
pub fn all_done(preset: &Preset, out: &Path, plan: &[Job]) -> bool {
    plan.iter().filter(|j| !matches!(j.kind, JobKind::Results | JobKind::Widths)).all(|j| jobs::done(preset, out, j))
        && !plan.iter().any(|j| j.kind == JobKind::Widths && !jobs::done(preset, out, j))
}

/// Runs (or continues, or skips when done) one job of the comparison.
pub fn run_job<B: Backend<Elem = f32>>(
    make: &impl Fn() -> Result<B>,
    preset: &Preset,
    out: &Path,
    table: Option<&Nb201Table>,
    job: &Job,
) -> Result<()> {
    match &job.kind {
        JobKind::Search { algo, seed } => search_job(make, preset, out, *algo, *seed, table).map(drop),
        JobKind::Train { method, seed } => {
            let genotype = genotype_source(out, *method, *seed);
            train_job(make, &preset.train, &genotype, *seed, &out.join(&job.id), None).map(drop)
        }
        JobKind::Widths => width::compare_widths(make, preset, out).map(drop),
        JobKind::Results => results(make, preset, out, table).map(drop),
    }
}

/// Writes `out/results.md` from the finished jobs (refusing, with their
/// names, when some are not done) and returns its text.
pub fn results<B: Backend<Elem = f32>>(
    make: &impl Fn() -> Result<B>,
    preset: &Preset,
    out: &Path,
    table: Option<&Nb201Table>,
) -> Result<String> {
    if preset.search.step.space == SpaceKind::Width {
        // Its jobs depend on each other's outcomes: one job, which runs
        // (or finds done) them all and writes the table.
        return width::compare_widths(make, preset, out);
    }
    let left: Vec<String> = jobs::plan(preset, out, table)
        .into_iter()
        .filter(|j| j.kind != JobKind::Results && !jobs::done(preset, out, j))
        .map(|j| j.id)
        .collect();
    if !left.is_empty() {
        crate::bail!(
            "--out {}: {} job(s) not done yet: {}; expected every search and training finished before the table",
            out.display(),
            left.len(),
            left.join(", ")
        );
    }
    let mut per_method: Vec<Vec<Outcome>> = vec![Vec::new(); METHODS.len()];
    for &seed in &preset.seeds {
        for (m, method) in METHODS.into_iter().enumerate() {
            per_method[m].push(outcome(preset, out, method, seed, table)?);
        }
    }
    let rows: Vec<(&str, Vec<Outcome>)> =
        METHODS.into_iter().zip(per_method).map(|(m, o)| (method_name(m), o)).collect();
    let text = table::report(preset, &rows, table);
    crate::rundir::write_atomic(&out.join("results.md"), text.as_bytes())?;
    crate::report::write_during_run(out);
    Ok(text)
}

/// Where a method's cell on `seed` comes from: its search's folder, or a
/// random cell.
fn genotype_source(out: &Path, method: Option<Algo>, seed: u64) -> String {
    match method {
        Some(algo) => out.join(format!("search-{}-s{seed}", algo.name())).display().to_string(),
        None => format!("random:{seed}"),
    }
}

/// What a method's finished jobs on `seed` came to, read from their folders.
fn outcome(preset: &Preset, out: &Path, algo: Option<Algo>, seed: u64, table: Option<&Nb201Table>) -> Result<Outcome> {
    let method = method_name(algo);
    let mut o = Outcome::default();
    let genotype_source = genotype_source(out, algo, seed);
    if algo.is_some() {
        let dir = Path::new(&genotype_source);
        (o.search, o.alpha_spread) = (Some(search_cost(dir)?), Some(alpha_spread(dir, preset.search.step.space)?));
    }
    if preset.retrain {
        o.test_acc = Some(test_accuracy(&out.join(format!("train-{method}-s{seed}")))?);
    }
    match preset.search.step.space {
        SpaceKind::Darts => o.genotype = crate::genotype::Genotype::from_source(&genotype_source)?.to_text(),
        SpaceKind::Nb201 => {
            let cell = Nb201Cell::from_source(&genotype_source)?;
            o.genotype = cell.to_arch_str();
            o.op_counts = Some(std::array::from_fn(|k| cell.ops.iter().filter(|&&op| op == k).count()));
            o.cut_off = !cell.input_reaches_output();
            o.bench = table.map(|t| t.get(&cell));
        }
        SpaceKind::Width => crate::bail!("compare: the width space has its own comparison (compare::width)"),
    }
    Ok(o)
}

/// A finished search.
struct Searched {
    dir: PathBuf,
    cost: Cost,
    /// Largest |softmax(α) − 1/K| at its end.
    alpha_spread: f64,
}

/// Runs (or continues, or skips when done) `algo`'s search on `seed` into
/// `out/search-ALGO-sSEED`.
fn search_job<B: Backend<Elem = f32>>(
    make: &impl Fn() -> Result<B>,
    preset: &Preset,
    out: &Path,
    algo: Algo,
    seed: u64,
    table: Option<&Nb201Table>,
) -> Result<Searched> {
    let cfg = search_config(preset, out, algo, seed, table);
    let dir = cfg.run.out.clone();
    if !done_search(&dir, cfg.epochs) {
        eprintln!("compare: search {} seed {seed} -> {}", algo.name(), dir.display());
        driver::search(make()?, &cfg)?;
    }
    Ok(Searched { cost: search_cost(&dir)?, alpha_spread: alpha_spread(&dir, preset.search.step.space)?, dir })
}

/// The search of `algo` on `seed`, into `out/search-ALGO-sSEED`.
fn search_config(preset: &Preset, out: &Path, algo: Algo, seed: u64, table: Option<&Nb201Table>) -> SearchConfig {
    let dir = out.join(format!("search-{}-s{seed}", algo.name()));
    SearchConfig {
        step: StepConfig { algo, schedule: Schedule::Fused, seed, ..preset.search.step.clone() },
        run: RunOptions { out: dir, existing: Existing::Resume, ..preset.search.run.clone() },
        nb201_table: table.map(|t| t.path().to_path_buf()),
        ..preset.search.clone()
    }
}

/// The training `base` of `genotype` on `seed` into `dir`, from
/// `init_from`'s weights when given.
fn train_config(base: &TrainConfig, genotype: &str, seed: u64, dir: &Path, init_from: Option<&Path>) -> TrainConfig {
    TrainConfig {
        genotype: genotype.to_string(),
        seed,
        run: RunOptions { out: dir.to_path_buf(), existing: Existing::Resume, ..base.run.clone() },
        init_from: init_from.map(Path::to_path_buf),
        ..base.clone()
    }
}

/// Runs (or continues, or skips when done) the training `base` of the
/// architecture `genotype` on `seed` into `dir`, from `init_from`'s weights
/// when given; returns the test accuracy after its last epoch.
fn train_job<B: Backend<Elem = f32>>(
    make: &impl Fn() -> Result<B>,
    base: &TrainConfig,
    genotype: &str,
    seed: u64,
    dir: &Path,
    init_from: Option<&Path>,
) -> Result<f64> {
    let cfg = train_config(base, genotype, seed, dir, init_from);
    if !done_training(dir, &cfg) {
        eprintln!("compare: train {genotype} seed {seed} -> {}", dir.display());
        train::train(make()?, &cfg)?;
    }
    test_accuracy(dir)
}

/// Whether the training `cfg` into `dir` has run all its epochs.
fn done_training(dir: &Path, cfg: &TrainConfig) -> bool {
    log_lines(&dir.join("log.jsonl")).len() >= cfg.recipe().epochs
}

/// The test accuracy after the last epoch of the training in `dir`.
fn test_accuracy(dir: &Path) -> Result<f64> {
    let log = log_lines(&dir.join("log.jsonl"));
    let last = log.last().ok_or_else(|| Error(format!("{}: no log after training", dir.display())))?;
    field(last, "acc_test").ok_or_else(|| Error(format!("{}: no test accuracy", dir.display())))
}

fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).map(|t| t.lines().map(String::from).collect()).unwrap_or_default()
}

/// The number after `"key":` in a JSON line.
fn field(line: &str, key: &str) -> Option<f64> {
    let v = line.split(&format!("\"{key}\":")).nth(1)?;
    v.split([',', '}']).next()?.trim().parse().ok()
}

fn done_search(dir: &Path, epochs: usize) -> bool {
    dir.join("genotype.json").exists() && log_lines(&dir.join("log.jsonl")).len() >= epochs
}

/// What a search cost, from its log.
#[derive(Clone, Copy, Debug)]
struct Cost {
    /// Wall ms per step: the mean over epochs of each epoch's median step
    /// (its mean in a log written before medians were logged), so that a few
    /// steps slowed by other work move it little.
    step_ms: f64,
    /// Wall seconds of stepping.
    total_s: f64,
    /// CPU ms per step, all threads: what a step costs even while the machine
    /// is shared the whole time; `None` when an epoch did not record it.
    cpu_ms: Option<f64>,
}

fn search_cost(dir: &Path) -> Result<Cost> {
    let (mut typical, mut total, mut cpu, mut steps) = (0.0, 0.0, Some(0.0), 0.0);
    for l in log_lines(&dir.join("log.jsonl")) {
        let (m, s) = (field(&l, "step_ms"), field(&l, "steps"));
        let (Some(m), Some(s)) = (m, s) else { crate::bail!("{}: log line without step_ms/steps", dir.display()) };
        typical += field(&l, "step_ms_median").unwrap_or(m) * s;
        total += m * s;
        cpu = cpu.zip(field(&l, "step_cpu_ms")).map(|(a, c)| a + c * s);
        steps += s;
    }
    let steps = f64::max(steps, 1.0);
    Ok(Cost { step_ms: typical / steps, total_s: total / 1e3, cpu_ms: cpu.map(|c| c / steps) })
}

/// Largest |softmax(α) − 1/K| over every α matrix, from `genotype.json`.
fn alpha_spread(dir: &Path, space: SpaceKind) -> Result<f64> {
    let path = dir.join("genotype.json");
    let text = std::fs::read_to_string(&path).ctx(|| format!("reading {}", path.display()))?;
    let mut spread: f64 = 0.0;
    let (keys, k): (&[&str], usize) = match space {
        SpaceKind::Darts => (&["softmax_alpha_normal", "softmax_alpha_reduce"], crate::space::darts::PRIMITIVES.len()),
        SpaceKind::Nb201 => (&["softmax_alpha"], nb201::OPS.len()),
        SpaceKind::Width => (&["softmax_alpha"], crate::space::width::FRACTIONS.len()),
    };
    for &key in keys {
        let rest =
            text.split(&format!("\"{key}\":")).nth(1).ok_or_else(|| Error(format!("{}: no {key}", path.display())))?;
        let body = &rest[..rest.find("]]").map_or(rest.len(), |i| i + 2)];
        for v in body
            .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
            .filter_map(|s| s.parse::<f64>().ok())
        {
            spread = spread.max((v - 1.0 / k as f64).abs());
        }
    }
    Ok(spread)
}

/// Mean and sample standard deviation (of one value: 0).
pub(crate) fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (m, var.sqrt())
}

/// Where `rarts compare` writes by default.
pub fn default_out(space: SpaceKind, preset: &str) -> PathBuf {
    match space {
        SpaceKind::Darts => PathBuf::from(format!("runs/compare-{preset}")),
        other => PathBuf::from(format!("runs/compare-{}-{preset}", other.name())),
    }
}
