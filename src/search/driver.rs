//! `rarts search`: the supernet on real data, end to end — batches,
//! the chosen algorithm, the cosine learning-rate schedule, per-epoch logs
//! and checkpoints, resume, and the genotype at the end.

use std::fmt::Write as _;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::backend::{Backend, SgdStep};
use crate::checkpoint::Checkpoint;
use crate::data::{Dataset, SearchSampler};
use crate::error::{Error, Result};
use crate::exec::{Exec, Profile};
use crate::genotype::{Genotype, softmax_rows};
use crate::run::{self, DataId};
use crate::rundir::RunDir;
use crate::search::algo::{Algo, ArchOpt, Feed, Hyper, Problem, Search, Split};
use crate::search::config::DEFAULT_EVAL_IMAGES;
pub use crate::search::config::SearchConfig;
use crate::shape::Shape;
use crate::space::darts::{MixWeights, PRIMITIVES, SuperNetConfig, alphas, supernet};
use crate::space::{GROUP_ARCH, GROUP_W, GROUP_Y};
use crate::tape::{NodeId, Tape};

/// The files a search writes into `--out` (besides its lock file); `--force`
/// removes these and nothing else.
pub const RUN_FILES: [&str; 4] = ["checkpoint.bin", "log.jsonl", "genotype.txt", "genotype.json"];
const CHECKPOINT: &str = RUN_FILES[0];
const LOG: &str = RUN_FILES[1];
/// The checkpoint header's format field (the file format itself is versioned
/// by [`crate::checkpoint::VERSION`]).
const FORMAT: &str = "rarts-search-2";

/// The nodes of the recorded search graph that the driver touches.
struct Graph {
    prob: Problem,
    /// (images, labels, logits) of the network trained on the train split
    /// and of the one evaluated on the validation split (the same network
    /// for DARTS, fed in turn).
    train_io: (NodeId, NodeId, NodeId),
    val_io: (NodeId, NodeId, NodeId),
    alpha_normal: NodeId,
    alpha_reduce: NodeId,
}

fn record(cfg: &SearchConfig, net: &SuperNetConfig, image: Shape) -> (Tape, Graph) {
    let mut t = Tape::new();
    let x_shape = Shape::nchw(cfg.batch, image.c(), image.h(), image.w());
    let (an, ar, mw) = alphas(&mut t, net, GROUP_ARCH);
    let one_net = |t: &mut Tape, group: u32, mw: MixWeights, tag: &str| {
        let x = t.input(x_shape, &format!("{tag}.images"));
        let labels = t.input(Shape::vec(cfg.batch), &format!("{tag}.labels"));
        let n = supernet(t, net, x, mw, group);
        let loss = t.cross_entropy(n.logits, labels);
        (x, labels, n.logits, loss, n.weight_params)
    };
    let (xt, lt, zt, loss_t, w) = one_net(&mut t, GROUP_W, mw, "w");
    let graph = if cfg.algo == Algo::Rarts {
        let (xv, lv, zv, loss_v, y) = one_net(&mut t, GROUP_Y, mw, "y");
        let total = t.combine(&[(loss_t, cfg.lambda), (loss_v, 1.0)]);
        Graph {
            prob: problem(loss_t, loss_v, Some(total), w, y, vec![an, ar]),
            train_io: (xt, lt, zt),
            val_io: (xv, lv, zv),
            alpha_normal: an,
            alpha_reduce: ar,
        }
    } else {
        Graph {
            prob: problem(loss_t, loss_t, None, w, vec![], vec![an, ar]),
            train_io: (xt, lt, zt),
            val_io: (xt, lt, zt),
            alpha_normal: an,
            alpha_reduce: ar,
        }
    };
    (t, graph)
}

fn problem(
    loss_train: NodeId,
    loss_val: NodeId,
    total: Option<NodeId>,
    w: Vec<NodeId>,
    y: Vec<NodeId>,
    alpha: Vec<NodeId>,
) -> Problem {
    Problem { loss_train, loss_val, total, w, y, alpha, group_w: GROUP_W, group_y: GROUP_Y, group_arch: GROUP_ARCH }
}

