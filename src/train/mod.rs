//! `rarts train`: DARTS' evaluation network built from a genotype and
//! trained from scratch with DARTS' recipe (SPEC §5; quark0/darts
//! `cnn/train.py`): SGD with momentum and weight decay, cosine to 0, gradient
//! clipping, random crop + flip, cutout; or the NB201 network of one cell
//! with NATS-Bench's recipe (SGD with Nesterov momentum, lr 0.1 cosine,
//! weight decay 5e-4, batch 256, 200 epochs). Per epoch it logs the training and
//! test loss and accuracy and writes a checkpoint with everything a resume
//! needs, with the same guarantees as a search (lock, no silent overwrite,
//! checksum, settings and data checked on resume).

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::backend::{Backend, Part};
use crate::checkpoint::Checkpoint;
use crate::data::{DataSpec, Dataset, Rng, Sampler, cutout};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::genotype::Genotype;
use crate::model::{self, MODEL_FILE, Model, ModelInfo};
use crate::optim::{Scalars, Sgd, SgdSlots};
use crate::run_record::{self, DataId};
use crate::rundir::{Existing, RunDir};
use crate::search::config::{momentum, need, rate, show, sizes};
use crate::shape::Shape;
use crate::space::eval::{EvalNetConfig, set_drop_masks};
use crate::space::nb201::{Nb201Cell, Nb201Config};
use crate::space::width::{WidthConfig, Widths, prune_l1};
use crate::space::{GROUP_AUX, GROUP_W, NetSpec, SpaceKind};
use crate::tape::{NodeId, Tape};

/// The files `rarts train` writes into `--out` (besides its lock file).
mod bench;
mod eval;
mod resume;

pub use crate::score::{Scores, score};
pub use bench::{TrainStepTiming, bench};
pub(crate) use eval::load_darts;
pub use eval::{Evaluated, evaluate};
use resume::{restore, save};

pub const RUN_FILES: [&str; 3] = ["checkpoint.bin", "log.jsonl", MODEL_FILE];
const FORMAT: &str = "rarts-train-1";
/// Stream of the cutout draws under the run's seed (the sampler uses 0.. for
/// its shuffles and `u64::MAX` for crops and flips).
const CUTOUT_STREAM: u64 = u64::MAX - 1;
/// Loss weight of the auxiliary head (`train.py`'s `auxiliary_weight`).
pub const AUX_WEIGHT: f32 = 0.4;
/// The retraining step's scalars: its learning rate, the gradient norm, the clip factor.
const SGD_SLOTS: SgdSlots = SgdSlots { lr: 0, norm: 1, scale: 2 };

/// Everything `rarts train` is told; `Default` is DARTS' CIFAR-10 recipe,
/// [`TrainConfig::recipe`] each space's.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub data: DataSpec,
    /// The space the architecture comes from.
    pub space: SpaceKind,
    /// Where the architecture comes from (see [`Genotype::from_source`],
    /// [`Nb201Cell::from_source`]).
    pub genotype: String,
    pub c: usize,
    /// DARTS: cells.
    pub layers: usize,
    /// NB201: cells per stage.
    pub cells_per_stage: usize,
    /// Width: the ResNet's depth (6n + 2).
    pub depth: usize,
    pub batch: usize,
    pub epochs: usize,
    pub lr: f32,
    pub momentum: f32,
    /// Nesterov momentum (NB201's recipe).
    pub nesterov: bool,
    pub weight_decay: f32,
    /// Gradient-norm clip (0: none).
    pub clip: f32,
    /// Side of the cutout square (0: none).
    pub cutout: usize,
    /// Drop-path probability at the last epoch (it grows as `p·epoch/epochs`).
    pub drop_path: f32,
    /// DARTS' auxiliary head after cell 2L/3, loss weight [`AUX_WEIGHT`].
    pub auxiliary: bool,
    pub seed: u64,
    /// Caps the steps of each epoch (short runs and tests).
    pub steps_per_epoch: Option<usize>,
    /// Test images evaluated after each epoch (`None`: all of them).
    pub eval_images: Option<usize>,
    /// Start from this trained model's weights instead of random ones (a
    /// `rarts train` folder or its model file): the same network, or for
    /// the width space a wider one of the same depth, pruned to the widths
    /// by the L1 norm of its filters ([`prune_l1`]); or a file in DARTS'
    /// layout for the same genotype (`rarts export`, or PyTorch).
    pub init_from: Option<PathBuf>,
    pub out: PathBuf,
    pub existing: Existing,
    pub progress: bool,
    /// Write `report.html` and its figures into `out` after every epoch.
    pub report: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: DataSpec::Embedded,
            space: SpaceKind::Darts,
            genotype: "DARTS_V2".into(),
            c: 36,
            layers: 20,
            cells_per_stage: 5,
            depth: 20,
            batch: 96,
            epochs: 600,
            lr: 0.025,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 3e-4,
            clip: 5.0,
            cutout: 0,
            drop_path: 0.2,
            auxiliary: false,
            seed: 0,
            steps_per_epoch: None,
            eval_images: None,
            init_from: None,
            out: PathBuf::from("runs/train"),
            existing: Existing::Refuse,
            progress: true,
            report: true,
        }
    }
}

