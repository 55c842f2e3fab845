//! `rarts search`: the supernet on real data, end to end — the epoch and
//! step loop with the cosine learning-rate schedule, the progress line, the
//! per-epoch log line and checkpoint, resume, and the genotype at the end.

use std::time::Instant;

use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::epochs::{self, EpochJob, Position, parse_sums, sums_line};
use crate::error::{Error, Result};
use crate::run_record;
use crate::rundir::RunDir;
use crate::search::algo::{Algo, Search};
use crate::search::config::SearchConfig;
use crate::search::log::{ALPHA_MOVED, EpochLog, alpha_json, alpha_spread, log_json};
use crate::search::prepare::{Prepared, prepare};
use crate::search::resume::{restore, save};
use crate::space::nb201::Nb201Cell;
use crate::space::nb201::table::{self, Nb201Table};
use crate::space::{Alphas, Derived, SpaceKind};

/// The files a search writes into `--out` (besides its lock file); `--force`
/// removes these and nothing else.
pub const RUN_FILES: [&str; 6] =
    ["checkpoint.bin", "log.jsonl", "genotype.txt", "genotype.json", "alpha.jsonl", BENCH_REFERENCE];
const CHECKPOINT: &str = RUN_FILES[0];
const LOG: &str = RUN_FILES[1];
/// softmax(α) every `--alpha-every` steps, a line each.
const ALPHA_LOG: &str = RUN_FILES[4];
/// NB201 with a table: the table's best, median and mean per data set and
/// the published DARTS result, so that a report draws them without the table.
const BENCH_REFERENCE: &str = table::REFERENCE_FILE;
/// Samples of α per epoch when `--alpha-every` is not given.
const ALPHA_SAMPLES: usize = 24;

/// The outcome of a search.
pub struct SearchResult {
    /// What α stands for at the end (`genotype.txt`, `genotype.json`).
    pub found: Derived,
    pub epochs: Vec<EpochLog>,
    pub weights: usize,
    /// Largest |softmax(α) − 1/K| at the end.
    pub alpha_spread: f64,
    /// K: the ops of each edge.
    pub ops: usize,
}

impl SearchResult {
    /// The warning for a search whose α has moved too little for its
    /// genotype to mean anything (below [`ALPHA_MOVED`]).
    pub fn alpha_warning(&self, cfg: &SearchConfig) -> Option<String> {
        let (k, spread) = (self.ops, self.alpha_spread);
        (spread < ALPHA_MOVED).then(|| {
            format!(
                "α has hardly moved: every op of every edge is within {spread:.4} of 1/{k}, so the genotype is \
                 decided by noise; search longer (--epochs, --steps-per-epoch) or raise --arch-lr (now {})",
                cfg.step.arch_lr
            )
        })
    }

    /// What the end of a search prints on stdout: how far α moved, where the
    /// results are, and the command that trains what was found.
    pub fn closing(&self, cfg: &SearchConfig) -> String {
        let (k, spread) = (self.ops, self.alpha_spread);
        let dir = cfg.run.out.display();
        let mut s = format!(
            "α moved: largest |softmax(α) − 1/{k}| = {spread:.4} (a genotype means something from {ALPHA_MOVED} on)\n"
        );
        s += &format!("results: {dir}/genotype.txt, {dir}/genotype.json, {dir}/report.html\n");
        let space = match cfg.step.space {
            SpaceKind::Darts => String::new(),
            other => format!(" --space {}", other.name()),
        };
        let flag = if cfg.step.space == SpaceKind::Width { "--widths" } else { "--genotype" };
        s += &format!("next: rarts train{space} {flag} {dir} --data {} --out {dir}-train\n", cfg.step.data);
        s
    }
}

