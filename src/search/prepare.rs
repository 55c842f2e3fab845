//! Setting a search up: the data loaded, the search graph recorded and
//! allocated on a backend, the parameters initialised, the optimizers and
//! the batch feed made — everything a step needs, for `rarts search` and
//! its timings alike.

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::backend::{Backend, SgdStep};
use crate::data::{Dataset, SearchSampler};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::run_record::{self, DataId};
use crate::search::algo::{ArchOpt, Hyper, Search, StepStats};
use crate::search::config::{DEFAULT_EVAL_IMAGES, SearchConfig};
use crate::search::feed::DataFeed;
use crate::search::graph::{Graph, min_plan_bytes, record};
use crate::space::darts::{DartsSpace, SuperNetConfig};
use crate::space::nb201::{Nb201Config, Nb201Space};
use crate::space::width::{WidthConfig, WidthSpace};
use crate::space::{GROUP_W, SearchSpace, SpaceKind};

/// A search set up and ready to step: the recorded graph on a backend, its
/// optimizers, and the data feeding it.
pub struct Prepared<B: Backend> {
    pub search: Search<B>,
    pub(super) feed: DataFeed<B>,
    pub(super) g: Graph,
    pub(super) test: Option<Dataset>,
    pub(super) space: Box<dyn SearchSpace>,
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
    pub fn step(&mut self) -> Result<StepStats> {
        self.search.step(&mut self.feed)
    }
}

/// Loads the data, records the supernet(s) and allocates the whole plan.
pub fn prepare<B: Backend<Elem = f32>>(be: B, cfg: &SearchConfig) -> Result<Prepared<B>> {
    cfg.validate()?;
    if cfg.step.cuda_graph && !be.has_graphs() {
        crate::bail!("--cuda-graph: CUDA graphs need --device cuda ({} runs each step as it comes)", be.name());
    }
    let split = cfg.step.data.load()?;
    let data_id = DataId::of(&split.train, split.test.as_ref());
    let eval_images =
        run_record::eval_images(cfg.eval_images, split.test.as_ref(), DEFAULT_EVAL_IMAGES, &cfg.step.data)?;
    let ds = split.train;
    // The batch against the data before any of the plan is allocated.
    let sampler = SearchSampler::new(&ds, cfg.step.train_portion, cfg.step.batch, cfg.step.seed)
        .map_err(|e| Error(format!("--batch {} on --data {}: {e}", cfg.step.batch, cfg.step.data)))?;
    let image = ds.shape();
    let space: Box<dyn SearchSpace> = match cfg.step.space {
        SpaceKind::Darts => {
            Box::new(DartsSpace(SuperNetConfig::new(cfg.step.c, cfg.step.layers, ds.num_classes(), image.c())))
        }
        SpaceKind::Nb201 => {
            Box::new(Nb201Space(Nb201Config::new(cfg.step.c, cfg.step.cells_per_stage, ds.num_classes(), image.c())))
        }
        SpaceKind::Width => {
            let w = WidthConfig {
                macs_target: cfg.step.macs_target,
                macs_weight: cfg.step.macs_weight,
                ..WidthConfig::new(cfg.step.depth, ds.num_classes(), image.c(), (image.h(), image.w()))
            };
            w.check()?;
            Box::new(WidthSpace(w))
        }
    };
    if image.h() % 4 != 0 || image.w() % 4 != 0 {
        crate::bail!(
            "--data {}: images of {}×{} cannot pass two reductions evenly; expected sides divisible by 4",
            cfg.step.data,
            image.h(),
            image.w()
        );
    }
    // Refuse an absurd plan before recording it (the recording alone could
    // exhaust the memory); the exact plan is checked again in `Exec::new`.
    let least = min_plan_bytes(cfg, space.as_ref(), image);
    be.reserve(usize::try_from(least).unwrap_or(usize::MAX))
        .map_err(|e| Error(format!("{e} (a lower bound for {})", cfg.size_flags())))?;
    let (tape, g) = record(cfg, space.as_ref(), image);
    let weights = tape.numel(GROUP_W) / if g.prob.side_by_side { 2 } else { 1 };
    let mut ex = Exec::new(be, tape)?;
    // Side by side, every weight draws w's copy and repeats it for y.
    ex.init_params(&mut StdRng::seed_from_u64(cfg.step.seed))?;
    if !g.prob.side_by_side {
        // y starts as a copy of w (its BN statistics are its own, equal at start).
        for (&w, &y) in g.prob.w.iter().zip(&g.prob.y) {
            ex.copy_node(w, y)?;
        }
    }
    let hp = Hyper {
        algo: cfg.step.algo,
        schedule: cfg.step.schedule,
        sgd: SgdStep { lr: cfg.step.lr, momentum: cfg.step.momentum, weight_decay: cfg.step.weight_decay },
        clip: Some(cfg.step.clip),
        arch: ArchOpt::Adam { lr: cfg.step.arch_lr, betas: (0.5, 0.999), weight_decay: cfg.step.arch_weight_decay },
        lambda: cfg.step.lambda,
        beta: cfg.step.beta,
        xi: cfg.step.xi,
    };
    let mut search = Search::new(ex, g.prob.clone(), hp)?;
    search.set_cuda_graph(cfg.step.cuda_graph);
    let steps = cfg.steps_per_epoch.map_or(sampler.steps_per_epoch(), |s| s.min(sampler.steps_per_epoch()));
    let feed = DataFeed::new(&search.ex.be, ds, sampler, cfg.step.batch, g.train_io, g.val_io)?;
    Ok(Prepared { search, feed, g, test: split.test, space, steps, weights, eval_images, data_id })
}