impl TrainConfig {
    /// The space's recipe: DARTS' ([`Default`]), or NATS-Bench's for NB201
    /// (C = 16, 5 cells per stage, SGD with Nesterov momentum 0.9, lr 0.1
    /// cosine, weight decay 5e-4, batch 256, 200 epochs, no clipping, no
    /// cutout, no drop path). The genotype is left empty.
    pub fn recipe(space: SpaceKind) -> TrainConfig {
        match space {
            SpaceKind::Darts => TrainConfig::default(),
            SpaceKind::Nb201 => TrainConfig {
                space,
                genotype: String::new(),
                c: 16,
                cells_per_stage: 5,
                batch: 256,
                epochs: 200,
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 5e-4,
                clip: 0.0,
                cutout: 0,
                drop_path: 0.0,
                out: PathBuf::from("runs/train-nb201"),
                ..TrainConfig::default()
            },
            // He et al.'s CIFAR recipe, with the cosine schedule.
            SpaceKind::Width => TrainConfig {
                space,
                genotype: String::new(),
                batch: 128,
                epochs: 200,
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 1e-4,
                clip: 0.0,
                cutout: 0,
                drop_path: 0.0,
                out: PathBuf::from("runs/train-width"),
                ..TrainConfig::default()
            },
        }
    }

