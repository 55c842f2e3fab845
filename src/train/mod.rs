//! `rarts train`: DARTS' evaluation network built from a genotype and
//! trained from scratch with DARTS' recipe (SPEC §5; quark0/darts
//! `cnn/train.py`): SGD with momentum and weight decay, cosine to 0, gradient
//! clipping, random crop + flip, cutout; or the NB201 network of one cell
//! with NATS-Bench's recipe (SGD with Nesterov momentum, lr 0.1 cosine,
//! weight decay 5e-4, batch 256, 200 epochs). Per epoch it logs the training and
//! test loss and accuracy and writes a checkpoint with everything a resume
//! needs, with the same guarantees as a search (lock, no silent overwrite,
//! checksum, settings and data checked on resume).

use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::backend::{Backend, Part};
use crate::checkpoint::Checkpoint;
use crate::data::{Dataset, Rng, Sampler, cutout};
use crate::epochs::{self, EpochJob, Position, parse_sums, sums_line};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::flags::{need, show};
use crate::model::darts::{DartsFile, is_darts_file, load_darts};
use crate::model::{self, MODEL_FILE, Model, ModelInfo};
use crate::optim::{Scalars, Sgd, SgdSlots};
use crate::run_record::{self, DataId};
use crate::rundir::RunDir;
use crate::shape::Shape;
use crate::space::eval::{EvalNetConfig, set_drop_masks};
use crate::space::trainable::trainable;
use crate::space::width::prune_l1;
use crate::space::{GROUP_AUX, GROUP_W, NetSpec, SpaceKind};
use crate::tape::NodeId;

/// The files `rarts train` writes into `--out` (besides its lock file).
mod bench;
mod config;
mod resume;

pub use crate::score::{Scores, score};
pub use bench::{TrainStepTiming, bench};
pub use config::{Recipe, RecipeOverrides, TrainConfig};
use resume::{restore, save};

pub const RUN_FILES: [&str; 3] = ["checkpoint.bin", "log.jsonl", MODEL_FILE];
/// Stream of the cutout draws under the run's seed (the sampler uses 0.. for
/// its shuffles and `u64::MAX` for crops and flips).
const CUTOUT_STREAM: u64 = u64::MAX - 1;
/// The retraining step's scalars: its learning rate, the gradient norm, the clip factor.
const SGD_SLOTS: SgdSlots = SgdSlots { lr: 0, norm: 1, scale: 2 };

/// What one epoch of training saw.
#[derive(Clone, Debug, Default)]
pub struct TrainEpoch {
    pub epoch: usize,
    pub lr: f32,
    pub drop_prob: f32,
    /// Mean training loss (with the auxiliary head's term, as `train.py` logs it).
    pub loss_train: f64,
    pub acc_train: f64,
    pub test: Option<Scores>,
    pub seconds: f64,
}

/// The outcome of `rarts train`.
pub struct TrainResult {
    pub weights: usize,
    pub epochs: Vec<TrainEpoch>,
}

