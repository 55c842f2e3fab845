//! A search's checkpoint: what [`save`] writes after every epoch (every
//! parameter and BN statistic, the optimizers' state, the sampler's
//! position, the settings, the data and the log so far) and what
//! [`restore`] puts back for `--resume`, once it has checked that the
//! checkpoint belongs to this run.

use crate::backend::{Backend, Part};
use crate::checkpoint::Checkpoint;
use crate::data::SearchSampler;
use crate::error::Result;
use crate::run_record::{self, DataId};
use crate::search::algo::{ArchOpt, Search};
use crate::search::config::SearchConfig;
use crate::tape::NodeId;

/// Every parameter and BN statistic, optimizer state and sampler position,
/// the settings and the data the run was made on, the log and the α trace
/// so far.
pub(super) fn save<B: Backend<Elem = f32>>(
    s: &Search<B>,
    sampler: &SearchSampler,
    cfg: &SearchConfig,
    data_id: &DataId,
    epochs_done: usize,
    log_lines: &[String],
    alpha_lines: &[String],
) -> Result<Checkpoint> {
    let mut ck = Checkpoint::default();
    stamp(cfg, data_id).write(&mut ck, epochs_done, log_lines);
    for (i, line) in alpha_lines.iter().enumerate() {
        ck.set(&format!("alpha.{i}"), line);
    }
    // The sampler state is several lines; the checkpoint header holds one per key.
    ck.set("sampler", sampler.save_state().trim_end().replace('\n', "|"));
    let (t, arch_state) = s.arch_opt_state()?;
    ck.set("arch_t", t);
    run_record::push_persistent(&s.ex, &mut ck)?;
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

fn stamp<'a>(cfg: &'a SearchConfig, data_id: &'a DataId) -> run_record::Stamp<'a> {
    run_record::Stamp { format: run_record::SEARCH_FORMAT, settings: cfg.identity(), data: &cfg.step.data, data_id }
}

/// Loads a checkpoint written by `save` after checking that it belongs to
/// this run (format, settings, data); returns the epochs already done and
/// the log and α-trace lines it carries.
pub(super) fn restore<B: Backend<Elem = f32>>(
    s: &mut Search<B>,
    sampler: &mut SearchSampler,
    cfg: &SearchConfig,
    data_id: &DataId,
    mut ck: Checkpoint,
) -> Result<(usize, Vec<String>, Vec<String>)> {
    let (done, log) = stamp(cfg, data_id).check(&ck, cfg.epochs)?;
    let alpha: Vec<String> = (0..).map_while(|i| ck.get(&format!("alpha.{i}")).map(String::from)).collect();
    sampler.restore_state(&ck.get("sampler").unwrap_or_default().replace('|', "\n"))?;
    let arch_t: u32 = ck.parse("arch_t")?;
    let mut cur = 0;
    run_record::take_persistent(&mut s.ex, &mut ck, &mut cur)?;
    let mut take_all = |prefix: &str, lens: Vec<usize>, ck: &mut Checkpoint| -> Result<Vec<Vec<f32>>> {
        lens.iter().enumerate().map(|(i, &len)| ck.take(&mut cur, &format!("{prefix}.{i}"), len)).collect()
    };
    let lens = |nodes: &[NodeId], part: Part| {
        nodes.iter().map(|&n| part.range(s.ex.shape(n).numel()).len()).collect::<Vec<_>>()
    };
    let (w_part, y_part) = s.prob.parts();
    let (w_lens, y_lens, a_lens) = (lens(&s.prob.w, w_part), lens(&s.prob.y, y_part), lens(&s.prob.alpha, Part::WHOLE));
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
    Ok((done, log, alpha))
}