    /// Every setting inside its domain; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        // --layers is DARTS' only; NB201 counts cells per stage.
        let layers = if self.space == SpaceKind::Darts { self.layers } else { crate::search::config::MIN_LAYERS };
        sizes(self.c, layers, self.batch, self.epochs, self.steps_per_epoch)?;
        need(self.cells_per_stage >= 1, "--cells-per-stage", self.cells_per_stage, "at least 1")?;
        if self.space != SpaceKind::Darts {
            let nets = if self.space == SpaceKind::Nb201 { "NB201 networks" } else { "ResNets" };
            need(self.drop_path == 0.0, "--drop-path", self.drop_path, &format!("0 ({nets} have no drop path)"))?;
            need(!self.auxiliary, "--auxiliary", self.auxiliary, &format!("off ({nets} have no auxiliary head)"))?;
        }
        rate("--lr", self.lr, true)?;
        rate("--clip", self.clip, false)?;
        rate("--weight-decay", self.weight_decay, false)?;
        momentum(self.momentum)?;
        need(
            self.drop_path.is_finite() && (0.0..1.0).contains(&self.drop_path),
            "--drop-path",
            self.drop_path,
            "a probability in [0, 1)",
        )
    }

    /// The settings a resume must match. DARTS' list is the first
    /// format's, so that its checkpoints still resume; NB201 adds its own.
    pub fn identity(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<usize>| v.map_or_else(|| "default".into(), |v| v.to_string());
        let mut v = vec![
            ("--data", self.data.to_string()),
            ("--genotype", self.genotype.clone()),
            ("--c", self.c.to_string()),
            ("--layers", self.layers.to_string()),
            ("--batch", self.batch.to_string()),
            ("--epochs", self.epochs.to_string()),
            ("--lr", self.lr.to_string()),
            ("--momentum", self.momentum.to_string()),
            ("--weight-decay", self.weight_decay.to_string()),
            ("--clip", self.clip.to_string()),
            ("--cutout", self.cutout.to_string()),
            ("--drop-path", self.drop_path.to_string()),
            ("--auxiliary", self.auxiliary.to_string()),
            ("--seed", self.seed.to_string()),
            ("--steps-per-epoch", opt(self.steps_per_epoch)),
            ("--eval-images", opt(self.eval_images)),
        ];
        if self.space != SpaceKind::Darts {
            // DARTS' network shape and extras do not apply.
            v.retain(|(f, _)| !matches!(*f, "--layers" | "--drop-path" | "--auxiliary"));
            v.push(("--space", self.space.name().into()));
            match self.space {
                SpaceKind::Width => {
                    v.retain(|(f, _)| *f != "--c");
                    v.push(("--depth", self.depth.to_string()))
                }
                _ => v.push(("--cells-per-stage", self.cells_per_stage.to_string())),
            }
        }
        if self.nesterov {
            v.push(("--nesterov", "true".into()));
        }
        if let Some(m) = &self.init_from {
            v.push(("--init-from", m.display().to_string()));
        }
        v
    }

    /// The network to train on `image`-shaped inputs, from the
    /// architecture source and the sizes.
    pub fn net(&self, classes: usize, image: Shape) -> Result<NetSpec> {
        let in_channels = image.c();
        Ok(match self.space {
            SpaceKind::Darts => {
                let genotype = Genotype::from_source(&self.genotype).map_err(|e| Error(format!("--genotype: {e}")))?;
                NetSpec::Darts(EvalNetConfig {
                    drop_path: self.drop_path > 0.0,
                    auxiliary: self.auxiliary,
                    ..EvalNetConfig::new(self.c, self.layers, classes, in_channels, genotype)
                })
            }
            SpaceKind::Nb201 => {
                let cell = Nb201Cell::from_source(&self.genotype).map_err(|e| Error(format!("--genotype: {e}")))?;
                NetSpec::Nb201(Nb201Config::new(self.c, self.cells_per_stage, classes, in_channels), cell)
            }
            SpaceKind::Width => {
                let cfg = WidthConfig::new(self.depth, classes, in_channels, (image.h(), image.w()));
                cfg.check()?;
                let w = Widths::from_source(&cfg, &self.genotype).map_err(|e| Error(format!("--widths: {e}")))?;
                NetSpec::Width(cfg, w)
            }
        })
    }

    /// Cosine annealing to 0 per epoch, as `train.py`.
    pub fn lr_at(&self, epoch: usize) -> f32 {
        let t = epoch as f64 / self.epochs as f64;
        (self.lr as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
    }
}

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

/// The recorded network and the nodes the trainer touches.
struct Net {
    tape: Tape,
    io: (NodeId, NodeId, NodeId),
    /// Cross-entropy, plus `AUX_WEIGHT` times the auxiliary head's.
    loss: NodeId,
    /// The network's weights (DARTS' count) and the auxiliary head's.
    weights: Vec<NodeId>,
    aux: Vec<NodeId>,
    drop_masks: Vec<NodeId>,
}

/// The network `spec` on batches of `batch` images of `image`.
fn record(spec: &NetSpec, batch: usize, image: Shape) -> Result<Net> {
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(batch, image.c(), image.h(), image.w()), "images");
    let labels = t.input(Shape::vec(batch), "labels");
    let auxiliary = matches!(spec, NetSpec::Darts(c) if c.auxiliary);
    let net =
        spec.record(&mut t, x, GROUP_W).map_err(|e| if auxiliary { Error(format!("--auxiliary: {e}")) } else { e })?;
    let ce = t.cross_entropy(net.logits, labels);
    let loss = match net.aux_logits {
        Some(aux) => {
            let ce_aux = t.cross_entropy(aux, labels);
            t.combine(&[(ce, 1.0), (ce_aux, AUX_WEIGHT)])
        }
        None => ce,
    };
    Ok(Net {
        tape: t,
        io: (x, labels, net.logits),
        loss,
        weights: net.weight_params,
        aux: net.aux_params,
        drop_masks: net.drop_masks,
    })
}

