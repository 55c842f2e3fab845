//! `--data folder:DIR`: image folders in torchvision's ImageFolder layout.
//! The images are made here, in temp folders, with the `image` crate.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use common::cli::*;
use rarts::data::{DataSpec, SearchSampler, Split};

/// Keeps the in-process loads out of the user's cache folder. Every test
/// calls this first; `Once` makes the others wait until it is set, and std
/// serialises its own reads of the environment (`var_os`, `Command`) with
/// `set_var`, so no test sees it half-written.
fn no_cache_in_process() {
    static SET: Once = Once::new();
    // SAFETY: set once, before any test of this binary reads the variable
    // (they all call this first), and only std touches the environment.
    SET.call_once(|| unsafe { std::env::set_var("RARTS_CACHE_DIR", "none") });
}

/// A `w`×`h` RGB image whose pixel (x, y) is `px(x, y)`, at `path` (PNG or
/// JPEG by its extension); parent folders are made.
fn rgb(path: &Path, w: u32, h: u32, px: impl Fn(u32, u32) -> [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb(px(x, y))).save(path).unwrap();
}

/// `n` 4×4 PNG images in `dir/split/class/`: pixel (0, 0) is `value` in every
/// channel (what marks the class), pixel (1, 0) the image's number, the rest 0.
fn class_pngs(dir: &Path, split: &str, class: &str, n: usize, value: u8) {
    for i in 0..n {
        let path = dir.join(split).join(class).join(format!("img{i:03}.png"));
        rgb(&path, 4, 4, |x, y| match (x, y) {
            (0, 0) => [value; 3],
            (1, 0) => [i as u8; 3],
            _ => [0; 3],
        });
    }
}

/// Loads `dir` in this process (no cache: see [`no_cache_in_process`]).
fn load(dir: &Path) -> Split {
    no_cache_in_process();
    DataSpec::Folder(dir.to_path_buf()).load().unwrap()
}

/// The class mark (pixel (0, 0) of channel 0) of every image of a set made
/// by [`class_pngs`], and its number (pixel (1, 0)).
fn marks(ds: &rarts::data::Dataset) -> Vec<(u8, u8)> {
    (0..ds.len()).map(|i| (ds.image(i)[0], ds.image(i)[1])).collect()
}

/// `rarts info --data folder:DIR` with its own cache folder.
fn info(dir: &Path, cache: &Path) -> Command {
    let mut c = bin();
    c.args(["info", "--data"]).arg(format!("folder:{}", dir.display()));
    c.env("RARTS_CACHE_DIR", cache);
    c
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p);
            }
        }
    }
    out
}

/// The class index is the sorted position of the class folder's name,
/// whatever order the folders were made in; each label goes with its own
/// images, every file comes through exactly once, and the test split is
/// there exactly when `test/` is.
#[test]
fn classes_are_numbered_in_sorted_order_and_labels_follow_the_images() {
    let dir = tmp("folder-order");
    // Made in the order b, a, c with marks 200, 100, 50 and counts 7, 5, 3.
    let made = [("b_cls", 200u8, 7usize, 3usize), ("a_cls", 100, 5, 2), ("c_cls", 50, 3, 4)];
    for &(class, value, n_train, _) in &made {
        class_pngs(&dir, "train", class, n_train, value);
    }
    let split = load(&dir);
    assert!(split.test.is_none(), "no test/ folder, yet a test split");
    let train = &split.train;
    assert_eq!(train.classes(), ["a_cls", "b_cls", "c_cls"]);
    assert_eq!(train.len(), 15);
    assert_eq!(train.shape().0, [15, 3, 4, 4]);
    // Label ↔ mark: a_cls (100) is 0, b_cls (200) is 1, c_cls (50) is 2.
    let mark_of = [100u8, 200, 50];
    let mut seen = BTreeSet::new();
    for (&label, (mark, number)) in train.labels().iter().zip(marks(train)) {
        assert_eq!(mark, mark_of[label as usize], "label {label} on an image of mark {mark}");
        assert!(seen.insert((label, number)), "image {number} of class {label} twice");
    }
    let counts: Vec<usize> = (0..3).map(|k| train.labels().iter().filter(|&&l| l == k).count()).collect();
    assert_eq!(counts, [5, 7, 3]);

    for &(class, value, _, n_test) in &made {
        class_pngs(&dir, "test", class, n_test, value);
    }
    let split = load(&dir);
    let test = split.test.expect("test/ exists, so a test split");
    assert_eq!(test.classes(), ["a_cls", "b_cls", "c_cls"]);
    assert_eq!(test.len(), 9);
    for (&label, (mark, _)) in test.labels().iter().zip(marks(&test)) {
        assert_eq!(mark, mark_of[label as usize], "test: label {label} on an image of mark {mark}");
    }
    let counts: Vec<usize> = (0..3).map(|k| test.labels().iter().filter(|&&l| l == k).count()).collect();
    assert_eq!(counts, [2, 3, 4]);
    assert_eq!(split.train.len(), 15, "the training split is unchanged by test/");
}

