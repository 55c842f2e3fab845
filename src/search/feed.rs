//! Feeding a search: batches drawn from the two halves of the training set
//! into the input nodes of the search graph, kept so that DARTS second
//! order can feed the same batch again.

use crate::backend::Backend;
use crate::data::{Dataset, SearchSampler};
use crate::error::Result;
use crate::exec::Exec;
use crate::search::algo::{Feed, Split};
use crate::tape::NodeId;

/// One batch: normalised images and labels (as floats).
struct Batch {
    x: Vec<f32>,
    labels: Vec<f32>,
}

/// Feeds batches from the two halves of the training set, keeping the last
/// batch drawn from each so that it can be fed again.
pub(super) struct DataFeed {
    ds: Dataset,
    /// Where each half stands; a checkpoint records it.
    pub(super) sampler: SearchSampler,
    train: Batch,
    val: Batch,
    train_io: (NodeId, NodeId, NodeId),
    val_io: (NodeId, NodeId, NodeId),
}

impl DataFeed {
    /// Batches of `batch` images from `ds` into the (images, labels, logits)
    /// nodes `train_io` and `val_io`.
    pub(super) fn new(
        ds: Dataset,
        sampler: SearchSampler,
        batch: usize,
        train_io: (NodeId, NodeId, NodeId),
        val_io: (NodeId, NodeId, NodeId),
    ) -> DataFeed {
        let image = ds.shape();
        let x_len = batch * image.c() * image.h() * image.w();
        let empty = || Batch { x: vec![0.0; x_len], labels: vec![0.0; batch] };
        DataFeed { ds, sampler, train: empty(), val: empty(), train_io, val_io }
    }

    fn put<B: Backend<Elem = f32>>(&self, ex: &mut Exec<B>, split: Split) -> Result<()> {
        if matches!(split, Split::Train | Split::Both) {
            ex.set_elems(self.train_io.0, &self.train.x)?;
            ex.set_elems(self.train_io.1, &self.train.labels)?;
        }
        if matches!(split, Split::Val | Split::Both) {
            ex.set_elems(self.val_io.0, &self.val.x)?;
            ex.set_elems(self.val_io.1, &self.val.labels)?;
        }
        Ok(())
    }
}

impl<B: Backend<Elem = f32>> Feed<B> for DataFeed {
    fn feed(&mut self, ex: &mut Exec<B>, split: Split) -> Result<()> {
        if matches!(split, Split::Train | Split::Both) {
            self.sampler.next_weights_batch(&self.ds, &mut self.train.x, &mut self.train.labels)?;
        }
        if matches!(split, Split::Val | Split::Both) {
            self.sampler.next_arch_batch(&self.ds, &mut self.val.x, &mut self.val.labels)?;
        }
        self.put(ex, split)
    }

    fn refeed(&mut self, ex: &mut Exec<B>, split: Split) -> Result<()> {
        self.put(ex, split)
    }
}