/// Trains (or resumes training) on backend `be`, writing into `cfg.out`.
pub fn train<B: Backend<Elem = f32>>(be: B, cfg: &TrainConfig) -> Result<TrainResult> {
    cfg.validate()?;
    // The architecture first: a bad --genotype fails before the folder is taken.
    cfg.net(1, Shape::nchw(1, 1, 32, 32))?;
    let tag = |e: Error| Error(e.0.replacen("--model", "--init-from", 1));
    let init_model = match &cfg.init_from {
        Some(p) if crate::export::is_darts_file(&model::model_path(p)) => {
            if cfg.space != SpaceKind::Darts {
                crate::bail!("--init-from {}: DARTS' NetworkCIFAR weights; expected --space darts", p.display());
            }
            let file = crate::export::DartsFile::load(&model::model_path(p), Some(&cfg.genotype)).map_err(tag)?;
            file.eval_config().map_err(tag)?;
            Some(InitFrom::Darts(file))
        }
        Some(p) => Some(InitFrom::Model(Model::load(p).map_err(tag)?)),
        None => None,
    };
    let files = crate::report::with_report_files(&RUN_FILES);
    let dir = RunDir::open(&cfg.out, "--out", &files, cfg.existing)?;
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
    if cfg.batch > n {
        crate::bail!(
            "--batch {}: more than the {n} training images of --data {}; expected at most {n}",
            cfg.batch,
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
    let least = spec.min_bytes(cfg.batch, train.shape());
    be.reserve(usize::try_from(least).unwrap_or(usize::MAX))
        .map_err(|e| Error(format!("{e} (a lower bound for {} at --batch {})", spec.size(), cfg.batch)))?;
    let net = record(&spec, cfg.batch, train.shape())?;
    let mut model_info = ModelInfo {
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
    let mut opt = Sgd::new(
        &ex,
        params,
        Part::WHOLE,
        cfg.momentum,
        cfg.weight_decay,
        (cfg.clip > 0.0).then_some(cfg.clip),
        SGD_SLOTS,
    )?;
    opt.nesterov = cfg.nesterov;
    let mut sc = Scalars::new(&ex.be, 3)?;
    let mut sampler = Sampler::new(0..train.len(), cfg.batch, cfg.seed)?;
    let mut cut_rng = Rng::stream(cfg.seed, CUTOUT_STREAM);
    let steps = cfg.steps_per_epoch.map_or(sampler.steps_per_epoch(), |s| s.min(sampler.steps_per_epoch()));

    let ck_path = dir.join(RUN_FILES[0]);
    let mut log_lines = Vec::new();
    let mut start = 0;
    if let Some(ck) = run_record::resume_point(&dir, cfg.existing, &files, RUN_FILES[0])? {
        (start, log_lines) = restore(&mut ex, &mut opt, &mut sampler, &mut cut_rng, cfg, &data_id, ck)
            .map_err(|e| Error(format!("--resume from {}: {e}", ck_path.display())))?;
        dir.write(RUN_FILES[1], run_record::log_text(&log_lines).as_bytes())?;
        eprintln!("resuming from {} after epoch {start}", ck_path.display());
    }
    println!("device: {device}");
    println!("weights: {weights}");

    let (c, h, w) = (train.shape().c(), train.shape().h(), train.shape().w());
    let mut x = vec![0.0; cfg.batch * c * h * w];
    let mut labels = vec![0.0; cfg.batch];
    let mut epochs = Vec::new();
    for epoch in start..cfg.epochs {
        let t0 = Instant::now();
        let lr = cfg.lr_at(epoch);
        sc.set(SGD_SLOTS.lr, lr as f64);
        let drop_prob = cfg.drop_path * epoch as f32 / cfg.epochs as f32;
        let mut log = TrainEpoch { epoch, lr, drop_prob, ..Default::default() };
        for s in 0..steps {
            sampler.next_batch(&train, &mut x, &mut labels)?;
            for img in x.chunks_exact_mut(c * h * w) {
                cutout(&mut cut_rng, cfg.cutout, c, h, w, img);
            }
            ex.set_elems(net.io.0, &x)?;
            ex.set_elems(net.io.1, &labels)?;
            // Fresh masks per op and step, from a generator keyed by the step
            // so that a resumed run draws the same ones.
            let mut rng = StdRng::seed_from_u64(crate::hash::hash64(
                &[cfg.seed, epoch as u64, s as u64].map(u64::to_le_bytes).concat(),
            ));
            set_drop_masks(&mut ex, &net.drop_masks, &mut rng, drop_prob)?;
            ex.forward()?;
            ex.backward(net.loss, &[GROUP_W, GROUP_AUX])?;
            let loss = ex.scalar(net.loss)?;
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
                crate::bail!("epoch {epoch} step {s}: the training loss became {loss}; lower --lr (now {})", show(lr));
            }
            sc.upload(&ex.be)?;
            opt.step(&mut ex, &mut sc.buf).map_err(|e| Error(format!("epoch {epoch} step {s}: {e}")))?;
            log.loss_train += loss / steps as f64;
            log.acc_train += run_record::accuracy(&ex, net.io.2, net.io.1)? / steps as f64;
            if cfg.progress {
                eprint!("\repoch {}/{} step {}/{} loss {loss:.4}   ", epoch + 1, cfg.epochs, s + 1, steps);
            }
        }
        // A short epoch (--steps-per-epoch) leaves the sampler mid-epoch;
        // the next one continues from there.
        let mut score_failed = None;
        if let Some(t) = test.as_ref().filter(|_| eval_images > 0) {
            // No drop path at test time: every mask all ones.
            set_drop_masks(&mut ex, &net.drop_masks, &mut StdRng::seed_from_u64(0), 0.0)?;
            // A failed score is reported after the checkpoint's own check,
            // which names the tensor that diverged.
            match score(&mut ex, t, net.io, eval_images) {
                Ok(sc) => log.test = Some(sc),
                Err(e) => score_failed = Some(e),
            }
        }
        log.seconds = t0.elapsed().as_secs_f64();
        if cfg.progress {
            eprintln!();
        }
        log_lines.push(log_json(&log));
        let ck = save(&ex, &opt, &sampler, &cut_rng, cfg, &data_id, epoch + 1, &log_lines)?;
        if let Some((name, i, v)) = ck.first_non_finite() {
            crate::bail!(
                "epoch {epoch}: tensor '{name}' holds {v} at element {i}: training diverged; lower --lr (now {}). \
                 Nothing of this epoch was written",
                show(cfg.lr)
            );
        }
        if let Some(e) = score_failed {
            crate::bail!("epoch {epoch}: {e}; lower --lr (now {}). Nothing of this epoch was written", show(cfg.lr));
        }
        ck.save(&ck_path)?;
        dir.write(RUN_FILES[1], run_record::log_text(&log_lines).as_bytes())?;
        model_info.metadata.insert("epochs_done".into(), (epoch + 1).to_string());
        // PyTorch's BN counts its batches: every epoch has `steps` steps.
        model_info.metadata.insert("steps_done".into(), ((epoch + 1) * steps).to_string());
        dir.write(MODEL_FILE, &model::to_bytes(&ex, &model_info)?)?;
        if cfg.report {
            crate::report::write_during_run(&cfg.out);
        }
        epochs.push(log);
    }
    Ok(TrainResult { weights, epochs })
}

/// Where `--init-from` points: a rarts model, or weights in DARTS' layout
/// (from `rarts export` or PyTorch; see [`crate::export`]).
enum InitFrom {
    Model(Model),
    Darts(crate::export::DartsFile),
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