/// Runs (or resumes) a search on backend `be`, writing into `cfg.run.out`.
pub fn search<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig) -> Result<SearchResult> {
    cfg.validate()?;
    // The lock first: a second process on the same folder stops at once.
    let files = crate::report::with_report_files(&RUN_FILES);
    let dir = RunDir::open(&cfg.run.out, "--out", &files, cfg.run.existing)?;
    let device = be.name();
    // The table before the data: a bad table costs nothing to find out.
    let table = match cfg.step.space {
        SpaceKind::Nb201 => table::from_flag(cfg.nb201_table.as_deref())?,
        _ => None,
    };
    let p = prepare(be, cfg)?;
    let ck_path = dir.join(CHECKPOINT);
    let (steps, weights) = (p.steps, p.weights);
    let mut job = SearchEpochs {
        cfg,
        p,
        table,
        log: EpochLog::default(),
        epochs: Vec::new(),
        log_lines: Vec::new(),
        alpha_lines: Vec::new(),
        t_run: Instant::now(),
        t_epoch: Instant::now(),
        step_ms: Vec::with_capacity(steps),
        cpu_start: None,
        done_steps: 0,
        total_steps: 0,
        alpha_every: cfg.alpha_every.unwrap_or((steps / ALPHA_SAMPLES).max(1)),
    };
    let mut from = Position::default();
    if let Some(ck) = run_record::resume_point(&dir, cfg.run.existing, &files, CHECKPOINT)? {
        let p = &mut job.p;
        let tag = |e: Error| Error(format!("--resume from {}: {e}", ck_path.display()));
        from = Position::of(&ck, steps).map_err(tag)?;
        (_, job.log_lines, job.alpha_lines) =
            restore(&mut p.search, &mut p.feed.sampler, cfg, &p.data_id, ck).map_err(tag)?;
        // The logs as of the checkpoint (a later line may have been cut off).
        dir.write(LOG, run_record::log_text(&job.log_lines).as_bytes())?;
        dir.write(ALPHA_LOG, run_record::log_text(&job.alpha_lines).as_bytes())?;
        eprintln!("resuming from {} after {}", ck_path.display(), from.show());
    }
    if let Some(t) = &job.table {
        dir.write(BENCH_REFERENCE, (table::reference_json(t) + "\n").as_bytes())?;
        println!("NAS-Bench-201 table: {} (judges the cell after every epoch)", t.path().display());
    }
    println!("device: {device}");
    println!("weights: {weights}");
    let (val_elems, grad_elems) = job.p.search.ex.plan_elems();
    let gib = |e: usize| (e * 4) as f64 / (1u64 << 30) as f64;
    println!(
        "memory: {:.2} GiB ({:.2} GiB values, {:.2} GiB gradients)",
        gib(val_elems + grad_elems),
        gib(val_elems),
        gib(grad_elems)
    );

    job.t_run = Instant::now();
    job.total_steps = (cfg.epochs.saturating_sub(from.epoch).saturating_mul(steps)).saturating_sub(from.step);
    epochs::run(&mut job, &dir, CHECKPOINT, &from, cfg.epochs, steps, cfg.run.checkpoint_every)?;

    let SearchEpochs { p, epochs, .. } = job;
    let named = alpha_values(&p.search, &p.g.alphas)?;
    let ops = p.space.ops().len();
    let spread = alpha_spread(ops, &named);
    let alphas: Vec<Vec<f64>> = named.into_iter().map(|a| a.1).collect();
    let found = p.space.derive(&alphas)?;
    dir.write("genotype.txt", (found.text.clone() + "\n").as_bytes())?;
    dir.write("genotype.json", (found.json.clone() + "\n").as_bytes())?;
    Ok(SearchResult { found, epochs, weights, alpha_spread: spread, ops })
}

/// A search as an [`EpochJob`]: the prepared step, the table that judges
/// its cell, and what its epochs have logged so far.
struct SearchEpochs<'a, B: Backend<Elem = f32>> {
    cfg: &'a SearchConfig,
    p: Prepared<B>,
    table: Option<Nb201Table>,
    /// The epoch under way.
    log: EpochLog,
    epochs: Vec<EpochLog>,
    log_lines: Vec<String>,
    alpha_lines: Vec<String>,
    t_run: Instant,
    t_epoch: Instant,
    step_ms: Vec<f64>,
    cpu_start: Option<f64>,
    done_steps: usize,
    total_steps: usize,
    alpha_every: usize,
}

