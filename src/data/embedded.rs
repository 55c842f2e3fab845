//! The default data set, built into the binary: the first 2,000 training and
//! first 500 test images of Fashion-MNIST (MIT licence, Zalando SE), stored as
//! gzipped IDX files under `data/fashion-mnist-small/` (see its README.md for
//! the exact subset and checksums) and parsed by the ordinary IDX loader.

use super::Split;
use super::idx::{self, Kind};
use crate::error::Result;

pub const NAME: &str = "fashion-mnist-small";
pub const TRAIN_LEN: usize = 2000;
pub const TEST_LEN: usize = 500;

const TRAIN_IMAGES: &[u8] = include_bytes!("../../data/fashion-mnist-small/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../../data/fashion-mnist-small/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../../data/fashion-mnist-small/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../../data/fashion-mnist-small/t10k-labels-idx1-ubyte.gz");

/// Decodes the embedded subset: 2,000 training and 500 test images, 1×28×28.
pub fn load() -> Result<Split> {
    let at = |f: &str| format!("embedded {NAME}/{f}.gz");
    let train = idx::parse(
        TRAIN_IMAGES,
        TRAIN_LABELS,
        &at(idx::TRAIN_IMAGES),
        &at(idx::TRAIN_LABELS),
        Kind::FashionMnist.meta(NAME),
    )?;
    let test = idx::parse(
        TEST_IMAGES,
        TEST_LABELS,
        &at(idx::TEST_IMAGES),
        &at(idx::TEST_LABELS),
        Kind::FashionMnist.meta(&format!("{NAME}-test")),
    )?;
    Ok(Split { train, test: Some(test) })
}