/// One batch: normalised images and labels (as floats).
struct Batch {
    x: Vec<f32>,
    y: Vec<f32>,
}

/// Feeds batches from the two halves of the training set, keeping the last
/// batch drawn from each so that it can be fed again.
struct DataFeed {
    ds: Dataset,
    sampler: SearchSampler,
    train: Batch,
    val: Batch,
    train_io: (NodeId, NodeId, NodeId),
    val_io: (NodeId, NodeId, NodeId),
}

impl DataFeed {
    fn put<B: Backend<Elem = f32>>(&self, ex: &mut Exec<B>, split: Split) -> Result<()> {
        if matches!(split, Split::Train | Split::Both) {
            ex.set_elems(self.train_io.0, &self.train.x)?;
            ex.set_elems(self.train_io.1, &self.train.y)?;
        }
        if matches!(split, Split::Val | Split::Both) {
            ex.set_elems(self.val_io.0, &self.val.x)?;
            ex.set_elems(self.val_io.1, &self.val.y)?;
        }
        Ok(())
    }
}

impl<B: Backend<Elem = f32>> Feed<B> for DataFeed {
    fn feed(&mut self, ex: &mut Exec<B>, split: Split) -> Result<()> {
        if matches!(split, Split::Train | Split::Both) {
            self.sampler.next_weights_batch(&self.ds, &mut self.train.x, &mut self.train.y)?;
        }
        if matches!(split, Split::Val | Split::Both) {
            self.sampler.next_arch_batch(&self.ds, &mut self.val.x, &mut self.val.y)?;
        }
        self.put(ex, split)
    }

    fn refeed(&mut self, ex: &mut Exec<B>, split: Split) -> Result<()> {
        self.put(ex, split)
    }
}

/// What one epoch saw.
#[derive(Clone, Debug, Default)]
pub struct EpochLog {
    pub epoch: usize,
    pub lr: f32,
    pub loss_train: f64,
    pub loss_val: f64,
    pub acc_train: f64,
    pub acc_val: f64,
    pub test_acc: Option<f64>,
    /// Mean wall time of a step.
    pub step_ms: f64,
    /// Median wall time of a step: what a step costs, unmoved by a few steps
    /// that shared the machine with something else or were paused.
    pub step_ms_median: f64,
    /// CPU time of the process (all threads) per step, NaN where the
    /// platform does not report it.
    pub step_cpu_ms: f64,
    pub steps: usize,
}

/// The outcome of a search.
pub struct SearchResult {
    pub genotype: Genotype,
    pub epochs: Vec<EpochLog>,
    pub weights: usize,
}