impl<B: Backend<Elem = f32>> EpochJob for SearchEpochs<'_, B> {
    const WHAT: &'static str = "the search";

    fn begin_epoch(&mut self, epoch: usize) -> Result<()> {
        let lr = self.cfg.lr_at(epoch);
        self.p.search.set_lr(lr);
        self.log = EpochLog { epoch, lr, steps: self.p.steps, ..Default::default() };
        self.t_epoch = Instant::now();
        self.step_ms.clear();
        self.cpu_start = run_record::process_cpu_seconds();
        Ok(())
    }

    fn step(&mut self, epoch: usize, s: usize) -> Result<()> {
        let (cfg, steps) = (self.cfg, self.p.steps);
        let t_step = Instant::now();
        let st = self.p.search.step(&mut self.p.feed).map_err(|e| {
            let cause = non_finite_tensor(&self.p.search, cfg).unwrap_or_default();
            Error(format!("epoch {epoch} step {s}: {e}{cause}"))
        })?;
        self.step_ms.push(t_step.elapsed().as_secs_f64() * 1e3);
        let log = &mut self.log;
        log.loss_train += st.loss_train / steps as f64;
        log.loss_val += st.loss_val / steps as f64;
        // The last forward of the step saw the train batch in the w network;
        // for RARTS it also saw the validation batch in the y network.
        log.acc_train += st.acc_train / steps as f64;
        if cfg.step.algo == Algo::Rarts {
            log.acc_val += st.acc_val / steps as f64;
        }
        self.done_steps += 1;
        if (s + 1).is_multiple_of(self.alpha_every) || s + 1 == steps {
            let alphas = alpha_values(&self.p.search, &self.p.g.alphas)?;
            self.alpha_lines.push(alpha_json(epoch, s + 1, steps, self.p.space.ops().len(), &alphas));
        }
        if cfg.run.progress {
            let el = self.t_run.elapsed().as_secs_f64();
            let done = self.done_steps;
            let eta = el / done as f64 * self.total_steps.saturating_sub(done) as f64;
            eprint!(
                "\repoch {}/{} step {}/{} loss {:.4}/{:.4} {:.1} ms/step ETA {}   ",
                epoch + 1,
                cfg.epochs,
                s + 1,
                steps,
                st.loss_train,
                st.loss_val,
                el * 1e3 / done as f64,
                fmt_duration(eta)
            );
        }
        Ok(())
    }

    fn end_epoch(&mut self, _epoch: usize) -> Result<Option<Error>> {
        let (cfg, steps) = (self.cfg, self.p.steps);
        let log = &mut self.log;
        log.step_ms = self.t_epoch.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64;
        log.step_ms_median = median(&mut self.step_ms);
        log.step_cpu_ms = match (self.cpu_start, run_record::process_cpu_seconds()) {
            (Some(a), Some(b)) => (b - a) * 1e3 / steps.max(1) as f64,
            _ => f64::NAN,
        };
        if cfg.step.algo != Algo::Rarts {
            log.acc_val = f64::NAN; // DARTS's α pass is not a measure of y; not reported
        }
        let mut score_failed = None;
        let p = &mut self.p;
        if let Some(test) = p.test.as_ref().filter(|_| p.eval_images > 0) {
            match crate::score::score(&mut p.search.ex, test, p.g.train_io, p.eval_images) {
                Ok(s) => log.test_acc = Some(s.accuracy()),
                Err(e) => score_failed = Some(e),
            }
        }
        if cfg.run.progress {
            eprintln!();
        }
        let k = p.space.ops().len();
        let alphas = alpha_values(&p.search, &p.g.alphas)?;
        log.alpha_spread = alpha_spread(k, &alphas);
        if let Some(t) = &self.table {
            let cell = Nb201Cell::from_alpha(&alphas[0].1)?;
            log.bench = Some((cell.to_arch_str(), t.get(&cell)));
        }
        println!("{}", summary(log, cfg, k, self.t_run.elapsed().as_secs_f64(), self.done_steps, self.total_steps));
        self.log_lines.push(log_json(cfg.step.algo, log, k, &alphas));
        Ok(score_failed)
    }

    fn checkpoint(&self, done: usize) -> Result<Checkpoint> {
        let p = &self.p;
        save(&p.search, &p.feed.sampler, self.cfg, &p.data_id, done, &self.log_lines, &self.alpha_lines)
    }

    fn epoch_sums(&self) -> String {
        let l = &self.log;
        sums_line(&[
            ("loss_train", l.loss_train),
            ("loss_val", l.loss_val),
            ("acc_train", l.acc_train),
            ("acc_val", l.acc_val),
        ])
    }

    fn restore_epoch_sums(&mut self, sums: &str) -> Result<()> {
        let l = &mut self.log;
        [l.loss_train, l.loss_val, l.acc_train, l.acc_val] =
            parse_sums(sums, ["loss_train", "loss_val", "acc_train", "acc_val"])?;
        Ok(())
    }

    fn lower(&self, tensor: &str) -> String {
        self.cfg.rate_flag_of(tensor)
    }

    fn write_files(&mut self, dir: &RunDir, _done: usize) -> Result<()> {
        // The checkpoint (which carries the log) is written first: a kill
        // here leaves a log one line short, which resume rewrites.
        dir.write(LOG, run_record::log_text(&self.log_lines).as_bytes())?;
        dir.write(ALPHA_LOG, run_record::log_text(&self.alpha_lines).as_bytes())?;
        if self.cfg.run.report {
            crate::report::write_during_run(&self.cfg.run.out);
        }
        self.epochs.push(std::mem::take(&mut self.log));
        Ok(())
    }
}

