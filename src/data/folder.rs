//! Image folders in torchvision's `ImageFolder` layout, the way PyTorch
//! users keep their own data sets: `DIR/train/<class>/*` and, where present,
//! `DIR/test/<class>/*`, each file a JPEG or PNG image.
//!
//! The class index of a folder is its position in the sorted list of
//! `train`'s class folders (torchvision's rule); `test` must hold the same
//! classes. Every image must have one size and channel count (gray or RGB).
//! Files come off the disk sorted by class, so each split is shuffled by a
//! fixed permutation ([`SHUFFLE_SEED`]): the search's split by position and
//! the first `--eval-images` test images then hold every class.
//!
//! Decoding 60,000 small JPEGs takes seconds, so the decoded set is cached
//! under rarts' own cache folder ([`cache_dir`]), keyed by every file's
//! path, size and modification time: a changed, added or removed file makes a
//! new key, so a cache is never stale. The user's folder is only read.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, UNIX_EPOCH};

use super::{Dataset, Meta, Rng, Split, cifar10};
use crate::bail;
use crate::error::{Context, Error, Result};
use crate::hash::Hasher;
use crate::shape::Shape;

/// The seed of the permutation each split is shuffled by (stream 0 for
/// `train`, 1 for `test`). Fixed, so a folder gives the same data set every
/// time; `rarts info` prints it.
pub const SHUFFLE_SEED: u64 = 0x1ab5_f01d;

/// What a class folder may hold, for messages.
const EXPECTED: &str = "JPEG or PNG images of one size and channel count (gray or RGB)";

/// Version of the cache file layout; part of its key.
const CACHE_FORMAT: &str = "rarts-folder-cache v1";

/// One split as found on disk: the class names in label order and each
/// image file with its label, in sorted order.
#[derive(Debug)]
struct Listing {
    /// The split's folder.
    dir: PathBuf,
    classes: Vec<String>,
    files: Vec<(PathBuf, u8)>,
}

/// Loads `dir`: `train/` and, where present, `test/`.
pub fn load(dir: &Path) -> Result<Split> {
    let start = Instant::now();
    let train_dir = dir.join("train");
    if !train_dir.is_dir() {
        bail!(
            "{}: no train/ folder; expected an image folder holding train/<class>/* (and optionally \
             test/<class>/*) with {EXPECTED}",
            dir.display()
        );
    }
    let train = list(&train_dir, None)?;
    let test_dir = dir.join("test");
    let test = if super::file::present(&test_dir)? { Some(list(&test_dir, Some(&train.classes))?) } else { None };
    let cache = cache_dir()
        .map(|d| -> Result<PathBuf> { Ok(d.join(format!("folder-{}.bin", cache_key(dir, &train, test.as_ref())?))) });
    let cache = cache.transpose()?;
    let cached = cache.as_deref().and_then(|p| read_cache(p, train.files.len(), test.as_ref().map(|t| t.files.len())));
    let (train_raw, test_raw, how) = match cached {
        Some((a, b)) => (a, b, "read from the cache"),
        None => {
            let a = decode(&train, None)?;
            let b = test.as_ref().map(|t| decode(t, Some(a.shape))).transpose()?;
            if let Some(path) = cache.as_deref() {
                // A cache that cannot be written costs time next run, not data.
                if let Err(e) = write_cache(path, &a, b.as_ref()) {
                    eprintln!("warning: {e}; the images will be decoded again next time");
                }
            }
            (a, b, "decoded")
        }
    };
    let (mean, std) = normalisation(&train_raw);
    let meta = |name: &str| Meta {
        name: name.to_string(),
        classes: train.classes.clone(),
        mean: mean.clone(),
        std: std.clone(),
        hflip: true,
    };
    let n = train_raw.labels.len() + test_raw.as_ref().map_or(0, |t| t.labels.len());
    let split = Split {
        train: train_raw.into_dataset(meta("folder"))?,
        test: test_raw.map(|t| t.into_dataset(meta("folder-test"))).transpose()?,
    };
    eprintln!("{}: {n} images {how} in {:.2} s", dir.display(), start.elapsed().as_secs_f64());
    Ok(split)
}

