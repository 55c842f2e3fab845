//! `rarts search`: the supernet on real data, end to end — the epoch and
//! step loop with the cosine learning-rate schedule, the progress line, the
//! per-epoch log line and checkpoint, resume, and the genotype at the end.

use std::time::Instant;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::run_record;
use crate::rundir::RunDir;
use crate::search::algo::{Algo, Search};
use crate::search::config::SearchConfig;
use crate::search::log::{ALPHA_MOVED, EpochLog, alpha_json, alpha_spread, log_json};
use crate::search::prepare::{Prepared, prepare};
use crate::search::resume::{restore, save};
use crate::space::nb201::{Nb201Cell, table};
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
                cfg.arch_lr
            )
        })
    }

    /// What the end of a search prints on stdout: how far α moved, where the
    /// results are, and the command that trains what was found.
    pub fn closing(&self, cfg: &SearchConfig) -> String {
        let (k, spread) = (self.ops, self.alpha_spread);
        let dir = cfg.out.display();
        let mut s = format!(
            "α moved: largest |softmax(α) − 1/{k}| = {spread:.4} (a genotype means something from {ALPHA_MOVED} on)\n"
        );
        s += &format!("results: {dir}/genotype.txt, {dir}/genotype.json, {dir}/report.html\n");
        let space = match cfg.space {
            SpaceKind::Darts => String::new(),
            other => format!(" --space {}", other.name()),
        };
        let flag = if cfg.space == SpaceKind::Width { "--widths" } else { "--genotype" };
        s += &format!("next: rarts train{space} {flag} {dir} --data {} --out {dir}-train\n", cfg.data);
        s
    }
}