/// The files come off the disk sorted by class, but the loader's fixed
/// shuffle spreads them: both halves of the search's split (weights and α)
/// hold images of every class.
#[test]
fn both_parts_of_the_search_split_hold_every_class() {
    let dir = tmp("folder-sampler");
    for (class, value) in [("c0", 10u8), ("c1", 20), ("c2", 30)] {
        class_pngs(&dir, "train", class, 40, value);
    }
    let split = load(&dir);
    let labels = split.train.labels();
    assert_eq!(labels.len(), 120);
    assert!(!labels.is_sorted(), "the training labels are in file order: {labels:?}");
    assert_ne!(&labels[..40], &[0u8; 40][..], "class 0 comes first");
    let sampler = SearchSampler::new(&split.train, 0.5, 8, 3).unwrap();
    for (part, range) in [("weights", sampler.weights.range()), ("α", sampler.arch.range())] {
        let classes: BTreeSet<u8> = labels[range.clone()].iter().copied().collect();
        assert_eq!(classes, BTreeSet::from([0, 1, 2]), "the {part} part {range:?} lacks a class: {labels:?}");
    }
}

/// Scoring reads the first `--eval-images` test images: the test split is
/// shuffled too, so a small head of it holds every class.
#[test]
fn the_first_test_images_hold_every_class() {
    let dir = tmp("folder-eval-head");
    for (class, value) in [("x", 1u8), ("y", 2), ("z", 3)] {
        class_pngs(&dir, "train", class, 4, value);
        class_pngs(&dir, "test", class, 20, value);
    }
    let test = load(&dir).test.unwrap();
    assert_eq!(test.len(), 60);
    let head: BTreeSet<u8> = test.labels()[..12].iter().copied().collect();
    assert_eq!(head, BTreeSet::from([0, 1, 2]), "first 12 test labels: {:?}", &test.labels()[..12]);
    assert!(!test.labels().is_sorted(), "the test labels are in file order");
}

