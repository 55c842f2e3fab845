//! Scoring a network on a test set: what search, training, evaluation and
//! export share.

use crate::backend::Backend;
use crate::data::Dataset;
use crate::data::augment::fill_eval;
use crate::error::Result;
use crate::exec::Exec;
use crate::run_record;
use crate::tape::NodeId;

/// Loss and accuracy over a test set, with per-class counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    /// Mean cross-entropy.
    pub loss: f64,
    /// `(correct, seen)` per class.
    pub per_class: Vec<(usize, usize)>,
    /// Each image's logits, in the data set's order.
    pub logits: Vec<Vec<f64>>,
}

impl Scores {
    pub fn seen(&self) -> usize {
        self.per_class.iter().map(|c| c.1).sum()
    }
    pub fn accuracy(&self) -> f64 {
        self.per_class.iter().map(|c| c.0).sum::<usize>() as f64 / self.seen().max(1) as f64
    }
}

/// Scores the first `max` images of `test` through `io = (images, labels,
/// logits)` with BatchNorm in evaluation mode (running statistics).
pub fn score<B: Backend<Elem = f32>>(
    ex: &mut Exec<B>,
    test: &Dataset,
    io: (NodeId, NodeId, NodeId),
    max: usize,
) -> Result<Scores> {
    let s = ex.shape(io.0);
    let batch = s.n();
    let mut x = vec![0.0; s.numel()];
    let mut labels = vec![0.0; batch];
    let n = max.min(test.len());
    let mut out = Scores { loss: 0.0, per_class: vec![(0, 0); test.num_classes()], logits: Vec::new() };
    let mut seen = 0;
    ex.train = false;
    let r = (|| -> Result<()> {
        while seen < n {
            let got = fill_eval(test, seen, &mut x, &mut labels)?.min(n - seen);
            ex.set_elems(io.0, &x)?;
            ex.set_elems(io.1, &labels)?;
            ex.forward()?;
            // Only the first `got` rows are real images.
            let z = ex.get(io.2)?;
            let k = z.len() / batch;
            for (i, (row, lab)) in z.chunks(k).zip(&labels).take(got).enumerate() {
                if let Some(v) = row.iter().find(|v| !v.is_finite()) {
                    crate::bail!(
                        "image {} of {}: the network's output holds {v}, so no accuracy can be given; its weights \
                         have diverged",
                        seen + i,
                        test.name()
                    );
                }
                let lab = *lab as usize;
                let best = run_record::argmax(row);
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                out.loss += lse - row[lab];
                out.per_class[lab].0 += (best == lab) as usize;
                out.per_class[lab].1 += 1;
                out.logits.push(row.to_vec());
            }
            seen += got;
        }
        Ok(())
    })();
    ex.train = true;
    r?;
    out.loss /= n.max(1) as f64;
    Ok(out)
}