/// Trains (or resumes training) on backend `be`, writing into `cfg.run.out`.
pub fn train<B: Backend<Elem = f32>>(be: B, cfg: &TrainConfig) -> Result<TrainResult> {
    cfg.validate()?;
    let r = cfg.recipe();
    // The architecture first: a bad --genotype fails before the folder is taken.
    cfg.net(1, Shape::nchw(1, 1, 32, 32))?;
    let tag = |e: Error| Error(e.0.replacen("--model", "--init-from", 1));
    let init_model = match &cfg.init_from {
        Some(p) if is_darts_file(&model::model_path(p)) => {
            if cfg.space != SpaceKind::Darts {
                crate::bail!("--init-from {}: DARTS' NetworkCIFAR weights; expected --space darts", p.display());
            }
            let file = DartsFile::load(&model::model_path(p), Some(&cfg.genotype)).map_err(tag)?;
            file.eval_config().map_err(tag)?;
            Some(InitFrom::Darts(file))
        }
        Some(p) => Some(InitFrom::Model(Model::load(p).map_err(tag)?)),
        None => None,
    };
    let files = crate::report::with_report_files(&RUN_FILES);
    let dir = RunDir::open(&cfg.run.out, "--out", &files, cfg.run.existing)?;
    let split = cfg.data.load()?;
    let (train, test) = (split.train, split.test);
    let eval_images = run_record::eval_images(cfg.eval_images, test.as_ref(), usize::MAX, &cfg.data)?;
    let data_id = DataId::of(&train, test.as_ref());
    let [n, _, h, w] = train.shape().0;
    if cfg.cutout > h.max(w) {
        crate::bail!(
            "--cutout {}: larger than the images of --data {} ({h}×{w}); expected at most {}",
            cfg.cutout,
            cfg.data,
            h.max(w)
        );
    }
    if r.batch > n {
        crate::bail!(
            "--batch {}: more than the {n} training images of --data {}; expected at most {n}",
            r.batch,
            cfg.data
        );
    }
    let spec = cfg.net(train.num_classes(), train.shape())?;
    if let NetSpec::Nb201(_, cell) = &spec
        && !cell.input_reaches_output()
    {
        eprintln!("warning: --genotype {}: {}", cell.to_arch_str(), crate::space::nb201::CUT_OFF);
    }
    // A size that cannot fit is refused before anything is recorded.
    let least = spec.min_bytes(r.batch, train.shape());
    be.reserve(usize::try_from(least).unwrap_or(usize::MAX))
        .map_err(|e| Error(format!("{e} (a lower bound for {} at --batch {})", spec.size(), r.batch)))?;
    let net = trainable(&spec, r.batch, train.shape())?;
    let model_info = ModelInfo {
        // The model file's network has no drop path: it is for evaluation.
        net: match spec {
            NetSpec::Darts(c) => NetSpec::Darts(EvalNetConfig { drop_path: false, ..c }),
            other => other,
        },
        image: (train.shape().c(), train.shape().h(), train.shape().w()),
        metadata: cfg.identity().into_iter().map(|(k, v)| (format!("setting{k}"), v)).collect(),
    };
    let weights: usize = net.weights.iter().map(|&p| net.tape.shape(p).numel()).sum();
    let device = be.name();
    let mut ex = Exec::new(be, net.tape)?;
    ex.init_params(&mut StdRng::seed_from_u64(cfg.seed))?;
    match &init_model {
        Some(InitFrom::Model(m)) => init_from(&mut ex, &model_info.net, m)?,
        Some(InitFrom::Darts(f)) => load_darts(&mut ex, f).map_err(tag)?,
        None => {}
    }
    // DARTS clips and steps the head's weights together with the network's.
    let params: Vec<NodeId> = net.weights.iter().chain(&net.aux).copied().collect();
    let mut opt =
        Sgd::new(&ex, params, Part::WHOLE, cfg.momentum, r.weight_decay, (r.clip > 0.0).then_some(r.clip), SGD_SLOTS)?;
    opt.nesterov = r.nesterov;
    let sc = Scalars::new(&ex.be, 3)?;
    let mut sampler = Sampler::new(0..train.len(), r.batch, cfg.seed)?;
    let mut cut_rng = Rng::stream(cfg.seed, CUTOUT_STREAM);
    let steps = cfg.steps_per_epoch.map_or(sampler.steps_per_epoch(), |s| s.min(sampler.steps_per_epoch()));

    let ck_path = dir.join(RUN_FILES[0]);
    let mut log_lines = Vec::new();
    let mut from = Position::default();
    if let Some(ck) = run_record::resume_point(&dir, cfg.run.existing, &files, RUN_FILES[0])? {
        let tag = |e: Error| Error(format!("--resume from {}: {e}", ck_path.display()));
        from = Position::of(&ck, steps).map_err(tag)?;
        (_, log_lines) = restore(&mut ex, &mut opt, &mut sampler, &mut cut_rng, cfg, &data_id, ck).map_err(tag)?;
        dir.write(RUN_FILES[1], run_record::log_text(&log_lines).as_bytes())?;
        eprintln!("resuming from {} after {}", ck_path.display(), from.show());
    }
    println!("device: {device}");
    println!("weights: {weights}");

    let image = train.shape().c() * train.shape().h() * train.shape().w();
    let (epochs, batch) = (r.epochs, r.batch);
    let mut job = TrainEpochs {
        cfg,
        r,
        ex,
        net_io: net.io,
        loss: net.loss,
        drop_masks: net.drop_masks,
        opt,
        sc,
        sampler,
        cut_rng,
        train,
        test,
        eval_images,
        data_id,
        model_info,
        steps,
        x: vec![0.0; batch * image],
        labels: vec![0.0; batch],
        log: TrainEpoch::default(),
        t0: Instant::now(),
        log_lines,
        epochs: Vec::new(),
    };
    epochs::run(&mut job, &dir, RUN_FILES[0], &from, epochs, steps, cfg.run.checkpoint_every)?;
    Ok(TrainResult { weights, epochs: job.epochs })
}