/// Decoded images before normalisation: (n, c, h, w), NCHW pixels, labels.
struct Raw {
    shape: Shape,
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl Raw {
    fn into_dataset(self, meta: Meta) -> Result<Dataset> {
        Dataset::new(meta, self.shape, self.pixels, self.labels)
    }
}

/// The class folders of `split_dir` in sorted order and their image files.
/// `train_classes` (for `test`): the classes it must hold.
fn list(split_dir: &Path, train_classes: Option<&[String]>) -> Result<Listing> {
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(split_dir).ctx(|| format!("{}: cannot list it", split_dir.display()))? {
        let entry = entry.ctx(|| format!("{}: cannot list it", split_dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        classes.push(name);
    }
    classes.sort();
    if classes.is_empty() {
        bail!("{}: no class folders; expected one folder per class holding {EXPECTED}", split_dir.display());
    }
    if classes.len() > 256 {
        bail!("{}: {} class folders; expected at most 256", split_dir.display(), classes.len());
    }
    if let Some(train) = train_classes {
        if let Some(c) = classes.iter().find(|c| !train.contains(c)) {
            bail!(
                "{}: class folder '{c}' is not in train/; expected the same classes in both splits ({})",
                split_dir.join(c).display(),
                train.join(", ")
            );
        }
        if let Some(c) = train.iter().find(|c| !classes.contains(c)) {
            bail!(
                "{}: no class folder '{c}', which train/ has; expected the same classes in both splits",
                split_dir.display()
            );
        }
    }
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = split_dir.join(class);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&class_dir).ctx(|| format!("{}: cannot list it", class_dir.display()))? {
            let entry = entry.ctx(|| format!("{}: cannot list it", class_dir.display()))?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') || entry.path().is_dir() {
                continue;
            }
            if let Some(kind) = super::file::special_kind(&entry.path()) {
                bail!("{}: {kind}, not an image file; expected {EXPECTED}", entry.path().display());
            }
            names.push(name);
        }
        names.sort();
        if names.is_empty() {
            bail!("{}: an empty class folder; expected {EXPECTED}", class_dir.display());
        }
        files.extend(names.into_iter().map(|n| (class_dir.join(n), label as u8)));
    }
    Ok(Listing { dir: split_dir.to_path_buf(), classes, files })
}

/// The largest side of an image rarts decodes: far above what a search
/// trains on, and a bound on what one odd file can make it allocate.
pub const MAX_SIDE: u32 = 8192;

/// One image decoded: (channels, height, width) and its pixels in CHW order.
/// `want` (height, width): the size every image must have; another size
/// is refused from the file's header, before its pixels are decoded.
fn decode_one(path: &Path, want: Option<(usize, usize)>) -> Result<((usize, usize, usize), Vec<u8>)> {
    use image::DynamicImage as D;
    let bytes = std::fs::read(path).ctx(|| format!("{}: cannot read it", path.display()))?;
    let undecodable = |e: &dyn std::fmt::Display| {
        Error(format!("{}: not a decodable image ({e}); expected {EXPECTED}", path.display()))
    };
    let reader = || -> Result<image::ImageReader<std::io::Cursor<&[u8]>>> {
        image::ImageReader::new(std::io::Cursor::new(&bytes[..])).with_guessed_format().map_err(|e| undecodable(&e))
    };
    // The header alone first: its size is checked before anything is decoded.
    let (w, h) = reader()?.into_dimensions().map_err(|e| undecodable(&e))?;
    let (w, h) = (w as usize, h as usize);
    if let Some((wh, ww)) = want
        && (h, w) != (wh, ww)
    {
        bail!("{}: an image of {h}×{w} (height × width); expected {wh}×{ww} as the other images", path.display());
    }
    if w > MAX_SIDE as usize || h > MAX_SIDE as usize {
        bail!("{}: an image of {w}×{h} pixels; expected at most {MAX_SIDE} on a side", path.display());
    }
    let mut r = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    r.limits(limits);
    let img = r.decode().map_err(|e| undecodable(&e))?;
    let (c, hwc): (usize, Vec<u8>) = match img {
        D::ImageLuma8(g) => (1, g.into_raw()),
        D::ImageLuma16(_) => (1, img.to_luma8().into_raw()),
        D::ImageRgb8(rgb) => (3, rgb.into_raw()),
        D::ImageRgb16(_) => (3, img.to_rgb8().into_raw()),
        other => bail!(
            "{}: pixels of type {:?} (with an alpha channel, or floating point); expected {EXPECTED}",
            path.display(),
            other.color()
        ),
    };
    let mut chw = vec![0u8; hwc.len()];
    for (p, px) in hwc.chunks_exact(c).enumerate() {
        for (k, &v) in px.iter().enumerate() {
            chw[k * h * w + p] = v;
        }
    }
    Ok(((c, h, w), chw))
}

