//! A training's checkpoint: written after every epoch, checked and read
//! back by `--resume`.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn save<B: Backend<Elem = f32>>(
    ex: &Exec<B>,
    opt: &Sgd<B>,
    sampler: &Sampler,
    cut_rng: &Rng,
    cfg: &TrainConfig,
    data_id: &DataId,
    epochs_done: usize,
    log_lines: &[String],
) -> Result<Checkpoint> {
    let mut ck = Checkpoint::default();
    stamp(cfg, data_id).write(&mut ck, epochs_done, log_lines);
    ck.set("sampler", sampler.state());
    ck.set("cutout_rng", cut_rng.state());
    run_record::push_persistent(ex, &mut ck)?;
    for (i, d) in opt.state(&ex.be)?.into_iter().enumerate() {
        ck.push(format!("opt.w.{i}"), d);
    }
    Ok(ck)
}

fn stamp<'a>(cfg: &'a TrainConfig, data_id: &'a DataId) -> run_record::Stamp<'a> {
    run_record::Stamp { format: run_record::TRAIN_FORMAT, settings: cfg.identity(), data: &cfg.data, data_id }
}

/// Loads a checkpoint written by `save` after checking that it belongs to
/// this run; returns the epochs done and the log lines it carries.
pub(super) fn restore<B: Backend<Elem = f32>>(
    ex: &mut Exec<B>,
    opt: &mut Sgd<B>,
    sampler: &mut Sampler,
    cut_rng: &mut Rng,
    cfg: &TrainConfig,
    data_id: &DataId,
    mut ck: Checkpoint,
) -> Result<(usize, Vec<String>)> {
    let (done, log) = stamp(cfg, data_id).check(&ck, cfg.recipe().epochs)?;
    sampler.restore(&ck.parse("sampler")?)?;
    *cut_rng = Rng::new(ck.parse("cutout_rng")?);
    let mut cur = 0;
    run_record::take_persistent(ex, &mut ck, &mut cur)?;
    let state = (0..opt.params.len())
        .map(|i| ck.take(&mut cur, &format!("opt.w.{i}"), ex.shape(opt.params[i]).numel()))
        .collect::<Result<Vec<_>>>()?;
    opt.load_state(&ex.be, &state)?;
    Ok((done, log))
}