fn fmt_duration(s: f64) -> String {
    let s = s.max(0.0) as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, s % 3600 / 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

/// A search set up and ready to step: the recorded graph on a backend, its
/// optimizers, and the data feeding it.
pub struct Prepared<B: Backend> {
    pub search: Search<B>,
    feed: DataFeed,
    g: Graph,
    test: Option<Dataset>,
    net: SuperNetConfig,
    /// Steps per epoch.
    pub steps: usize,
    /// Network weights of one network (`w`).
    pub weights: usize,
    /// Test images evaluated after each epoch.
    pub eval_images: usize,
    /// What a checkpoint records of the data.
    pub data_id: DataId,
}

impl<B: Backend<Elem = f32>> Prepared<B> {
    /// One search step on the next batches.
    pub fn step(&mut self) -> Result<crate::search::algo::StepStats> {
        self.search.step(&mut self.feed)
    }
}

/// Bytes the recording of one cell of one network takes at least (tape
/// nodes, ops and names; measured: about 640 nodes of ~150 bytes at C=16).
const TAPE_BYTES_PER_CELL: u128 = 64 << 10;

/// A lower bound of the memory a search plan takes, known before anything
/// is recorded: every cell holds at least the 7 non-`none` outputs of each
/// of its mixed edges at its own size, in each network.
fn min_plan_bytes(cfg: &SearchConfig, net: &SuperNetConfig, image: Shape) -> u128 {
    let (mut c, mut hw) = (cfg.c as u128, (image.h() * image.w()) as u128);
    let mut elems = 0u128;
    for layer in 0..net.layers {
        if net.is_reduction(layer) {
            c *= 2;
            hw /= 4;
        }
        elems += net.edges() as u128 * 7 * cfg.batch as u128 * c * hw.max(1);
    }
    let networks = if cfg.algo == Algo::Rarts { 2 } else { 1 };
    networks * (elems * 4 + net.layers as u128 * TAPE_BYTES_PER_CELL)
}

/// Loads the data, records the supernet(s) and allocates the whole plan.
pub fn prepare<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig) -> Result<Prepared<B>> {
    cfg.validate()?;
    let split = cfg.data.load()?;
    let data_id = DataId::of(&split.train, split.test.as_ref());
    let eval_images = run::eval_images(cfg.eval_images, split.test.as_ref(), DEFAULT_EVAL_IMAGES, &cfg.data)?;
    let ds = split.train;
    let image = ds.shape();
    let net = SuperNetConfig::new(cfg.c, cfg.layers, ds.num_classes(), image.c());
    if image.h() % 4 != 0 || image.w() % 4 != 0 {
        crate::bail!(
            "--data {}: images of {}×{} cannot pass two reductions evenly; expected sides divisible by 4",
            cfg.data,
            image.h(),
            image.w()
        );
    }
    // Refuse an absurd plan before recording it (the recording alone could
    // exhaust the memory); the exact plan is checked again in `Exec::new`.
    let least = min_plan_bytes(cfg, &net, image);
    be.reserve(usize::try_from(least).unwrap_or(usize::MAX)).map_err(|e| {
        Error(format!("{e} (a lower bound for --c {} --layers {} --batch {})", cfg.c, cfg.layers, cfg.batch))
    })?;
    let (tape, g) = record(cfg, &net, image);
    let weights = tape.numel(GROUP_W);
    let mut ex = Exec::new(be, tape)?;
    ex.init_params(&mut StdRng::seed_from_u64(cfg.seed))?;
    // y starts as a copy of w (its BN statistics are its own, equal at start).
    for (&w, &y) in g.prob.w.iter().zip(&g.prob.y) {
        ex.copy_node(w, y)?;
    }
    let hp = Hyper {
        algo: cfg.algo,
        schedule: cfg.schedule,
        sgd: SgdStep { lr: cfg.lr, momentum: cfg.momentum, weight_decay: cfg.weight_decay },
        clip: Some(cfg.clip),
        arch: ArchOpt::Adam { lr: cfg.arch_lr, betas: (0.5, 0.999), weight_decay: cfg.arch_weight_decay },
        lambda: cfg.lambda,
        beta: cfg.beta,
        xi: cfg.xi,
    };
    let search = Search::new(ex, g.prob.clone(), hp)?;
    let sampler = SearchSampler::new(&ds, cfg.train_portion, cfg.batch, cfg.seed)?;
    let x_len = cfg.batch * image.c() * image.h() * image.w();
    let steps = cfg.steps_per_epoch.map_or(sampler.steps_per_epoch(), |s| s.min(sampler.steps_per_epoch()));
    let batch = || Batch { x: vec![0.0; x_len], y: vec![0.0; cfg.batch] };
    let feed = DataFeed { ds, sampler, train: batch(), val: batch(), train_io: g.train_io, val_io: g.val_io };
    Ok(Prepared { search, feed, g, test: split.test, net, steps, weights, eval_images, data_id })
}