/// Decodes every file of `l` (on every core) into a data set, shuffled by
/// the fixed permutation. `like`: the shape the images must have (the
/// training set's, for `test`); else the first file's sets it.
fn decode(l: &Listing, like: Option<Shape>) -> Result<Raw> {
    let (first, first_px) = decode_one(&l.files[0].0, like.map(|s| (s.h(), s.w())))?;
    let want = like.map_or(first, |s| (s.c(), s.h(), s.w()));
    let describe = |(c, h, w): (usize, usize, usize)| format!("{c}×{h}×{w} (channels × height × width)");
    let reference = if like.is_some() { "the training images".to_string() } else { l.files[0].0.display().to_string() };
    let check = |path: &Path, got: (usize, usize, usize)| -> Result<()> {
        if got != want {
            bail!("{}: an image of {}; expected {} as {reference}", path.display(), describe(got), describe(want));
        }
        Ok(())
    };
    check(&l.files[0].0, first)?;
    let m = want.0 * want.1 * want.2;
    let n = l.files.len();
    super::file::check_fits(n, m).map_err(|e| Error(format!("{}: {e}", l.dir.display())))?;
    let mut pixels = vec![0u8; n * m];
    pixels[..m].copy_from_slice(&first_px);
    // The first error by file order, so the message does not depend on threads.
    let failed: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    crate::par::for_chunks(&mut pixels[m..], m, usize::MAX / 2, |i, out| {
        let i = i + 1;
        let path = &l.files[i].0;
        match decode_one(path, Some((want.1, want.2))).and_then(|(got, px)| check(path, got).map(|()| px)) {
            Ok(px) => out.copy_from_slice(&px),
            Err(e) => {
                let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
                if f.as_ref().is_none_or(|(j, _)| i < *j) {
                    *f = Some((i, e));
                }
            }
        }
    });
    if let Some((_, e)) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let labels: Vec<u8> = l.files.iter().map(|f| f.1).collect();
    let stream = if like.is_some() { 1 } else { 0 };
    let (pixels, labels) = shuffled(pixels, labels, m, stream);
    Ok(Raw { shape: Shape::nchw(n, want.0, want.1, want.2), pixels, labels })
}

/// Images and labels in the order of the fixed permutation of `stream`.
fn shuffled(pixels: Vec<u8>, labels: Vec<u8>, m: usize, stream: u64) -> (Vec<u8>, Vec<u8>) {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    Rng::stream(SHUFFLE_SEED, stream).shuffle(&mut order);
    let mut px = Vec::with_capacity(pixels.len());
    for &i in &order {
        px.extend_from_slice(&pixels[i * m..(i + 1) * m]);
    }
    (px, order.iter().map(|&i| labels[i]).collect())
}

/// The preprocessing of the CIFAR-10 binary for 3×32×32 images (its
/// per-channel mean and std; flips are on for every folder); for any other
/// shape, the mean and std per channel of the training images' own pixels.
fn normalisation(train: &Raw) -> (Vec<f32>, Vec<f32>) {
    let [n, c, h, w] = train.shape.0;
    if (c, h, w) == (cifar10::CHANNELS, cifar10::SIDE, cifar10::SIDE) {
        return (cifar10::MEAN.to_vec(), cifar10::STD.to_vec());
    }
    let (mut mean, mut std) = (Vec::with_capacity(c), Vec::with_capacity(c));
    for k in 0..c {
        let (mut s1, mut s2) = (0f64, 0f64);
        for i in 0..n {
            for &p in &train.pixels[(i * c + k) * h * w..(i * c + k + 1) * h * w] {
                let v = f64::from(p) / 255.0;
                s1 += v;
                s2 += v * v;
            }
        }
        let cnt = (n * h * w) as f64;
        let m = s1 / cnt;
        mean.push(m as f32);
        // A channel of one value everywhere would divide by 0: use 1.
        let sd = (s2 / cnt - m * m).max(0.0).sqrt();
        std.push(if sd > 1e-6 { sd as f32 } else { 1.0 });
    }
    (mean, std)
}

