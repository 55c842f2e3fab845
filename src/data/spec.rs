//! The `--data` flag: which data set to load.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::idx::Kind;
use super::{Split, cifar10, embedded, folder, idx, synthetic};
use crate::error::{Error, Result};

/// What `--data` accepts, for error messages and help text.
pub const FORMS: &str = "cifar10:PATH, folder:DIR (DIR/train/<class>/*.jpg|png, optionally DIR/test/<class>/*), fashion-mnist:PATH, mnist:PATH, synthetic, synthetic:N, synthetic:N:SIDE, embedded (the default)";

/// The `--data` flag's help.
pub fn help() -> String {
    format!("Data set: {FORMS}")
}

/// Training images of `synthetic` without a count.
pub const SYNTHETIC_DEFAULT_N: usize = 512;
/// Channels of the synthetic set (CIFAR-like).
pub const SYNTHETIC_CHANNELS: usize = 3;
/// Side of the synthetic images without one given: a size a CPU search gets
/// through quickly. `synthetic:N:32` gives CIFAR-sized 32×32 images, the
/// size the step benchmarks use.
pub const SYNTHETIC_DEFAULT_SIDE: usize = 16;
pub const SYNTHETIC_CLASSES: usize = 10;
/// The synthetic set does not depend on the search seed: every run sees the
/// same images.
pub const SYNTHETIC_SEED: u64 = 0;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum DataSpec {
    /// CIFAR-10 binary: a directory of batches or a single `.bin` file.
    Cifar10(PathBuf),
    /// An image folder in torchvision's ImageFolder layout.
    Folder(PathBuf),
    /// A directory of Fashion-MNIST IDX files, raw or gzipped.
    FashionMnist(PathBuf),
    /// A directory of MNIST IDX files, raw or gzipped.
    Mnist(PathBuf),
    /// `n` synthetic training images (and n/4 test images) of 3×side×side.
    Synthetic { n: usize, side: usize },
    /// The built-in Fashion-MNIST subset.
    #[default]
    Embedded,
}

impl DataSpec {
    /// The file or folder it reads, where it reads one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            DataSpec::Cifar10(p) | DataSpec::Folder(p) | DataSpec::FashionMnist(p) | DataSpec::Mnist(p) => Some(p),
            DataSpec::Synthetic { .. } | DataSpec::Embedded => None,
        }
    }

    /// Loads the training set and, where the source has one, the test set.
    /// Errors name the `--data` value they came from.
    pub fn load(&self) -> Result<Split> {
        let split = match self {
            DataSpec::Cifar10(p) => cifar10::load(p),
            DataSpec::Folder(p) => folder::load(p),
            DataSpec::FashionMnist(p) => idx::load(p, Kind::FashionMnist),
            DataSpec::Mnist(p) => idx::load(p, Kind::Mnist),
            DataSpec::Synthetic { n, side } => {
                let n_test = (n / 4).max(1);
                let shape = (SYNTHETIC_CHANNELS, *side, *side);
                super::file::check_fits(n + n_test, SYNTHETIC_CHANNELS * side * side)
                    .and_then(|()| synthetic::generate_pair(*n, n_test, shape, SYNTHETIC_CLASSES, SYNTHETIC_SEED))
                    .map(|(train, test)| Split { train, test: Some(test) })
            }
            DataSpec::Embedded => embedded::load(),
        };
        split.map_err(|e| Error(format!("--data {self}: {e}")))
    }
}

impl FromStr for DataSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error(format!("--data '{s}': {why}; expected one of {FORMS}"));
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let path = |a: Option<&str>| match a {
            Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
            _ => Err(bad(&format!("{kind} needs a path after the colon"))),
        };
        match kind {
            "cifar10" => Ok(DataSpec::Cifar10(path(arg)?)),
            "folder" => Ok(DataSpec::Folder(path(arg)?)),
            "fashion-mnist" => Ok(DataSpec::FashionMnist(path(arg)?)),
            "mnist" => Ok(DataSpec::Mnist(path(arg)?)),
            "synthetic" => {
                let (count, side) = match arg {
                    None => (None, None),
                    Some(a) => match a.split_once(':') {
                        Some((c, s)) => (Some(c), Some(s)),
                        None => (Some(a), None),
                    },
                };
                let n = match count.map(str::parse::<usize>) {
                    None => SYNTHETIC_DEFAULT_N,
                    Some(Ok(n)) if n > 0 => n,
                    Some(_) => return Err(bad(&format!("'{}' is not a positive image count", count.unwrap_or("")))),
                };
                // Two stride-2 reductions and a 3×3 stem need at least 4×4.
                let side = match side.map(str::parse::<usize>) {
                    None => SYNTHETIC_DEFAULT_SIDE,
                    Some(Ok(s)) if (4..=1024).contains(&s) => s,
                    Some(_) => {
                        return Err(bad(&format!("'{}' is not an image side between 4 and 1024", side.unwrap_or(""))));
                    }
                };
                Ok(DataSpec::Synthetic { n, side })
            }
            "embedded" if arg.is_none() => Ok(DataSpec::Embedded),
            "embedded" => Err(bad("embedded takes no argument")),
            _ => Err(bad("unknown data set")),
        }
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSpec::Cifar10(p) => write!(f, "cifar10:{}", p.display()),
            DataSpec::Folder(p) => write!(f, "folder:{}", p.display()),
            DataSpec::FashionMnist(p) => write!(f, "fashion-mnist:{}", p.display()),
            DataSpec::Mnist(p) => write!(f, "mnist:{}", p.display()),
            DataSpec::Synthetic { n, side } => write!(f, "synthetic:{n}:{side}"),
            DataSpec::Embedded => f.write_str("embedded"),
        }
    }
}