/// A gray PNG gives one channel, an RGB PNG three, and the pixels come
/// through exactly, in CHW order.
#[test]
fn png_pixels_come_through_exactly_in_chw_order() {
    let gray = tmp("folder-gray");
    for i in 0..3u8 {
        let path = gray.join("train/only").join(format!("g{i}.png"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_fn(5, 3, |x, y| image::Luma([i * 50 + (y * 5 + x) as u8])).save(&path).unwrap();
    }
    let ds = load(&gray).train;
    assert_eq!(ds.shape().0, [3, 1, 3, 5]);
    let mut images: Vec<Vec<u8>> = (0..3).map(|i| ds.image(i).to_vec()).collect();
    images.sort();
    for (i, img) in images.iter().enumerate() {
        let want: Vec<u8> = (0..15).map(|p| i as u8 * 50 + p).collect();
        assert_eq!(img, &want, "gray image {i}");
    }

    let colour = tmp("folder-rgb");
    // Pixel (x, y) holds R = 10 + p, G = 100 + p, B = 200 + p with p = 2y + x.
    rgb(&colour.join("train/one/a.png"), 2, 2, |x, y| {
        let p = (2 * y + x) as u8;
        [10 + p, 100 + p, 200 + p]
    });
    let ds = load(&colour).train;
    assert_eq!(ds.shape().0, [1, 3, 2, 2]);
    assert_eq!(ds.image(0), [10, 11, 12, 13, 100, 101, 102, 103, 200, 201, 202, 203]);
    assert_eq!(ds.classes(), ["one"]);
    assert_eq!(ds.labels(), [0]);
}

/// JPEG files load: the right count, shape and labels (the pixels are lossy,
/// so only roughly the ones written).
#[test]
fn a_jpeg_set_loads() {
    let dir = tmp("folder-jpeg");
    for (class, value) in [("dark", 40u8), ("light", 220)] {
        for i in 0..3 {
            rgb(&dir.join("train").join(class).join(format!("{i}.jpg")), 8, 8, |_, _| [value; 3]);
        }
        rgb(&dir.join("test").join(class).join("t.jpeg"), 8, 8, |_, _| [value; 3]);
    }
    let split = load(&dir);
    assert_eq!(split.train.shape().0, [6, 3, 8, 8]);
    assert_eq!(split.train.classes(), ["dark", "light"]);
    let test = split.test.unwrap();
    assert_eq!(test.shape().0, [2, 3, 8, 8]);
    for ds in [&split.train, &test] {
        for (i, &label) in ds.labels().iter().enumerate() {
            let want = [40i32, 220][label as usize];
            let got = ds.image(i)[0] as i32;
            assert!((got - want).abs() <= 8, "image {i} of label {label}: pixel {got}, written {want}");
        }
    }
}

/// Each malformed folder is refused with a message that names the file or
/// folder at fault.
#[test]
fn malformed_folders_are_clear_errors_naming_the_file() {
    let cache = tmp("folder-errors-cache");
    let good = |name: &str| {
        let dir = tmp(name);
        class_pngs(&dir, "train", "a", 3, 10);
        class_pngs(&dir, "train", "b", 3, 20);
        dir
    };
    let shown = |p: &Path| p.display().to_string();

    // Not an image: garbage bytes named .jpg.
    let dir = good("folder-err-garbage");
    let bad = dir.join("train/b/x.jpg");
    std::fs::write(&bad, b"this is not a JPEG at all").unwrap();
    fails_with(&info(&dir, &cache).output().unwrap(), &[&shown(&bad), "decodable"]);

    // One 8×8 image among 4×4 ones (sorted last, so not the one that sets the size).
    let dir = good("folder-err-size");
    let odd = dir.join("train/b/zz.png");
    rgb(&odd, 8, 8, |_, _| [20; 3]);
    fails_with(&info(&dir, &cache).output().unwrap(), &[&shown(&odd), "8×8", "4×4"]);

    // The same in test/: its images must have the training images' size.
    let dir = good("folder-err-test-size");
    class_pngs(&dir, "test", "a", 1, 10);
    let odd = dir.join("test/b/odd.png");
    rgb(&odd, 8, 8, |_, _| [20; 3]);
    fails_with(&info(&dir, &cache).output().unwrap(), &[&shown(&odd), "8×8", "4×4"]);

    // An empty class folder.
    let dir = good("folder-err-empty");
    let empty = dir.join("train/c");
    std::fs::create_dir_all(&empty).unwrap();
    fails_with(&info(&dir, &cache).output().unwrap(), &[&shown(&empty), "empty class folder"]);

    // A class in test/ that train/ lacks.
    let dir = good("folder-err-extra-test-class");
    class_pngs(&dir, "test", "a", 1, 10);
    class_pngs(&dir, "test", "b", 1, 20);
    class_pngs(&dir, "test", "q", 1, 30);
    fails_with(&info(&dir, &cache).output().unwrap(), &[&shown(&dir.join("test/q")), "not in train/"]);

    // A class of train/ that test/ lacks.
    let dir = good("folder-err-missing-test-class");
    class_pngs(&dir, "test", "a", 1, 10);
    fails_with(&info(&dir, &cache).output().unwrap(), &[&shown(&dir.join("test")), "'b'"]);

    // No train/ folder at all.
    let dir = tmp("folder-err-no-train");
    class_pngs(&dir, "test", "a", 1, 10);
    fails_with(&info(&dir, &cache).output().unwrap(), &[&shown(&dir), "no train/ folder"]);
}

/// The decoded set is cached: a second run reads it back and prints the
/// same; a changed file makes a new key, so the third run decodes again and
/// sees the change. The user's folder is only read.
#[test]
fn the_cache_is_reused_until_a_file_changes() {
    let dir = tmp("folder-cache");
    let cache = tmp("folder-cache-store");
    // 16×16 images of one value each (which compress well).
    for (split, n) in [("train", 4), ("test", 2)] {
        for (class, value) in [("a", 60u8), ("b", 120)] {
            for i in 0..n {
                rgb(&dir.join(split).join(class).join(format!("{i}.png")), 16, 16, |_, _| [value; 3]);
            }
        }
    }
    let before = files_under(&dir);

    let first = info(&dir, &cache).output().unwrap();
    let out1 = ok(&first);
    assert!(String::from_utf8_lossy(&first.stderr).contains("decoded"), "first run decodes");
    assert!(files_under(&cache).iter().any(|p| p.extension().is_some_and(|e| e == "bin")), "no cache file written");

    let second = info(&dir, &cache).output().unwrap();
    let out2 = ok(&second);
    let err2 = String::from_utf8_lossy(&second.stderr);
    assert!(err2.contains("read from the cache"), "second run: {err2}");
    assert_eq!(out1, out2, "the cached set prints differently");

    // Rewrite one training image with other pixels, which compress worse
    // and so give another file size.
    let changed = dir.join("train/b/2.png");
    let old_len = std::fs::metadata(&changed).unwrap().len();
    rgb(&changed, 16, 16, |x, y| {
        let p = (16 * y + x) as u8;
        [p.wrapping_mul(97), p.wrapping_mul(53).wrapping_add(7), 255 - p.wrapping_mul(31)]
    });
    assert_ne!(std::fs::metadata(&changed).unwrap().len(), old_len, "the test needs another file size");

    let third = info(&dir, &cache).output().unwrap();
    let out3 = ok(&third);
    let err3 = String::from_utf8_lossy(&third.stderr);
    assert!(err3.contains("decoded") && !err3.contains("read from the cache"), "third run: {err3}");
    assert_ne!(out1, out3, "the change does not show (normalisation is computed from the pixels)");
    let mean = |s: &str| s.lines().find(|l| l.starts_with("normalisation")).unwrap().to_string();
    assert_ne!(mean(&out1), mean(&out3));

    assert_eq!(files_under(&dir), before, "the data folder gained or lost files");
}

/// `rarts info` names the classes and counts of both splits.
#[test]
fn info_prints_the_classes_and_counts_of_both_splits() {
    let dir = tmp("folder-info");
    class_pngs(&dir, "train", "cat", 5, 10);
    class_pngs(&dir, "train", "dog", 6, 20);
    class_pngs(&dir, "test", "cat", 2, 10);
    class_pngs(&dir, "test", "dog", 1, 20);
    let stdout = ok(&info(&dir, Path::new("none")).output().unwrap());
    let (train, test) = stdout.split_once("\ntest: ").expect("a test section");
    assert!(train.contains("11 images, 3×4×4"), "{stdout}");
    assert!(test.contains("3 images, 3×4×4"), "{stdout}");
    assert!(train.contains("0 cat (5), 1 dog (6)"), "{stdout}");
    assert!(test.contains("0 cat (2), 1 dog (1)"), "{stdout}");
}

/// A PNG file whose header claims `w`×`h` RGB pixels (and holds almost no
/// pixel data): what an oversized or hostile file looks like before decoding.
fn png_header_only(path: &Path, w: u32, h: u32) {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&13u32.to_be_bytes());
    bytes.extend_from_slice(&ihdr);
    bytes.extend_from_slice(&crc.sum().to_be_bytes());
    // A first data chunk (a few bytes of an empty zlib stream): decoders read
    // the header up to it.
    for (kind, data) in [(&b"IDAT"[..], &[0x78u8, 0x9c, 0x03, 0x00][..]), (b"IEND", &[])] {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(&chunk);
        bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&chunk);
        bytes.extend_from_slice(&crc.sum().to_be_bytes());
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// An image larger than any a search takes is refused from its header,
/// before its pixels are decoded or allocated: as the first image (above the
/// largest side) and after others (a size that differs), each naming the
/// file; the user's folder is left as it was.
#[test]
fn an_oversized_image_is_refused_from_its_header() {
    let cache = tmp("folder-huge-cache");
    let alone = tmp("folder-huge-alone");
    png_header_only(&alone.join("train/a/huge.png"), 100_000, 100_000);
    let before = files_under(&alone);
    let o = info(&alone, &cache).output().unwrap();
    fails_with(&o, &["huge.png", "100000×100000", "at most 8192"]);
    assert_eq!(files_under(&alone), before);

    let after = tmp("folder-huge-after");
    class_pngs(&after, "train", "a", 2, 10);
    png_header_only(&after.join("train/a/zz-huge.png"), 100_000, 100_000);
    let o = info(&after, &cache).output().unwrap();
    fails_with(&o, &["zz-huge.png", "100000×100000", "4×4"]);
}

/// A search and a training run on an image folder (`--data folder:DIR` is
/// taken wherever `--data` is).
#[test]
fn a_search_and_a_training_run_on_an_image_folder() {
    let data = tmp("folder-search-data");
    for (k, class) in ["cat", "dog", "ship"].iter().enumerate() {
        class_pngs(&data, "train", class, 16, 40 * k as u8 + 20);
        class_pngs(&data, "test", class, 4, 40 * k as u8 + 20);
    }
    let spec = format!("folder:{}", data.display());
    let cache = tmp("folder-search-cache");
    let out = tmp("folder-search");
    let mut c = bin();
    c.args(["search", "--space", "nb201", "--c", "4", "--cells-per-stage", "1", "--batch", "8", "--epochs", "1"]);
    c.args(["--steps-per-epoch", "2", "--eval-images", "8", "--quiet", "--data", &spec, "--out"]).arg(&out);
    ok(&c.env("RARTS_CACHE_DIR", &cache).env_remove("RARTS_NB201_TABLE").output().unwrap());
    assert!(out.join("genotype.txt").exists());
    let train_out = tmp("folder-train");
    let mut t = bin();
    t.args(["train", "--space", "nb201", "--genotype"]).arg(&out);
    t.args(["--c", "4", "--cells-per-stage", "1", "--batch", "8", "--epochs", "1", "--steps-per-epoch", "2"]);
    t.args(["--quiet", "--data", &spec, "--out"]).arg(&train_out);
    ok(&t.env("RARTS_CACHE_DIR", &cache).output().unwrap());
    let log = std::fs::read_to_string(train_out.join("log.jsonl")).unwrap();
    assert!(log.contains("\"acc_test\":"), "{log}");
}
