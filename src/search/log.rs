//! What a search logs: one [`EpochLog`] per epoch, written as one line of
//! `log.jsonl` with the softmax of every α matrix (`softmax_alpha_normal`
//! and `softmax_alpha_reduce` for DARTS' cells, `softmax_alpha_cell` for
//! NB201's, `softmax_alpha_width` for the width space); and every
//! `--alpha-every` steps one line of `alpha.jsonl` with the same fields.

use std::fmt::Write as _;

use crate::genotype::softmax_rows;
pub use crate::genotype::{ALPHA_MOVED, alpha_spread};
use crate::run_record;
use crate::search::algo::Algo;

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
    /// Largest |softmax(α) − 1/K| over every α matrix after the epoch.
    pub alpha_spread: f64,
    /// NB201 with a table: the derived cell's arch string and its three
    /// 200-epoch test accuracies from the table.
    pub bench: Option<(String, crate::space::nb201::table::Accuracies)>,
}

/// The softmax of each α matrix, as `,"softmax_alpha_NAME":[[…],…]` fields.
fn softmax_fields(k: usize, alphas: &[(&str, Vec<f64>)]) -> String {
    let mut s = String::new();
    for (name, a) in alphas {
        let rows: Vec<String> = softmax_rows(a, k)
            .chunks(k)
            .map(|r| format!("[{}]", r.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>().join(",")))
            .collect();
        let _ = write!(s, ",\"softmax_alpha_{name}\":[{}]", rows.join(","));
    }
    s
}

/// One line of `alpha.jsonl`: the softmax of every α matrix after step
/// `step` (1 to `steps`) of epoch `epoch`.
pub(super) fn alpha_json(epoch: usize, step: usize, steps: usize, k: usize, alphas: &[(&str, Vec<f64>)]) -> String {
    format!("{{\"epoch\":{epoch},\"step\":{step},\"steps\":{steps}{}}}", softmax_fields(k, alphas))
}

/// One line of `log.jsonl`. DARTS second order takes its validation loss at
/// the unrolled weights `w'`, so it is logged as `loss_val_unrolled`.
pub(super) fn log_json(algo: Algo, l: &EpochLog, k: usize, alphas: &[(&str, Vec<f64>)]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"epoch\":{},\"lr\":{},\"loss_train\":{},\"{}\":{},\"acc_train\":{},\"acc_val\":{},\"test_acc\":{},\
         \"steps\":{},\"alpha_spread\":{:.5}",
        l.epoch,
        l.lr,
        run_record::json_num(l.loss_train),
        if algo == Algo::Darts2 { "loss_val_unrolled" } else { "loss_val" },
        run_record::json_num(l.loss_val),
        run_record::json_num(l.acc_train),
        run_record::json_num(l.acc_val),
        l.test_acc.map_or("null".into(), run_record::json_num),
        l.steps,
        l.alpha_spread,
    );
    if let Some((arch, acc)) = &l.bench {
        let _ = write!(s, ",\"arch\":\"{arch}\",\"bench\":{}", crate::space::nb201::table::accuracies_json(acc));
    }
    // The timings last: `run_record::split_timings` keeps them apart in checkpoints.
    let _ = write!(
        s,
        "{},\"step_ms\":{:.3},\"step_ms_median\":{:.3},\"step_cpu_ms\":{}}}",
        softmax_fields(k, alphas),
        l.step_ms,
        l.step_ms_median,
        run_record::json_num(l.step_cpu_ms)
    );
    s
}