/// A training as an [`EpochJob`]: the network, its optimizer, the data and
/// what its epochs have logged so far.
struct TrainEpochs<'a, B: Backend<Elem = f32>> {
    cfg: &'a TrainConfig,
    r: Recipe,
    ex: Exec<B>,
    net_io: (NodeId, NodeId, NodeId),
    loss: NodeId,
    drop_masks: Vec<NodeId>,
    opt: Sgd<B>,
    sc: Scalars<B>,
    sampler: Sampler,
    cut_rng: Rng,
    train: Dataset,
    test: Option<Dataset>,
    eval_images: usize,
    data_id: DataId,
    model_info: ModelInfo,
    steps: usize,
    x: Vec<f32>,
    labels: Vec<f32>,
    /// The epoch under way.
    log: TrainEpoch,
    t0: Instant,
    log_lines: Vec<String>,
    epochs: Vec<TrainEpoch>,
}

impl<B: Backend<Elem = f32>> EpochJob for TrainEpochs<'_, B> {
    const WHAT: &'static str = "training";

    fn begin_epoch(&mut self, epoch: usize) -> Result<()> {
        self.t0 = Instant::now();
        let lr = self.r.lr_at(epoch);
        self.sc.set(SGD_SLOTS.lr, lr as f64);
        let drop_prob = self.r.drop_path * epoch as f32 / self.r.epochs as f32;
        self.log = TrainEpoch { epoch, lr, drop_prob, ..Default::default() };
        Ok(())
    }

    fn step(&mut self, epoch: usize, s: usize) -> Result<()> {
        let (cfg, steps) = (self.cfg, self.steps);
        let ex = &mut self.ex;
        let io = self.net_io;
        let shape = self.train.shape();
        let (c, h, w) = (shape.c(), shape.h(), shape.w());
        self.sampler.next_batch(&self.train, &mut self.x, &mut self.labels)?;
        for img in self.x.chunks_exact_mut(c * h * w) {
            cutout(&mut self.cut_rng, cfg.cutout, c, h, w, img);
        }
        ex.set_elems(io.0, &self.x)?;
        ex.set_elems(io.1, &self.labels)?;
        // Fresh masks per op and step, from a generator keyed by the step
        // so that a resumed run draws the same ones.
        let mut rng = StdRng::seed_from_u64(crate::hash::hash64(
            &[cfg.seed, epoch as u64, s as u64].map(u64::to_le_bytes).concat(),
        ));
        set_drop_masks(ex, &self.drop_masks, &mut rng, self.log.drop_prob)?;
        ex.forward()?;
        ex.backward(self.loss, &[GROUP_W, GROUP_AUX])?;
        let loss = ex.scalar(self.loss)?;
        if !loss.is_finite() {
            // Before any update the rate cannot be the cause: the weights
            // the run started from are.
            if epoch == 0 && s == 0 {
                let from = match &cfg.init_from {
                    Some(p) => format!("the weights of --init-from {}", p.display()),
                    None => "the freshly initialised weights".to_string(),
                };
                crate::bail!(
                    "epoch 0 step 0: the training loss of the first batch, before any update, is {loss}: {from} \
                     give non-finite outputs; expected a model whose outputs are finite"
                );
            }
            crate::bail!(
                "epoch {epoch} step {s}: the training loss became {loss}; lower --lr (now {})",
                show(self.log.lr)
            );
        }
        self.sc.upload(&ex.be)?;
        self.opt.step(ex, &mut self.sc.buf).map_err(|e| Error(format!("epoch {epoch} step {s}: {e}")))?;
        self.log.loss_train += loss / steps as f64;
        self.log.acc_train += run_record::accuracy(ex, io.2, io.1)? / steps as f64;
        if cfg.run.progress {
            eprint!("\repoch {}/{} step {}/{} loss {loss:.4}   ", epoch + 1, self.r.epochs, s + 1, steps);
        }
        Ok(())
    }

    fn end_epoch(&mut self, _epoch: usize) -> Result<Option<Error>> {
        // A short epoch (--steps-per-epoch) leaves the sampler mid-epoch;
        // the next one continues from there.
        let mut score_failed = None;
        if let Some(t) = self.test.as_ref().filter(|_| self.eval_images > 0) {
            // No drop path at test time: every mask all ones.
            set_drop_masks(&mut self.ex, &self.drop_masks, &mut StdRng::seed_from_u64(0), 0.0)?;
            match score(&mut self.ex, t, self.net_io, self.eval_images) {
                Ok(sc) => self.log.test = Some(sc),
                Err(e) => score_failed = Some(e),
            }
        }
        self.log.seconds = self.t0.elapsed().as_secs_f64();
        if self.cfg.run.progress {
            eprintln!();
        }
        self.log_lines.push(log_json(&self.log));
        Ok(score_failed)
    }

    fn checkpoint(&self, done: usize) -> Result<Checkpoint> {
        save(&self.ex, &self.opt, &self.sampler, &self.cut_rng, self.cfg, &self.data_id, done, &self.log_lines)
    }

    fn epoch_sums(&self) -> String {
        sums_line(&[("loss_train", self.log.loss_train), ("acc_train", self.log.acc_train)])
    }

    fn restore_epoch_sums(&mut self, sums: &str) -> Result<()> {
        [self.log.loss_train, self.log.acc_train] = parse_sums(sums, ["loss_train", "acc_train"])?;
        Ok(())
    }

    fn lower(&self, _tensor: &str) -> String {
        format!("--lr (now {})", show(self.r.lr))
    }

    fn write_files(&mut self, dir: &RunDir, done: usize) -> Result<()> {
        dir.write(RUN_FILES[1], run_record::log_text(&self.log_lines).as_bytes())?;
        let meta = &mut self.model_info.metadata;
        meta.insert("epochs_done".into(), done.to_string());
        // PyTorch's BN counts its batches: every epoch has `steps` steps.
        meta.insert("steps_done".into(), (done * self.steps).to_string());
        dir.write(MODEL_FILE, &model::to_bytes(&self.ex, &self.model_info)?)?;
        if self.cfg.run.report {
            crate::report::write_during_run(&self.cfg.run.out);
        }
        self.epochs.push(std::mem::take(&mut self.log));
        Ok(())
    }
}

