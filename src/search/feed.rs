//! Feeding a search: batches drawn from the two halves of the training set,
//! uploaded into staging buffers on the device before the step, then copied
//! into the input nodes of the search graph by the step itself (so that the
//! step's kernels never wait for the host, and DARTS second order can put
//! the same training batch in twice).

use crate::backend::Backend;
use crate::data::{Dataset, SearchSampler};
use crate::error::Result;
use crate::exec::Exec;
use crate::search::algo::{Feed, Split};
use crate::tape::NodeId;

/// One batch: normalised images and labels (as floats), on the host and in
/// its staging buffers on the device.
struct Batch<B: Backend> {
    x: Vec<f32>,
    labels: Vec<f32>,
    dev: [B::Buf; 2],
}

/// Feeds batches from the two halves of the training set.
pub(super) struct DataFeed<B: Backend> {
    ds: Dataset,
    /// Where each half stands; a checkpoint records it.
    pub(super) sampler: SearchSampler,
    train: Batch<B>,
    val: Batch<B>,
    train_io: (NodeId, NodeId, NodeId),
    val_io: (NodeId, NodeId, NodeId),
}

impl<B: Backend<Elem = f32>> DataFeed<B> {
    /// Batches of `batch` images from `ds` into the (images, labels, logits)
    /// nodes `train_io` and `val_io`.
    pub(super) fn new(
        be: &B,
        ds: Dataset,
        sampler: SearchSampler,
        batch: usize,
        train_io: (NodeId, NodeId, NodeId),
        val_io: (NodeId, NodeId, NodeId),
    ) -> Result<Self> {
        let image = ds.shape();
        let x_len = batch * image.c() * image.h() * image.w();
        let empty = || -> Result<Batch<B>> {
            Ok(Batch { x: vec![0.0; x_len], labels: vec![0.0; batch], dev: [be.alloc(x_len)?, be.alloc(batch)?] })
        };
        Ok(DataFeed { ds, sampler, train: empty()?, val: empty()?, train_io, val_io })
    }
}

impl<B: Backend<Elem = f32>> Feed<B> for DataFeed<B> {
    fn draw(&mut self, ex: &mut Exec<B>) -> Result<()> {
        let (t, v) = (&mut self.train, &mut self.val);
        self.sampler.next_weights_batch(&self.ds, &mut t.x, &mut t.labels)?;
        self.sampler.next_arch_batch(&self.ds, &mut v.x, &mut v.labels)?;
        for b in [t, v] {
            ex.be.upload(&mut b.dev[0], &b.x)?;
            ex.be.upload(&mut b.dev[1], &b.labels)?;
        }
        Ok(())
    }

    fn put(&mut self, ex: &mut Exec<B>, split: Split) -> Result<()> {
        let (mut src, mut dst) = (Vec::new(), Vec::new());
        if matches!(split, Split::Train | Split::Both) {
            src.extend(&self.train.dev);
            dst.extend([self.train_io.0, self.train_io.1]);
        }
        if matches!(split, Split::Val | Split::Both) {
            src.extend(&self.val.dev);
            dst.extend([self.val_io.0, self.val_io.1]);
        }
        let (be, mut nodes) = ex.val_list_mut(&dst);
        be.copy_list(&src, &mut nodes)
    }
}