/// Each α matrix's name and values.
fn alpha_values<B: Backend<Elem = f32>>(s: &Search<B>, a: &Alphas) -> Result<Vec<(&'static str, Vec<f64>)>> {
    a.params.iter().map(|&(n, name)| Ok((name, s.ex.get(n)?))).collect()
}

/// `; not finite now: 'A', 'B' and N more; lower FLAGS` for the parameters
/// and BN statistics holding a NaN or an infinity, the first three named
/// (None if none does).
fn non_finite_tensor<B: Backend<Elem = f32>>(s: &Search<B>, cfg: &SearchConfig) -> Option<String> {
    let mut bad = Vec::new();
    for n in run_record::persistent_nodes(&s.ex.tape) {
        if s.ex.first_non_finite(&[n]).ok()?.is_some() {
            bad.push(s.ex.tape.nodes[n].name.as_str());
        }
    }
    bad.first()?;
    // A weight gone bad poisons α's gradient too, so the weights' rate is
    // named first.
    let (arch, weights): (Vec<&str>, Vec<&str>) = bad.iter().partition(|n| n.starts_with("alpha"));
    let mut flags: Vec<String> = Vec::new();
    for f in weights.first().into_iter().chain(arch.first()).map(|n| cfg.rate_flag_of(n)) {
        for one in f.split(" or ") {
            if !flags.iter().any(|g| g == one) {
                flags.push(one.to_string());
            }
        }
    }
    let shown: Vec<String> = bad.iter().take(3).map(|n| format!("'{n}'")).collect();
    let more = if bad.len() > 3 { format!(" and {} more", bad.len() - 3) } else { String::new() };
    Some(format!("; not finite now: {}{more}; lower {}", shown.join(", "), flags.join(" or ")))
}

/// The line each epoch prints on stdout: losses, accuracies, how far α has
/// moved, time, ETA, and (judged by a table) the cell's accuracies.
fn summary(l: &EpochLog, cfg: &SearchConfig, k: usize, elapsed: f64, done: usize, total: usize) -> String {
    let mut s = format!(
        "epoch {}/{}: loss {:.4} (train) {:.4} (val{}), acc {:.3} (train){}",
        l.epoch + 1,
        cfg.epochs,
        l.loss_train,
        l.loss_val,
        if cfg.step.algo == Algo::Darts2 { ", at w′" } else { "" },
        l.acc_train,
        if l.acc_val.is_finite() { format!(" {:.3} (val)", l.acc_val) } else { String::new() },
    );
    if let Some(t) = l.test_acc {
        s += &format!(" {t:.3} (test)");
    }
    s += &format!(", max |softmax(α) − 1/{k}| {:.4}", l.alpha_spread);
    let eta = if done > 0 { elapsed / done as f64 * total.saturating_sub(done) as f64 } else { 0.0 };
    s += &format!(", {:.1} s/epoch, ETA {}", l.step_ms * l.steps as f64 / 1e3, fmt_duration(eta));
    if let Some((arch, acc)) = &l.bench {
        let shown: Vec<String> =
            table::DATASETS.iter().zip(acc).map(|((_, name), a)| format!("{name} {a:.2} %")).collect();
        s += &format!("\n  cell {arch}: NAS-Bench-201 {}", shown.join(", "));
    }
    s
}

/// `s` seconds for the progress line: `1h05m`, `3m07s`.
fn fmt_duration(s: f64) -> String {
    let s = s.max(0.0) as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, s % 3600 / 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

/// The median of `v` (0 when empty); sorts `v`.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}
