//! Batches for search and training: seeded per-epoch shuffles over a range
//! of images, filled through `augment`, and a small text state so a run can
//! resume mid-epoch bit for bit.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use super::augment::{Aug, PAD, check_buffers, norm_table, write_with};
use super::{Dataset, Rng};
use crate::bail;
use crate::error::{Error, Result};

/// Where a sampler stands: enough to rebuild it exactly. `range` and `batch`
/// are recorded so a state cannot be restored into a differently built
/// sampler. Text form: `range=0..25000 batch=64 seed=… epoch=… pos=… rng=…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplerState {
    pub start: usize,
    pub end: usize,
    pub batch: usize,
    pub seed: u64,
    /// Epochs completed.
    pub epoch: u64,
    /// Batches already drawn in the current epoch.
    pub pos: usize,
    /// The augmentation generator's state.
    pub rng: u64,
}

impl fmt::Display for SamplerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "range={}..{} batch={} seed={} epoch={} pos={} rng={:016x}",
            self.start, self.end, self.batch, self.seed, self.epoch, self.pos, self.rng
        )
    }
}

impl FromStr for SamplerState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: String| Error(format!("sampler state '{s}': {why}"));
        let mut fields = [None; 6];
        const KEYS: [&str; 6] = ["range", "batch", "seed", "epoch", "pos", "rng"];
        for tok in s.split_whitespace() {
            let Some((k, v)) = tok.split_once('=') else {
                return Err(bad(format!("'{tok}' is not key=value")));
            };
            let Some(slot) = KEYS.iter().position(|&key| key == k) else {
                return Err(bad(format!("unknown key '{k}'; expected {}", KEYS.join(", "))));
            };
            if fields[slot].replace(v).is_some() {
                return Err(bad(format!("'{k}' given twice")));
            }
        }
        let get = |i: usize| fields[i].ok_or_else(|| bad(format!("missing '{}'", KEYS[i])));
        let num = |i: usize| -> Result<u64> {
            let v = get(i)?;
            v.parse::<u64>().map_err(|_| bad(format!("{}={v} is not a whole number", KEYS[i])))
        };
        let range = get(0)?;
        let (a, b) = range
            .split_once("..")
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
            .ok_or_else(|| bad(format!("range={range}; expected START..END")))?;
        let rng = get(5)?;
        let rng = u64::from_str_radix(rng, 16).map_err(|_| bad(format!("rng={rng} is not hexadecimal")))?;
        let to_usize = |i: usize| -> Result<usize> {
            usize::try_from(num(i)?).map_err(|_| bad(format!("{} is too large", KEYS[i])))
        };
        Ok(SamplerState {
            start: a,
            end: b,
            batch: to_usize(1)?,
            seed: num(2)?,
            epoch: num(3)?,
            pos: to_usize(4)?,
            rng,
        })
    }
}

/// Draws batches from a contiguous range of image indices, reshuffled each
/// epoch. The shuffle of epoch e depends only on (seed, e); the augmentation
/// draws come from one generator whose state is saved. An epoch is
/// floor(len / batch) batches: the last partial batch is dropped.
#[derive(Clone, Debug)]
pub struct Sampler {
    range: Range<usize>,
    batch: usize,
    seed: u64,
    epoch: u64,
    pos: usize,
    rng: Rng,
    order: Vec<usize>, // this epoch's permutation of `range`
    augment: bool,
}

/// Stream ids under a sampler's seed.
const AUG_STREAM: u64 = u64::MAX;

impl Sampler {
    /// Augments by default; see `set_augment`.
    pub fn new(range: Range<usize>, batch: usize, seed: u64) -> Result<Self> {
        if batch == 0 {
            bail!("batch size 0; expected at least 1");
        }
        if range.len() < batch {
            bail!(
                "{} images (indices {}..{}) cannot fill one batch of {batch}; lower the batch size or use more data",
                range.len(),
                range.start,
                range.end
            );
        }
        let mut s = Sampler {
            range,
            batch,
            seed,
            epoch: 0,
            pos: 0,
            rng: Rng::stream(seed, AUG_STREAM),
            order: Vec::new(),
            augment: true,
        };
        s.shuffle();
        Ok(s)
    }

    fn shuffle(&mut self) {
        self.order = self.range.clone().collect();
        Rng::stream(self.seed, self.epoch).shuffle(&mut self.order);
    }