/// Runs (or resumes) a search on backend `be`, writing into `cfg.out`.
pub fn search<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig) -> Result<SearchResult> {
    cfg.validate()?;
    // The lock first: a second process on the same folder stops at once.
    let files = crate::report::with_report_files(&RUN_FILES);
    let dir = RunDir::open(&cfg.out, "--out", &files, cfg.existing)?;
    let device = be.name();
    // The table before the data: a bad table costs nothing to find out.
    let table = match cfg.space {
        SpaceKind::Nb201 => table::from_flag(cfg.nb201_table.as_deref())?,
        _ => None,
    };
    let p = prepare(be, cfg)?;
    let Prepared { mut search, mut feed, g, test, space, steps, weights, eval_images, data_id } = p;
    let ck_path = dir.join(CHECKPOINT);
    let mut epochs: Vec<EpochLog> = Vec::new();
    let mut log_lines: Vec<String> = Vec::new();
    let mut alpha_lines: Vec<String> = Vec::new();
    let mut start_epoch = 0;
    if let Some(ck) = run_record::resume_point(&dir, cfg.existing, &files, CHECKPOINT)? {
        (start_epoch, log_lines, alpha_lines) = restore(&mut search, &mut feed.sampler, cfg, &data_id, ck)
            .map_err(|e| Error(format!("--resume from {}: {e}", ck_path.display())))?;
        // The logs as of the checkpoint (a later line may have been cut off).
        dir.write(LOG, run_record::log_text(&log_lines).as_bytes())?;
        dir.write(ALPHA_LOG, run_record::log_text(&alpha_lines).as_bytes())?;
        eprintln!("resuming from {} after epoch {start_epoch}", ck_path.display());
    }
    if let Some(t) = &table {
        dir.write(BENCH_REFERENCE, (table::reference_json(t) + "\n").as_bytes())?;
        println!("NAS-Bench-201 table: {} (judges the cell after every epoch)", t.path().display());
    }
    println!("device: {device}");
    println!("weights: {weights}");
    let (val_elems, grad_elems) = search.ex.plan_elems();
    let gib = |e: usize| (e * 4) as f64 / (1u64 << 30) as f64;
    println!(
        "memory: {:.2} GiB ({:.2} GiB values, {:.2} GiB gradients)",
        gib(val_elems + grad_elems),
        gib(val_elems),
        gib(grad_elems)
    );

    let t_run = Instant::now();
    let total_steps = cfg.epochs.saturating_sub(start_epoch).saturating_mul(steps);
    let mut done_steps = 0usize;
    let alpha_every = cfg.alpha_every.unwrap_or((steps / ALPHA_SAMPLES).max(1));
    for epoch in start_epoch..cfg.epochs {
        let lr = cfg.lr_at(epoch);
        search.set_lr(lr);
        let mut log = EpochLog { epoch, lr, steps, ..Default::default() };
        let t_epoch = Instant::now();
        let mut step_ms = Vec::with_capacity(steps);
        let cpu_start = run_record::process_cpu_seconds();
        for s in 0..steps {
            let t_step = Instant::now();
            let st = search.step(&mut feed).map_err(|e| {
                let cause = non_finite_tensor(&search, cfg).unwrap_or_default();
                Error(format!("epoch {epoch} step {s}: {e}{cause}"))
            })?;
            step_ms.push(t_step.elapsed().as_secs_f64() * 1e3);
            log.loss_train += st.loss_train / steps as f64;
            log.loss_val += st.loss_val / steps as f64;
            // The last forward of the step saw the train batch in the w network;
            // for RARTS it also saw the validation batch in the y network.
            log.acc_train += st.acc_train / steps as f64;
            if cfg.algo == Algo::Rarts {
                log.acc_val += st.acc_val / steps as f64;
            }
            done_steps += 1;
            if (s + 1) % alpha_every == 0 || s + 1 == steps {
                alpha_lines.push(alpha_json(
                    epoch,
                    s + 1,
                    steps,
                    space.ops().len(),
                    &alpha_values(&search, &g.alphas)?,
                ));
            }
            if cfg.progress {
                let el = t_run.elapsed().as_secs_f64();
                let eta = el / done_steps as f64 * total_steps.saturating_sub(done_steps) as f64;
                eprint!(
                    "\repoch {}/{} step {}/{} loss {:.4}/{:.4} {:.1} ms/step ETA {}   ",
                    epoch + 1,
                    cfg.epochs,
                    s + 1,
                    steps,
                    st.loss_train,
                    st.loss_val,
                    el * 1e3 / done_steps as f64,
                    fmt_duration(eta)
                );
            }
        }
        log.step_ms = t_epoch.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64;
        log.step_ms_median = median(&mut step_ms);
        log.step_cpu_ms = match (cpu_start, run_record::process_cpu_seconds()) {
            (Some(a), Some(b)) => (b - a) * 1e3 / steps.max(1) as f64,
            _ => f64::NAN,
        };
        if cfg.algo != Algo::Rarts {
            log.acc_val = f64::NAN; // DARTS's α pass is not a measure of y; not reported
        }
        // A score that fails (outputs not finite) is reported after the
        // checkpoint's own check, which names the tensor that diverged.
        let mut score_failed = None;
        if let Some(test) = test.as_ref().filter(|_| eval_images > 0) {
            match crate::score::score(&mut search.ex, test, g.train_io, eval_images) {
                Ok(s) => log.test_acc = Some(s.accuracy()),
                Err(e) => score_failed = Some(e),
            }
        }
        if cfg.progress {
            eprintln!();
        }
        let alphas = alpha_values(&search, &g.alphas)?;
        log.alpha_spread = alpha_spread(space.ops().len(), &alphas);
        if let Some(t) = &table {
            let cell = Nb201Cell::from_alpha(&alphas[0].1)?;
            log.bench = Some((cell.to_arch_str(), t.get(&cell)));
        }
        println!("{}", summary(&log, cfg, space.ops().len(), t_run.elapsed().as_secs_f64(), done_steps, total_steps));
        log_lines.push(log_json(cfg.algo, &log, space.ops().len(), &alphas));
        // The checkpoint (which carries the log) first, then the log: a kill
        // between the two leaves a log one line short, which resume rewrites.
        let ck = save(&search, &feed.sampler, cfg, &data_id, epoch + 1, &log_lines, &alpha_lines)?;
        if let Some((name, i, v)) = ck.first_non_finite() {
            crate::bail!(
                "epoch {epoch}: tensor '{name}' holds {v} at element {i}: the search diverged; lower {}. \
                 Nothing of this epoch was written; {}",
                cfg.rate_flag_of(name),
                if epoch > 0 {
                    format!("the checkpoint after epoch {epoch}, {}, is intact", ck_path.display())
                } else {
                    "no checkpoint was written".into()
                }
            );
        }
        if let Some(e) = score_failed {
            crate::bail!(
                "epoch {epoch}: {e}; lower {}. Nothing of this epoch was written",
                cfg.rate_flag_of("weights")
            );
        }
        ck.save(&ck_path)?;
        dir.write(LOG, run_record::log_text(&log_lines).as_bytes())?;
        dir.write(ALPHA_LOG, run_record::log_text(&alpha_lines).as_bytes())?;
        if cfg.report {
            crate::report::write_during_run(&cfg.out);
        }
        epochs.push(log);
    }

    let named = alpha_values(&search, &g.alphas)?;
    let spread = alpha_spread(space.ops().len(), &named);
    let alphas: Vec<Vec<f64>> = named.into_iter().map(|a| a.1).collect();
    let found = space.derive(&alphas)?;
    dir.write("genotype.txt", (found.text.clone() + "\n").as_bytes())?;
    dir.write("genotype.json", (found.json.clone() + "\n").as_bytes())?;
    Ok(SearchResult { found, epochs, weights, alpha_spread: spread, ops: space.ops().len() })
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
        if cfg.algo == Algo::Darts2 { ", at w′" } else { "" },
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