/// Where rarts keeps decoded image folders: `$RARTS_CACHE_DIR` (`none`: no
/// cache), else `$XDG_CACHE_HOME/rarts`, else `$HOME/.cache/rarts`.
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("RARTS_CACHE_DIR") {
        Some(v) if v == "none" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(|v| PathBuf::from(v).join("rarts"))
            .or_else(|| {
                std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache/rarts"))
            }),
    }
}

/// A hash of the folder's absolute path and every listed file's name, label,
/// size and modification time (and the cache format and shuffle): any change
/// to the files gives another key.
fn cache_key(dir: &Path, train: &Listing, test: Option<&Listing>) -> Result<String> {
    let mut h = Hasher::default();
    h.update(CACHE_FORMAT.as_bytes());
    h.update(&SHUFFLE_SEED.to_le_bytes());
    let abs = std::fs::canonicalize(dir).ctx(|| format!("{}: cannot resolve its path", dir.display()))?;
    h.update(abs.as_os_str().as_encoded_bytes());
    for (split, l) in [("train", Some(train)), ("test", test)] {
        let Some(l) = l else { continue };
        h.update(split.as_bytes());
        for c in &l.classes {
            h.update(c.as_bytes());
            h.update(&[0]);
        }
        for (path, label) in &l.files {
            let md = std::fs::metadata(path).ctx(|| format!("{}: cannot read its size", path.display()))?;
            let mtime = md.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
            h.update(path.as_os_str().as_encoded_bytes());
            h.update(&[0, *label]);
            h.update(&md.len().to_le_bytes());
            h.update(&mtime.to_le_bytes());
        }
    }
    Ok(format!("{:016x}", h.finish()))
}

/// The cache file: a header line `CACHE_FORMAT n c h w n_test`, then the
/// training pixels and labels, then the test set's.
fn write_cache(path: &Path, train: &Raw, test: Option<&Raw>) -> Result<()> {
    let [n, c, h, w] = train.shape.0;
    let n_test = test.map_or(0, |t| t.labels.len());
    let mut bytes = format!("{CACHE_FORMAT} {n} {c} {h} {w} {n_test}\n").into_bytes();
    for r in std::iter::once(train).chain(test) {
        bytes.extend_from_slice(&r.pixels);
        bytes.extend_from_slice(&r.labels);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ctx(|| format!("cache folder {}: cannot create it", parent.display()))?;
    }
    crate::rundir::write_atomic(path, &bytes)
}

/// The cached split if `path` holds one of the expected counts; `None` (decode
/// again) for a missing or damaged file.
fn read_cache(path: &Path, n: usize, n_test: Option<usize>) -> Option<(Raw, Option<Raw>)> {
    let bytes = std::fs::read(path).ok()?;
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(&bytes[..nl]).ok()?;
    let nums: Vec<usize> =
        head.strip_prefix(CACHE_FORMAT)?.split_whitespace().map(|t| t.parse().ok()).collect::<Option<_>>()?;
    let [cn, c, h, w, cn_test] = nums[..] else { return None };
    if cn != n || cn_test != n_test.unwrap_or(0) {
        return None;
    }
    let m = c * h * w;
    let body = &bytes[nl + 1..];
    if body.len() != (n + cn_test) * (m + 1) {
        return None;
    }
    let raw = |at: usize, k: usize| Raw {
        shape: Shape::nchw(k, c, h, w),
        pixels: body[at..at + k * m].to_vec(),
        labels: body[at + k * m..at + k * (m + 1)].to_vec(),
    };
    let train = raw(0, n);
    let test = n_test.map(|k| raw(n * (m + 1), k));
    Some((train, test))
}
