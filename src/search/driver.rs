//! `rarts search`: the supernet on real data, end to end — batches,
//! the chosen algorithm, the cosine learning-rate schedule, per-epoch logs
//! and checkpoints, resume, and the genotype at the end.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::backend::{Backend, SgdStep};
use crate::checkpoint::{Checkpoint, write_text_atomic};
use crate::data::{DataSpec, Dataset, SearchSampler, fill_eval};
use crate::error::{Context, Result};
use crate::exec::{Exec, Profile};
use crate::genotype::{Genotype, softmax_rows};
use crate::search::algo::{Algo, ArchOpt, Feed, Hyper, Problem, Schedule, Search, Split};
use crate::shape::Shape;
use crate::space::darts::{MixWeights, PRIMITIVES, SuperNetConfig, alphas, supernet};
use crate::space::{GROUP_ARCH, GROUP_W, GROUP_Y};
use crate::tape::{Kind, NodeId, Tape};

/// Everything `rarts search` is told.
#[derive(Clone, Debug)]
pub struct SearchConfig {
    pub data: DataSpec,
    pub algo: Algo,
    pub schedule: Schedule,
    pub lambda: f32,
    pub beta: f32,
    /// DARTS second order unrolling step; `None` = the current weight lr.
    pub xi: Option<f32>,
    pub c: usize,
    pub layers: usize,
    pub batch: usize,
    pub epochs: usize,
    /// Caps the steps of each epoch (short runs and tests); `None` = the whole split.
    pub steps_per_epoch: Option<usize>,
    pub train_portion: f64,
    pub lr: f32,
    pub lr_min: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub clip: f32,
    pub arch_lr: f32,
    pub arch_weight_decay: f32,
    pub seed: u64,
    /// Test images evaluated after each epoch (0 = none).
    pub eval_images: usize,
    pub out: PathBuf,
    pub resume: bool,
    /// Progress lines on stderr.
    pub progress: bool,
}

impl SearchConfig {
    /// Settings that must match for `--resume` to continue a run.
    fn identity(&self) -> String {
        format!(
            "data={} algo={} schedule={:?} lambda={} beta={} xi={:?} c={} layers={} batch={} epochs={} steps={:?} \
             portion={} lr={} lr_min={} momentum={} wd={} clip={} arch_lr={} arch_wd={} seed={}",
            self.data,
            self.algo.name(),
            self.schedule,
            self.lambda,
            self.beta,
            self.xi,
            self.c,
            self.layers,
            self.batch,
            self.epochs,
            self.steps_per_epoch,
            self.train_portion,
            self.lr,
            self.lr_min,
            self.momentum,
            self.weight_decay,
            self.clip,
            self.arch_lr,
            self.arch_weight_decay,
            self.seed
        )
    }

    /// Cosine annealing per epoch (PyTorch's `CosineAnnealingLR`, `T_max = epochs`).
    pub fn lr_at(&self, epoch: usize) -> f32 {
        let t = epoch as f64 / self.epochs.max(1) as f64;
        (self.lr_min as f64 + (self.lr - self.lr_min) as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
    }
}

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

/// Feeds batches from the two halves of the training set and keeps the
/// accuracy of each batch it fed once the step has run its forward.
struct DataFeed {
    ds: Dataset,
    sampler: SearchSampler,
    x: Vec<f32>,
    y: Vec<f32>,
    train_io: (NodeId, NodeId, NodeId),
    val_io: (NodeId, NodeId, NodeId),
}

impl<B: Backend<Elem = f32>> Feed<B> for DataFeed {
    fn feed(&mut self, ex: &mut Exec<B>, split: Split) -> Result<()> {
        if matches!(split, Split::Train | Split::Both) {
            self.sampler.next_weights_batch(&self.ds, &mut self.x, &mut self.y)?;
            ex.set_elems(self.train_io.0, &self.x)?;
            ex.set_elems(self.train_io.1, &self.y)?;
        }
        if matches!(split, Split::Val | Split::Both) {
            self.sampler.next_arch_batch(&self.ds, &mut self.x, &mut self.y)?;
            ex.set_elems(self.val_io.0, &self.x)?;
            ex.set_elems(self.val_io.1, &self.y)?;
        }
        Ok(())
    }
}

/// Fraction of rows whose largest logit is the label.
fn accuracy<B: Backend>(ex: &Exec<B>, logits: NodeId, labels: NodeId) -> Result<f64> {
    let z = ex.get(logits)?;
    let l = ex.get(labels)?;
    let k = z.len() / l.len();
    let hits = z
        .chunks(k)
        .zip(&l)
        .filter(|(row, lab)| {
            let best = row.iter().enumerate().fold(0, |b, (i, v)| if *v > row[b] { i } else { b });
            best == **lab as usize
        })
        .count();
    Ok(hits as f64 / l.len() as f64)
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
    pub step_ms: f64,
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

/// Runs (or resumes) a search on backend `be`, writing into `cfg.out`.
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
}

impl<B: Backend<Elem = f32>> Prepared<B> {
    /// One search step on the next batches.
    pub fn step(&mut self) -> Result<crate::search::algo::StepStats> {
        self.search.step(&mut self.feed)
    }
}

/// Loads the data, records the supernet(s) and allocates the whole plan.
pub fn prepare<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig) -> Result<Prepared<B>> {
    let split = cfg.data.load()?;
    let ds = split.train;
    let image = ds.shape();
    let net = SuperNetConfig::new(cfg.c, cfg.layers, ds.num_classes(), image.c());
    if !cfg.c.is_multiple_of(2) {
        crate::bail!("--c {}: the channel count must be even (FactorizedReduce halves it)", cfg.c);
    }
    if image.h() % 4 != 0 || image.w() % 4 != 0 {
        crate::bail!(
            "images of {}×{} cannot pass two reductions evenly; expected sides divisible by 4",
            image.h(),
            image.w()
        );
    }
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
    let feed =
        DataFeed { ds, sampler, x: vec![0.0; x_len], y: vec![0.0; cfg.batch], train_io: g.train_io, val_io: g.val_io };
    Ok(Prepared { search, feed, g, test: split.test, net, steps, weights })
}