/// Where `--init-from` points: a rarts model, or weights in DARTS' layout
/// (from `rarts export` or PyTorch; see [`crate::model::darts`]).
enum InitFrom {
    Model(Model),
    Darts(DartsFile),
}

/// Sets the weights and BN statistics of `ex` (the network `spec`) from
/// the trained `model`: as they are when it is the same network; pruned by
/// the L1 norm of their filters when both are width networks of the same
/// depth and data and the model is at least as wide in every layer.
fn init_from<B: Backend<Elem = f32>>(ex: &mut Exec<B>, spec: &NetSpec, model: &Model) -> Result<()> {
    let what = model.path.display();
    let tag = |e: Error| Error(e.0.replacen("--model", "--init-from", 1));
    match (spec, &model.info.net) {
        (NetSpec::Width(cfg, to), NetSpec::Width(from_cfg, from)) if cfg == from_cfg => {
            let pruned =
                prune_l1(cfg, from, to, &|n| model.tensor(n)).map_err(|e| Error(format!("--init-from {what}: {e}")))?;
            model.load_into_with(ex, &pruned).map_err(tag)
        }
        (a, b) if a == b => model.load_into(ex).map_err(tag),
        (a, b) => crate::bail!(
            "--init-from {what}: that model is a {} network ({}); expected the one being trained ({}), or for \
             --space width a wider network of the same depth trained on the same data",
            b.space().name(),
            b.arch(),
            a.arch()
        ),
    }
}

fn log_json(l: &TrainEpoch) -> String {
    let (tl, ta) = l
        .test
        .as_ref()
        .map_or(("null".into(), "null".into()), |s| (run_record::json_num(s.loss), run_record::json_num(s.accuracy())));
    format!(
        "{{\"epoch\":{},\"lr\":{},\"loss_train\":{},\"acc_train\":{},\"loss_test\":{tl},\"acc_test\":{ta},\
         \"drop_prob\":{},\"epoch_s\":{:.3}}}",
        l.epoch,
        l.lr,
        run_record::json_num(l.loss_train),
        run_record::json_num(l.acc_train),
        l.drop_prob,
        l.seconds
    )
}