/// Runs (or resumes) a search on backend `be`, writing into `cfg.out`.
pub fn run<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig) -> Result<SearchResult> {
    cfg.validate()?;
    // The lock first: a second process on the same folder stops at once.
    let dir = RunDir::open(&cfg.out, "--out", &RUN_FILES, cfg.existing)?;
    let device = be.name();
    let p = prepare(be, cfg)?;
    let Prepared { mut search, mut feed, g, test, net, steps, weights, eval_images, data_id } = p;
    let ck_path = dir.join(CHECKPOINT);
    let mut epochs: Vec<EpochLog> = Vec::new();
    let mut log_lines: Vec<String> = Vec::new();
    let mut start_epoch = 0;
    if let Some(ck) = run::resume_point(&dir, cfg.existing, &RUN_FILES, CHECKPOINT)? {
        (start_epoch, log_lines) = restore(&mut search, &mut feed.sampler, cfg, &data_id, ck)
            .map_err(|e| Error(format!("--resume from {}: {e}", ck_path.display())))?;
        // The log as of the checkpoint (a later line may have been cut off).
        dir.write(LOG, run::log_text(&log_lines).as_bytes())?;
        eprintln!("resuming from {} after epoch {start_epoch}", ck_path.display());
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
    for epoch in start_epoch..cfg.epochs {
        let lr = cfg.lr_at(epoch);
        search.set_lr(lr);
        let mut log = EpochLog { epoch, lr, steps, ..Default::default() };
        let t_epoch = Instant::now();
        let mut step_ms = Vec::with_capacity(steps);
        let cpu_start = run::process_cpu_seconds();
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
            log.acc_train += run::accuracy(&search.ex, g.train_io.2, g.train_io.1)? / steps as f64;
            if cfg.algo == Algo::Rarts {
                log.acc_val += run::accuracy(&search.ex, g.val_io.2, g.val_io.1)? / steps as f64;
            }
            done_steps += 1;
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
        log.step_cpu_ms = match (cpu_start, run::process_cpu_seconds()) {
            (Some(a), Some(b)) => (b - a) * 1e3 / steps.max(1) as f64,
            _ => f64::NAN,
        };
        if cfg.algo != Algo::Rarts {
            log.acc_val = f64::NAN; // DARTS's α pass is not a measure of y; not reported
        }
        if let Some(test) = test.as_ref().filter(|_| eval_images > 0) {
            log.test_acc = Some(crate::train::score(&mut search.ex, test, g.train_io, eval_images)?.accuracy());
        }
        if cfg.progress {
            eprintln!();
        }
        let an = search.ex.get(g.alpha_normal)?;
        let ar = search.ex.get(g.alpha_reduce)?;
        log_lines.push(log_json(cfg.algo, &log, &an, &ar));
        // The checkpoint (which carries the log) first, then the log: a kill
        // between the two leaves a log one line short, which resume rewrites.
        let ck = save(&search, &feed.sampler, cfg, &data_id, epoch + 1, &log_lines)?;
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
        ck.save(&ck_path)?;
        dir.write(LOG, run::log_text(&log_lines).as_bytes())?;
        epochs.push(log);
    }

    let an = search.ex.get(g.alpha_normal)?;
    let ar = search.ex.get(g.alpha_reduce)?;
    let genotype = Genotype::from_alphas(&an, &ar, net.steps, net.multiplier);
    dir.write("genotype.txt", (genotype.to_text() + "\n").as_bytes())?;
    dir.write("genotype.json", (genotype.to_json(&an, &ar) + "\n").as_bytes())?;
    Ok(SearchResult { genotype, epochs, weights })
}

/// `; tensors 'A', 'B' are not finite: lower FLAGS` for the parameters
/// and BN statistics holding a NaN or an infinity (None if none does).
fn non_finite_tensor<B: Backend<Elem = f32>>(s: &Search<B>, cfg: &SearchConfig) -> Option<String> {
    let mut bad = Vec::new();
    for n in run::persistent_nodes(&s.ex.tape) {
        if s.ex.first_non_finite(&[n]).ok()?.is_some() {
            bad.push(s.ex.tape.nodes[n].name.as_str());
        }
    }
    bad.first()?;
    // A weight gone bad poisons α's gradient too, so the weights' rate is
    // named first.
    let (arch, weights): (Vec<&str>, Vec<&str>) = bad.iter().partition(|n| n.starts_with("alpha"));
    let flags: Vec<String> = weights.first().into_iter().chain(arch.first()).map(|n| cfg.rate_flag_of(n)).collect();
    let shown: Vec<String> = bad.iter().take(3).map(|n| format!("'{n}'")).collect();
    let more = if bad.len() > 3 { format!(" and {} more", bad.len() - 3) } else { String::new() };
    Some(format!("; not finite now: {}{more}; lower {}", shown.join(", "), flags.join(" or ")))
}

/// One line of `log.jsonl`. DARTS second order takes its validation loss at
/// the unrolled weights `w'`, so it is logged as `loss_val_unrolled`.
fn log_json(algo: Algo, l: &EpochLog, an: &[f64], ar: &[f64]) -> String {
    let k = PRIMITIVES.len();
    let mat = |a: &[f64]| {
        let rows: Vec<String> = softmax_rows(a, k)
            .chunks(k)
            .map(|r| format!("[{}]", r.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>().join(",")))
            .collect();
        format!("[{}]", rows.join(","))
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"epoch\":{},\"lr\":{},\"loss_train\":{},\"{}\":{},\"acc_train\":{},\"acc_val\":{},\"test_acc\":{},\
         \"step_ms\":{:.3},\"step_ms_median\":{:.3},\"step_cpu_ms\":{},\"steps\":{},\"softmax_alpha_normal\":{},\"softmax_alpha_reduce\":{}}}",
        l.epoch,
        l.lr,
        run::json_num(l.loss_train),
        if algo == Algo::Darts2 { "loss_val_unrolled" } else { "loss_val" },
        run::json_num(l.loss_val),
        run::json_num(l.acc_train),
        run::json_num(l.acc_val),
        l.test_acc.map_or("null".into(), run::json_num),
        l.step_ms,
        l.step_ms_median,
        run::json_num(l.step_cpu_ms),
        l.steps,
        mat(an),
        mat(ar)
    );
    s
}

/// Every parameter and BN statistic, optimizer state and sampler position,
/// the settings and the data the run was made on, and the log so far.
fn save<B: Backend<Elem = f32>>(
    s: &Search<B>,
    sampler: &SearchSampler,
    cfg: &SearchConfig,
    data_id: &DataId,
    epochs_done: usize,
    log_lines: &[String],
) -> Result<Checkpoint> {
    let mut ck = Checkpoint::default();
    stamp(cfg, data_id).write(&mut ck, epochs_done, log_lines);
    // The sampler state is several lines; the checkpoint header holds one per key.
    ck.set("sampler", sampler.save_state().trim_end().replace('\n', "|"));
    let (t, arch_state) = s.arch_opt_state()?;
    ck.set("arch_t", t);
    run::push_persistent(&s.ex, &mut ck)?;
    for (i, d) in s.w_opt.state(&s.ex.be)?.into_iter().enumerate() {
        ck.push(format!("opt.w.{i}"), d);
    }
    if let Some(o) = s.y_opt.as_ref() {
        for (i, d) in o.state(&s.ex.be)?.into_iter().enumerate() {
            ck.push(format!("opt.y.{i}"), d);
        }
    }
    for (i, d) in arch_state.into_iter().enumerate() {
        ck.push(format!("opt.arch.{i}"), d);
    }
    Ok(ck)
}

fn stamp<'a>(cfg: &'a SearchConfig, data_id: &'a DataId) -> run::Stamp<'a> {
    run::Stamp { format: FORMAT, settings: cfg.identity(), data: &cfg.data, data_id }
}

/// Loads a checkpoint written by `save` after checking that it belongs to
/// this run (format, settings, data); returns the epochs already done and
/// the log lines it carries.
fn restore<B: Backend<Elem = f32>>(
    s: &mut Search<B>,
    sampler: &mut SearchSampler,
    cfg: &SearchConfig,
    data_id: &DataId,
    mut ck: Checkpoint,
) -> Result<(usize, Vec<String>)> {
    let (done, log) = stamp(cfg, data_id).check(&ck, cfg.epochs)?;
    sampler.restore_state(&ck.get("sampler").unwrap_or_default().replace('|', "\n"))?;
    let arch_t: u32 = ck.parse("arch_t")?;
    let mut cur = 0;
    run::take_persistent(&mut s.ex, &mut ck, &mut cur)?;
    let mut take_all = |prefix: &str, lens: Vec<usize>, ck: &mut Checkpoint| -> Result<Vec<Vec<f32>>> {
        lens.iter().enumerate().map(|(i, &len)| ck.take(&mut cur, &format!("{prefix}.{i}"), len)).collect()
    };
    let lens = |nodes: &[NodeId]| nodes.iter().map(|&n| s.ex.shape(n).numel()).collect::<Vec<_>>();
    let (w_lens, y_lens, a_lens) = (lens(&s.prob.w), lens(&s.prob.y), lens(&s.prob.alpha));
    let w_state = take_all("opt.w", w_lens, &mut ck)?;
    s.w_opt.load_state(&s.ex.be, &w_state)?;
    if let Some(o) = s.y_opt.as_mut() {
        let y_state = take_all("opt.y", y_lens, &mut ck)?;
        o.load_state(&s.ex.be, &y_state)?;
    }
    let arch_lens = match s.hp.arch {
        ArchOpt::Adam { .. } => a_lens.iter().chain(&a_lens).copied().collect(),
        ArchOpt::Plain { .. } => a_lens,
    };
    let a_state = take_all("opt.arch", arch_lens, &mut ck)?;
    s.load_arch_opt_state(arch_t, &a_state)?;
    Ok((done, log))
}

/// One warm-up step, then the wall time in seconds of each of `steps`
/// steps, the device synchronised before every clock read.
fn timed_steps<B: Backend<Elem = f32>>(p: &mut Prepared<B>, steps: usize) -> Result<Vec<f64>> {
    p.step()?;
    p.search.ex.be.synchronize()?;
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = Instant::now();
        p.step()?;
        p.search.ex.be.synchronize()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(times)
}

/// A whole-step timing of one configuration.
#[derive(Clone, Debug)]
pub struct StepTiming {
    /// Median wall time of a step, seconds.
    pub median_s: f64,
    pub min_s: f64,
    /// Network weights (of one network).
    pub weights: usize,
    /// Images a step consumes (training and validation batches).
    pub images: usize,
}

/// Times `steps` whole search steps after one warm-up step.
pub fn bench<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig, steps: usize) -> Result<StepTiming> {
    let mut p = prepare(be, cfg)?;
    let mut times = timed_steps(&mut p, steps)?;
    times.sort_by(f64::total_cmp);
    Ok(StepTiming { median_s: times[times.len() / 2], min_s: times[0], weights: p.weights, images: 2 * cfg.batch })
}

