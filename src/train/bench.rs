//! `rarts bench-train`: the timing of DARTS' retraining step.

use super::*;

/// One timing of the training step (`rarts bench-train`).
#[derive(Clone, Debug)]
pub struct TrainStepTiming {
    /// Median wall time of a step, seconds.
    pub median_s: f64,
    /// Weights without the auxiliary head (DARTS' count).
    pub weights: usize,
    /// Time per op family over the same steps, when asked for.
    pub profile: Option<crate::exec::Profile>,
}

/// Times the whole training step (forward, backward, clip, SGD) of
/// `net_cfg` on fixed random `image`-shaped inputs, with the optimizer
/// settings of [`TrainConfig::default`] and drop path at its `drop_path`
/// (the value at the last epoch) when the network records it, as the
/// anchor's `darts_torch.py --train` does: 3 warm-up steps, then the median
/// of `steps`.
pub fn bench<B: Backend<Elem = f32>>(
    be: B,
    net_cfg: &EvalNetConfig,
    batch: usize,
    image: Shape,
    steps: usize,
    profile: bool,
) -> Result<TrainStepTiming> {
    need(steps >= 1, "--steps", steps, "at least 1")?;
    let spec = NetSpec::Darts(net_cfg.clone());
    let least = spec.min_bytes(batch, image);
    be.reserve(usize::try_from(least).unwrap_or(usize::MAX))
        .map_err(|e| Error(format!("{e} (a lower bound for {} at batch {batch})", spec.size())))?;
    let net = trainable(&spec, batch, image)?;
    let weights = net.weights.iter().map(|&p| net.tape.shape(p).numel()).sum();
    let mut ex = Exec::new(be, net.tape)?;
    ex.init_params(&mut StdRng::seed_from_u64(0))?;
    let params: Vec<NodeId> = net.weights.iter().chain(&net.aux).copied().collect();
    let (cfg, recipe) = (TrainConfig::default(), Recipe::of(SpaceKind::Darts));
    let mut opt = Sgd::new(&ex, params, Part::WHOLE, cfg.momentum, recipe.weight_decay, Some(recipe.clip), SGD_SLOTS)?;
    let mut sc = Scalars::new(&ex.be, 3)?;
    sc.set(SGD_SLOTS.lr, recipe.lr as f64);
    let mut rng = Rng::new(1);
    let x: Vec<f32> = (0..batch * image.c() * image.h() * image.w()).map(|_| rng.unit_f32() * 2.0 - 1.0).collect();
    let labels: Vec<f32> = (0..batch).map(|_| rng.below(net_cfg.classes) as f32).collect();
    ex.set_elems(net.io.0, &x)?;
    ex.set_elems(net.io.1, &labels)?;
    let mut mask_rng = StdRng::seed_from_u64(2);
    let mut step = |ex: &mut Exec<B>| -> Result<()> {
        set_drop_masks(ex, &net.drop_masks, &mut mask_rng, recipe.drop_path)?;
        ex.forward()?;
        ex.backward(net.loss, &[GROUP_W, GROUP_AUX])?;
        sc.upload(&ex.be)?;
        opt.step(ex, &mut sc.buf)
    };
    for _ in 0..3 {
        step(&mut ex)?;
    }
    ex.be.synchronize()?;
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = Instant::now();
        step(&mut ex)?;
        ex.be.synchronize()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let profile = if profile {
        ex.profile = Some(crate::exec::Profile::default());
        for _ in 0..steps {
            step(&mut ex)?;
        }
        ex.profile.take()
    } else {
        None
    };
    Ok(TrainStepTiming { median_s: times[times.len() / 2], weights, profile })
}