    /// With `false`, batches are normalised only (same order of images).
    pub fn set_augment(&mut self, on: bool) {
        self.augment = on;
    }
    pub fn batch(&self) -> usize {
        self.batch
    }
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }
    pub fn steps_per_epoch(&self) -> usize {
        self.range.len() / self.batch
    }
    /// Epochs completed.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// Batches drawn in the current epoch.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Fills `x` (batch, c, h, w) and `labels` (batch,) with the next batch (`=`):
    /// labels as f32 class indices, images cropped, flipped (where `ds`
    /// allows) and normalised. Moves to the next epoch after its last batch.
    pub fn next_batch(&mut self, ds: &Dataset, x: &mut [f32], labels: &mut [f32]) -> Result<()> {
        check_buffers(ds, self.batch, x, labels)?;
        if self.range.end > ds.len() {
            bail!(
                "sampler over images {}..{} was given {} with {} images",
                self.range.start,
                self.range.end,
                ds.name(),
                ds.len()
            );
        }
        let table = norm_table(ds);
        let m = ds.image_len();
        let from = self.pos * self.batch;
        for (k, (xo, yo)) in x.chunks_exact_mut(m).zip(labels.iter_mut()).enumerate() {
            let i = self.order[from + k];
            let aug = if self.augment { Aug::random(&mut self.rng, PAD, ds.hflip()) } else { Aug::IDENTITY };
            write_with(ds, &table, i, aug, xo);
            *yo = f32::from(ds.labels()[i]);
        }
        self.pos += 1;
        if self.pos == self.steps_per_epoch() {
            self.pos = 0;
            self.epoch += 1;
            self.shuffle();
        }
        Ok(())
    }

    pub fn state(&self) -> SamplerState {
        SamplerState {
            start: self.range.start,
            end: self.range.end,
            batch: self.batch,
            seed: self.seed,
            epoch: self.epoch,
            pos: self.pos,
            rng: self.rng.state(),
        }
    }

    /// Puts the sampler where `st` says. The range and batch must match the
    /// ones this sampler was built with.
    pub fn restore(&mut self, st: &SamplerState) -> Result<()> {
        if st.start != self.range.start || st.end != self.range.end || st.batch != self.batch {
            bail!(
                "sampler state is for images {}..{} in batches of {}; this run uses {}..{} in batches of {}",
                st.start,
                st.end,
                st.batch,
                self.range.start,
                self.range.end,
                self.batch
            );
        }
        if st.pos >= self.steps_per_epoch() {
            bail!("sampler state at batch {} of an epoch of {} batches", st.pos, self.steps_per_epoch());
        }
        self.seed = st.seed;
        self.epoch = st.epoch;
        self.pos = st.pos;
        self.rng = Rng::new(st.rng);
        self.shuffle();
        Ok(())
    }
}

/// The search's two samplers (SPEC §4): the first `floor(train_portion · n)`
/// training images train the weights, the rest train α. Both use the
/// training augmentation. A search epoch is one pass over the weights part;
/// the α part keeps its own epochs, which line up when the parts are equal.
#[derive(Clone, Debug)]
pub struct SearchSampler {
    n: usize,
    pub weights: Sampler,
    pub arch: Sampler,
}

const STATE_HEADER: &str = "rarts-sampler v1";

impl SearchSampler {
    pub fn new(ds: &Dataset, train_portion: f64, batch: usize, seed: u64) -> Result<Self> {
        let n = ds.len();
        if !(train_portion > 0.0 && train_portion < 1.0) {
            bail!("train_portion {train_portion}; expected a fraction strictly between 0 and 1");
        }
        let split = (train_portion * n as f64).floor() as usize;
        if split < batch || n - split < batch {
            bail!(
                "train_portion {train_portion} of {n} images gives {split} for the weights and {} for α; \
                 batch {batch} needs at least {batch} in each",
                n - split
            );
        }
        Ok(SearchSampler {
            n,
            weights: Sampler::new(0..split, batch, Rng::stream(seed, 0).next_u64())?,
            arch: Sampler::new(split..n, batch, Rng::stream(seed, 1).next_u64())?,
        })
    }

    /// Weight steps in one search epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.weights.steps_per_epoch()
    }
    /// Search epochs completed.
    pub fn epoch(&self) -> u64 {
        self.weights.epoch()
    }
    /// Steps taken in the current search epoch.
    pub fn step(&self) -> usize {
        self.weights.pos()
    }

    /// The next weights batch; see `Sampler::next_batch`.
    pub fn next_weights_batch(&mut self, ds: &Dataset, x: &mut [f32], labels: &mut [f32]) -> Result<()> {
        self.check(ds)?;
        self.weights.next_batch(ds, x, labels)
    }
    /// The next α batch; see `Sampler::next_batch`.
    pub fn next_arch_batch(&mut self, ds: &Dataset, x: &mut [f32], labels: &mut [f32]) -> Result<()> {
        self.check(ds)?;
        self.arch.next_batch(ds, x, labels)
    }

    fn check(&self, ds: &Dataset) -> Result<()> {
        if ds.len() != self.n {
            bail!("search sampler was built for {} images but was given {} with {}", self.n, ds.name(), ds.len());
        }
        Ok(())
    }

    pub fn set_augment(&mut self, on: bool) {
        self.weights.set_augment(on);
        self.arch.set_augment(on);
    }

    /// Three lines of text: a header, the weights sampler, the α sampler.
    pub fn save_state(&self) -> String {
        format!("{STATE_HEADER}\nweights {}\narch {}\n", self.weights.state(), self.arch.state())
    }

    /// Restores a state written by `save_state` on a sampler built the same
    /// way (same data size, train_portion and batch).
    pub fn restore_state(&mut self, text: &str) -> Result<()> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(STATE_HEADER) {
            bail!("search sampler state does not start with '{STATE_HEADER}'");
        }
        let mut part = |name: &str| -> Result<SamplerState> {
            let line = lines.next().unwrap_or("");
            match line.strip_prefix(name).and_then(|r| r.strip_prefix(' ')) {
                Some(rest) => rest.parse(),
                None => bail!("search sampler state: expected a line starting '{name} ', found '{line}'"),
            }
        };
        let (w, a) = (part("weights")?, part("arch")?);
        if let Some(extra) = lines.next() {
            bail!("search sampler state: unexpected line '{extra}'");
        }
        // Restore into copies so a failure leaves the sampler as it was.
        let (mut weights, mut arch) = (self.weights.clone(), self.arch.clone());
        weights.restore(&w)?;
        arch.restore(&a)?;
        self.weights = weights;
        self.arch = arch;
        Ok(())
    }
}