/// Times `steps` search steps op family by op family (after one warm-up
/// step); returns the profile and the plain step time measured before it.
pub fn profile<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig, steps: usize) -> Result<(Profile, f64)> {
    let mut p = prepare(be, cfg)?;
    let times = timed_steps(&mut p, steps)?;
    let step_s = times.iter().sum::<f64>() / steps as f64;
    p.search.ex.profile = Some(Profile::default());
    for _ in 0..steps {
        p.step()?;
    }
    Ok((p.search.ex.profile.take().unwrap_or_default(), step_s))
}

/// The profile as a table sorted by time, per step.
pub fn profile_table(prof: &Profile, steps: usize, step_s: f64) -> String {
    let total: f64 = prof.rows.values().map(|v| v.0).sum();
    let mut s = format!(
        "step time {:.2} ms (unprofiled); profiled ops {:.2} ms/step\n{:<18} {:>4} {:>11} {:>7} {:>10}\n",
        step_s * 1e3,
        total * 1e3 / steps as f64,
        "op family",
        "dir",
        "ms/step",
        "share",
        "calls/step"
    );
    for (fam, dir, secs, calls) in prof.sorted() {
        let _ = writeln!(
            s,
            "{fam:<18} {dir:>4} {:>11.3} {:>6.1}% {:>10}",
            secs * 1e3 / steps as f64,
            100.0 * secs / total,
            calls / steps
        );
    }
    s
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