/// Runs (or resumes) a search on backend `be`, writing into `cfg.out`.
pub fn run<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig) -> Result<SearchResult> {
    let device = be.name();
    let p = prepare(be, cfg)?;
    let Prepared { mut search, mut feed, g, test, net, steps, weights } = p;
    fs::create_dir_all(&cfg.out).ctx(|| format!("--out {}: cannot create the directory", cfg.out.display()))?;
    let ck_path = cfg.out.join("checkpoint.bin");
    let log_path = cfg.out.join("log.jsonl");
    let mut epochs: Vec<EpochLog> = Vec::new();
    let mut log_lines: Vec<String> = Vec::new();
    let mut start_epoch = 0;
    if cfg.resume {
        if ck_path.exists() {
            let ck = Checkpoint::load(&ck_path)?;
            start_epoch = restore(&mut search, &mut feed.sampler, cfg, ck)?;
            if let Ok(text) = fs::read_to_string(&log_path) {
                log_lines = text.lines().take(start_epoch).map(String::from).collect();
            }
            eprintln!("resuming from {} after epoch {start_epoch}", ck_path.display());
        } else {
            eprintln!("--resume: no checkpoint at {}; starting a new search", ck_path.display());
        }
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
    let total_steps = (cfg.epochs - start_epoch.min(cfg.epochs)) * steps;
    let mut done_steps = 0usize;
    for epoch in start_epoch..cfg.epochs {
        let lr = cfg.lr_at(epoch);
        search.set_lr(lr);
        let mut log = EpochLog { epoch, lr, steps, ..Default::default() };
        let t_epoch = Instant::now();
        for s in 0..steps {
            let st = search.step(&mut feed).map_err(|e| crate::Error(format!("epoch {epoch} step {s}: {e}")))?;
            log.loss_train += st.loss_train / steps as f64;
            log.loss_val += st.loss_val / steps as f64;
            // The last forward of the step saw the train batch in the w network;
            // for RARTS it also saw the validation batch in the y network.
            log.acc_train += accuracy(&search.ex, g.train_io.2, g.train_io.1)? / steps as f64;
            if cfg.algo == Algo::Rarts {
                log.acc_val += accuracy(&search.ex, g.val_io.2, g.val_io.1)? / steps as f64;
            }
            done_steps += 1;
            if cfg.progress {
                let el = t_run.elapsed().as_secs_f64();
                let eta = el / done_steps as f64 * (total_steps - done_steps) as f64;
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
        if cfg.algo != Algo::Rarts {
            log.acc_val = f64::NAN; // DARTS's α pass is not a measure of y; not reported
        }
        if let Some(test) = test.as_ref().filter(|_| cfg.eval_images > 0) {
            log.test_acc = Some(evaluate(&mut search.ex, test, g.train_io, cfg.eval_images)?);
        }
        if cfg.progress {
            eprintln!();
        }
        let an = search.ex.get(g.alpha_normal)?;
        let ar = search.ex.get(g.alpha_reduce)?;
        log_lines.push(log_json(&log, &an, &ar));
        write_text_atomic(&log_path, &(log_lines.join("\n") + "\n"))?;
        save(&search, &feed.sampler, cfg, epoch + 1)?.save(&ck_path)?;
        epochs.push(log);
    }

    let an = search.ex.get(g.alpha_normal)?;
    let ar = search.ex.get(g.alpha_reduce)?;
    let genotype = Genotype::from_alphas(&an, &ar, net.steps, net.multiplier);
    write_text_atomic(&cfg.out.join("genotype.txt"), &(genotype.to_text() + "\n"))?;
    write_text_atomic(&cfg.out.join("genotype.json"), &(genotype.to_json(&an, &ar) + "\n"))?;
    Ok(SearchResult { genotype, epochs, weights })
}

/// Test accuracy of the w network on up to `max` test images, BatchNorm in
/// evaluation mode (running statistics).
fn evaluate<B: Backend<Elem = f32>>(
    ex: &mut Exec<B>,
    test: &Dataset,
    io: (NodeId, NodeId, NodeId),
    max: usize,
) -> Result<f64> {
    let s = ex.shape(io.0);
    let batch = s.n();
    let mut x = vec![0.0; s.numel()];
    let mut y = vec![0.0; batch];
    let n = max.min(test.len());
    let (mut hits, mut seen) = (0.0, 0usize);
    ex.train = false;
    let r = (|| -> Result<()> {
        while seen < n {
            let got = fill_eval(test, seen, &mut x, &mut y)?.min(n - seen);
            ex.set_elems(io.0, &x)?;
            ex.set_elems(io.1, &y)?;
            ex.forward()?;
            // Only the first `got` rows are real images.
            let z = ex.get(io.2)?;
            let k = z.len() / batch;
            for (row, lab) in z.chunks(k).zip(&y).take(got) {
                let best = row.iter().enumerate().fold(0, |b, (i, v)| if *v > row[b] { i } else { b });
                hits += (best == *lab as usize) as u8 as f64;
            }
            seen += got;
        }
        Ok(())
    })();
    ex.train = true;
    r?;
    Ok(hits / n.max(1) as f64)
}

fn json_f64(v: f64) -> String {
    if v.is_finite() { format!("{v:.6}") } else { "null".into() }
}

fn log_json(l: &EpochLog, an: &[f64], ar: &[f64]) -> String {
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
        "{{\"epoch\":{},\"lr\":{},\"loss_train\":{},\"loss_val\":{},\"acc_train\":{},\"acc_val\":{},\"test_acc\":{},\
         \"step_ms\":{:.3},\"steps\":{},\"softmax_alpha_normal\":{},\"softmax_alpha_reduce\":{}}}",
        l.epoch,
        l.lr,
        json_f64(l.loss_train),
        json_f64(l.loss_val),
        json_f64(l.acc_train),
        json_f64(l.acc_val),
        l.test_acc.map_or("null".into(), json_f64),
        l.step_ms,
        l.steps,
        mat(an),
        mat(ar)
    );
    s
}

/// Every parameter and BN statistic, optimizer state and sampler position.
fn save<B: Backend<Elem = f32>>(
    s: &Search<B>,
    sampler: &SearchSampler,
    cfg: &SearchConfig,
    epochs_done: usize,
) -> Result<Checkpoint> {
    let mut ck = Checkpoint::default();
    ck.set("format", "rarts-search-1");
    ck.set("config", cfg.identity());
    ck.set("epochs_done", epochs_done);
    // The sampler state is several lines; the checkpoint header holds one per key.
    ck.set("sampler", sampler.save_state().trim_end().replace('\n', "|"));
    let (t, arch_state) = s.arch_opt_state()?;
    ck.set("arch_t", t);
    for n in persistent_nodes(&s.ex.tape) {
        ck.push(s.ex.tape.nodes[n].name.clone(), s.ex.get(n)?.iter().map(|&v| v as f32).collect());
    }
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

/// Parameters and running statistics, in recording order.
fn persistent_nodes(t: &Tape) -> Vec<NodeId> {
    (0..t.nodes.len()).filter(|&i| matches!(t.nodes[i].kind, Kind::Param { .. } | Kind::State { .. })).collect()
}

/// Loads a checkpoint written by `save`; returns the epochs already done.
fn restore<B: Backend<Elem = f32>>(
    s: &mut Search<B>,
    sampler: &mut SearchSampler,
    cfg: &SearchConfig,
    mut ck: Checkpoint,
) -> Result<usize> {
    if ck.get("format") != Some("rarts-search-1") {
        crate::bail!("checkpoint format is {:?}; expected rarts-search-1", ck.get("format"));
    }
    if ck.get("config") != Some(cfg.identity().as_str()) {
        crate::bail!(
            "--resume: the checkpoint was written with other settings\n  checkpoint: {}\n  now:        {}",
            ck.get("config").unwrap_or("?"),
            cfg.identity()
        );
    }
    let done: usize = ck.parse("epochs_done")?;
    sampler.restore_state(&ck.get("sampler").unwrap_or_default().replace('|', "\n"))?;
    let arch_t: u32 = ck.parse("arch_t")?;
    let mut cur = 0;
    for n in persistent_nodes(&s.ex.tape) {
        let name = s.ex.tape.nodes[n].name.clone();
        let d = ck.take(&mut cur, &name, s.ex.shape(n).numel())?;
        s.ex.set_elems(n, &d)?;
    }
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
    Ok(done)
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
