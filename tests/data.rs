//! The data layer against real files (the first 20 CIFAR-10 test images, the
//! embedded Fashion-MNIST subset), hand-made IDX files and hand-worked
//! augmentation, plus sampler determinism and resume.

use std::io::Write;
use std::path::{Path, PathBuf};

use rarts::data::augment::{Aug, PAD, write_image};
use rarts::data::idx::{self, Kind};
use rarts::data::{
    DataSpec, Dataset, Meta, Sampler, SamplerState, SearchSampler, cifar10, describe, embedded, fill_eval, fill_plain,
    synthetic,
};
use rarts::shape::Shape;

const FIRST20: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cifar10_test_first20.bin");
const FIRST20_LABELS: [u8; 20] = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6];

/// A fresh empty directory under the system temp dir, unique to this test.
fn tmp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rarts-data-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

/// The error message of a call that must fail.
fn err<T: std::fmt::Debug>(r: rarts::Result<T>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error message {msg:?} does not mention {p:?}");
    }
}

fn close(got: f32, want: f32, what: &str) {
    // Normalisation is one subtract and one divide in f32: a few ulps.
    let tol = 1e-6 + 1e-5 * want.abs();
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want} (off by {})", (got - want).abs());
}

// ---------------------------------------------------------------- CIFAR-10

#[test]
fn cifar_first20_matches_the_reference() {
    let split = cifar10::load(Path::new(FIRST20)).unwrap();
    assert!(split.test.is_none(), "a single file is a training set only");
    let ds = split.train;
    assert_eq!(ds.len(), 20);
    assert_eq!(ds.shape(), Shape::nchw(20, 3, 32, 32));
    assert_eq!(ds.labels(), FIRST20_LABELS);
    let img = ds.image(0);
    assert_eq!((img[0], img[1024], img[2048]), (158, 112, 49));
    assert_eq!(ds.classes()[3], "cat");
    assert_eq!(ds.classes().len(), 10);
    assert!(ds.hflip());
    assert_eq!(ds.mean(), cifar10::MEAN);
    assert_eq!(ds.std(), cifar10::STD);
}

#[test]
fn cifar_directory_concatenates_five_batches_and_reads_the_test_batch() {
    let bytes = std::fs::read(FIRST20).unwrap();
    let dir = tmp_dir("cifar-dir");
    // The archive's own layout: everything under cifar-10-batches-bin/.
    let inner = dir.join(cifar10::ARCHIVE_DIR);
    std::fs::create_dir_all(&inner).unwrap();
    for (k, f) in cifar10::TRAIN_FILES.iter().enumerate() {
        // Batch k keeps the first 20 - k records, so the order is visible.
        std::fs::write(inner.join(f), &bytes[..(20 - k) * cifar10::RECORD_BYTES]).unwrap();
    }
    std::fs::write(inner.join(cifar10::TEST_FILE), &bytes).unwrap();
    let split = cifar10::load(&dir).unwrap();
    assert_eq!(split.train.len(), 20 + 19 + 18 + 17 + 16);
    assert_eq!(&split.train.labels()[20..39], &FIRST20_LABELS[..19]);
    assert_eq!(&split.train.labels()[20 + 19 + 18 + 17..], &FIRST20_LABELS[..16]);
    let test = split.test.expect("test_batch.bin is there");
    assert_eq!(test.labels(), FIRST20_LABELS);

    std::fs::remove_file(inner.join("data_batch_3.bin")).unwrap();
    let msg = err(cifar10::load(&dir));
    assert_contains(&msg, &["data_batch_3.bin", "missing"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cifar_truncated_file_is_an_error_naming_the_file() {
    let bytes = std::fs::read(FIRST20).unwrap();
    let dir = tmp_dir("cifar-trunc");
    let path = dir.join("truncated.bin");
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let msg = err(cifar10::load(&path));
    assert_contains(&msg, &[&path.display().to_string(), "3073", "truncated"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cifar_label_byte_out_of_range_is_an_error() {
    let mut bytes = std::fs::read(FIRST20).unwrap();
    bytes[3 * cifar10::RECORD_BYTES] = 10;
    let dir = tmp_dir("cifar-label");
    let path = dir.join("bad_label.bin");
    std::fs::write(&path, &bytes).unwrap();
    let msg = err(cifar10::load(&path));
    assert_contains(&msg, &["bad_label.bin", "record 3", "label byte 10", "0..9"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cifar_empty_file_is_an_error() {
    let dir = tmp_dir("cifar-empty");
    let path = dir.join("empty.bin");
    std::fs::write(&path, b"").unwrap();
    let msg = err(cifar10::load(&path));
    assert_contains(&msg, &["empty.bin", "empty file", "3073"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_paths_are_errors_naming_the_path() {
    let gone = std::env::temp_dir().join("rarts-no-such-dir/cifar");
    let msg = err(cifar10::load(&gone));
    assert_contains(&msg, &[&gone.display().to_string(), "no such file or directory"]);

    let msg = err(idx::load(&gone, Kind::Mnist));
    assert_contains(&msg, &[&gone.display().to_string(), "train-images-idx3-ubyte"]);

    let spec: DataSpec = format!("fashion-mnist:{}", gone.display()).parse().unwrap();
    let msg = err(spec.load());
    assert_contains(&msg, &["--data fashion-mnist:", &gone.display().to_string()]);
}

// ---------------------------------------------------------------- IDX

fn idx_images(n: u32, h: u32, w: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [idx::IMAGES_MAGIC, n, h, w] {
        v.extend(x.to_be_bytes());
    }
    v.extend(pixels);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = idx::LABELS_MAGIC.to_be_bytes().to_vec();
    v.extend((labels.len() as u32).to_be_bytes());
    v.extend(labels);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Three 2×3 images with pixel values 0..18 and labels 7 1 4.
fn tiny_idx() -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..18).collect();
    (idx_images(3, 2, 3, &pixels), idx_labels(&[7, 1, 4]))
}

#[test]
fn idx_raw_and_gzipped_files_load_the_same() {
    let (images, labels) = tiny_idx();
    let dir = tmp_dir("idx-ok");
    std::fs::write(dir.join(idx::TRAIN_IMAGES), &images).unwrap();
    std::fs::write(dir.join(format!("{}.gz", idx::TRAIN_LABELS)), gzip(&labels)).unwrap();
    let raw = idx::load(&dir, Kind::Mnist).unwrap();
    assert!(raw.test.is_none());
    let ds = raw.train;
    assert_eq!(ds.shape(), Shape::nchw(3, 1, 2, 3));
    assert_eq!(ds.labels(), [7, 1, 4]);
    assert_eq!(ds.image(2), [12, 13, 14, 15, 16, 17]);
    assert_eq!(ds.classes()[7], "7");
    assert!(!ds.hflip(), "MNIST digits must not be flipped");
    assert_eq!(ds.mean(), [0.1307]);
    assert_eq!(ds.std(), [0.3081]);

    // The same files gzipped, plus a test pair, as Fashion-MNIST.
    let dir2 = tmp_dir("idx-gz");
    std::fs::write(dir2.join(format!("{}.gz", idx::TRAIN_IMAGES)), gzip(&images)).unwrap();
    std::fs::write(dir2.join(idx::TRAIN_LABELS), &labels).unwrap();
    std::fs::write(dir2.join(format!("{}.gz", idx::TEST_IMAGES)), gzip(&images)).unwrap();
    std::fs::write(dir2.join(format!("{}.gz", idx::TEST_LABELS)), gzip(&labels)).unwrap();
    let gz = idx::load(&dir2, Kind::FashionMnist).unwrap();
    assert_eq!(gz.train.pixels(), ds.pixels());
    assert_eq!(gz.train.labels(), ds.labels());
    assert_eq!(gz.test.unwrap().pixels(), ds.pixels());
    assert_eq!(gz.train.classes()[7], "Sneaker");
    assert!(gz.train.hflip());

    // A test images file without its labels is an error, not a silent skip.
    std::fs::remove_file(dir2.join(format!("{}.gz", idx::TEST_LABELS))).unwrap();
    let msg = err(idx::load(&dir2, Kind::FashionMnist));
    assert_contains(&msg, &[idx::TEST_LABELS]);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}

#[test]
fn idx_wrong_magic_is_an_error_naming_the_file() {
    let (images, labels) = tiny_idx();
    let dir = tmp_dir("idx-magic");
    let img = dir.join("images.idx");
    let lab = dir.join("labels.idx");
    // Images and labels swapped: each has the other's magic.
    std::fs::write(&img, &labels).unwrap();
    std::fs::write(&lab, &images).unwrap();
    let msg = err(idx::load_pair(&img, &lab, Kind::Mnist.meta("mnist")));
    assert_contains(&msg, &["images.idx", "2049", "expected 2051"]);
    std::fs::write(&img, &images).unwrap();
    let msg = err(idx::load_pair(&img, &lab, Kind::Mnist.meta("mnist")));
    assert_contains(&msg, &["labels.idx", "2051", "expected 2049"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn idx_truncation_count_mismatch_and_bad_labels_are_errors() {
    let (images, labels) = tiny_idx();
    let meta = || Kind::Mnist.meta("mnist");
    let msg = err(idx::parse(&images[..images.len() - 1], &labels, "imgs", "labs", meta()));
    assert_contains(&msg, &["imgs", "17 data bytes", "expected 18", "truncated"]);
    let msg = err(idx::parse(&images[..10], &labels, "imgs", "labs", meta()));
    assert_contains(&msg, &["imgs", "header", "truncated"]);
    let msg = err(idx::parse(&images, &labels[..labels.len() - 1], "imgs", "labs", meta()));
    assert_contains(&msg, &["labs", "truncated"]);
    let msg = err(idx::parse(&images, &idx_labels(&[7, 1]), "imgs", "labs", meta()));
    assert_contains(&msg, &["labs", "2 labels", "3 images"]);
    let msg = err(idx::parse(&images, &idx_labels(&[7, 1, 10]), "imgs", "labs", meta()));
    assert_contains(&msg, &["labs", "label 2 is 10"]);
    let gz = gzip(&images);
    let msg = err(idx::parse(&gz[..gz.len() / 2], &labels, "imgs.gz", "labs", meta()));
    assert_contains(&msg, &["imgs.gz", "gzip"]);
}

// ---------------------------------------------------------------- embedded

/// The first labels of the Debian `dataset-fashion-mnist` files, read off
/// /usr/share/datasets/fashion-mnist/ when the subset was cut.
const FASHION_TRAIN_FIRST: [u8; 20] = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9, 5, 5, 7, 9, 1, 0, 6, 4];
const FASHION_TEST_FIRST: [u8; 20] = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0];
const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

#[test]
fn embedded_subset_has_the_right_counts_and_labels() {
    let split = embedded::load().unwrap();
    let (train, test) = (split.train, split.test.expect("embedded set has a test part"));
    assert_eq!(train.shape(), Shape::nchw(embedded::TRAIN_LEN, 1, 28, 28));
    assert_eq!(test.shape(), Shape::nchw(embedded::TEST_LEN, 1, 28, 28));
    assert_eq!((train.len(), test.len()), (2000, 500));
    assert_eq!(&train.labels()[..20], FASHION_TRAIN_FIRST);
    assert_eq!(&test.labels()[..20], FASHION_TEST_FIRST);
    // Pixel sums of the first images, read off the same Debian files.
    let sum = |d: &Dataset| d.image(0).iter().map(|&p| u64::from(p)).sum::<u64>();
    assert_eq!((sum(&train), sum(&test)), (76247, 33456));
    assert_eq!(train.classes()[9], "Ankle boot");
    assert_eq!(train.name(), embedded::NAME);
    assert_eq!(DataSpec::default(), DataSpec::Embedded);
}

#[test]
fn embedded_subset_equals_the_start_of_the_debian_files() {
    let dir = Path::new(DEBIAN_DIR);
    if !dir.join("train-labels-idx1-ubyte.gz").exists() {
        eprintln!("skipped: {DEBIAN_DIR} not installed; the constants in the other test still apply");
        return;
    }
    let full = idx::load(dir, Kind::FashionMnist).unwrap();
    let small = embedded::load().unwrap();
    let (ft, st) = (full.train, small.train);
    assert_eq!(ft.len(), 60000);
    assert_eq!(st.labels(), &ft.labels()[..2000]);
    assert_eq!(st.pixels(), &ft.pixels()[..2000 * 784]);
    let (fv, sv) = (full.test.unwrap(), small.test.unwrap());
    assert_eq!(sv.labels(), &fv.labels()[..500]);
    assert_eq!(sv.pixels(), &fv.pixels()[..500 * 784]);
}

// ---------------------------------------------------------------- augmentation

/// One channel, 3 rows × 4 columns, pixel values 1..=12 row-major.
/// mean 0 and std 1, so a pixel v normalises to v/255.
fn tiny_image(hflip: bool) -> Dataset {
    let meta =
        Meta { name: "tiny".into(), classes: vec!["a".into(), "b".into()], mean: vec![0.0], std: vec![1.0], hflip };
    Dataset::new(meta, Shape::nchw(1, 1, 3, 4), (1..=12).collect(), vec![1]).unwrap()
}

fn pixels_of(ds: &Dataset, aug: Aug) -> Vec<u8> {
    let mut out = vec![0f32; ds.image_len()];
    write_image(ds, 0, aug, &mut out);
    out.iter().map(|v| (v * 255.0).round() as u8).collect()
}

#[test]
fn crop_and_flip_move_pixels_as_worked_by_hand() {
    let ds = tiny_image(true);
    #[rustfmt::skip]
    let cases: [(Aug, [u8; 12]); 5] = [
        (Aug::IDENTITY, [
            1, 2, 3, 4,
            5, 6, 7, 8,
            9, 10, 11, 12]),
        // Crop at (oy, ox) = (5, 2) of the 4-padded image: dy = +1, dx = -2.
        (Aug { dy: 1, dx: -2, flip: false }, [
            0, 0, 5, 6,
            0, 0, 9, 10,
            0, 0, 0, 0]),
        (Aug { dy: 0, dx: 0, flip: true }, [
            4, 3, 2, 1,
            8, 7, 6, 5,
            12, 11, 10, 9]),
        // Crop first, then flip the crop (torchvision's order).
        (Aug { dy: -1, dx: 1, flip: true }, [
            0, 0, 0, 0,
            0, 4, 3, 2,
            0, 8, 7, 6]),
        // The largest shift leaves only padding.
        (Aug { dy: PAD as isize, dx: -(PAD as isize), flip: false }, [0; 12]),
    ];
    for (aug, want) in cases {
        assert_eq!(pixels_of(&ds, aug), want, "{aug:?}");
    }
}

#[test]
fn padding_is_zero_in_pixel_space_then_normalised() {
    let ds = cifar10::load(Path::new(FIRST20)).unwrap().train;
    let mut out = vec![0f32; ds.image_len()];
    write_image(&ds, 0, Aug { dy: -1, dx: 0, flip: false }, &mut out);
    // Row 0 is padding in every channel: (0 - mean) / std.
    let want = [-1.989_212_f32, -1.980_237_7, -1.707_004_1];
    for (ch, w) in want.iter().enumerate() {
        close(out[ch * 1024], *w, "padded pixel");
    }
    // Row 1 is the source's row 0: image 0's first pixel (158, 112, 49).
    close(out[32], 0.518_993_5, "R of source (0, 0)");
}

#[test]
fn normalisation_matches_hand_computed_values() {
    let ds = cifar10::load(Path::new(FIRST20)).unwrap().train;
    let mut x = vec![0f32; 2 * ds.image_len()];
    let mut y = vec![0f32; 2];
    fill_plain(&ds, &[0, 1], &mut x, &mut y).unwrap();
    // (158/255 - 0.49139968) / 0.24703233, and likewise for G = 112, B = 49.
    close(x[0], 0.518_993_5, "R");
    close(x[1024], -0.176_366_4, "G");
    close(x[2048], -0.972_424_9, "B");
    assert_eq!(y, [3.0, 8.0]);

    // Fashion-MNIST: 255 and 0 with mean 0.2860, std 0.3530.
    let fm = embedded::load().unwrap().train;
    let img = fm.image(0);
    let (hi, lo) = (img.iter().position(|&p| p == 255), img.iter().position(|&p| p == 0));
    let (hi, lo) = (hi.expect("image 0 has a 255"), lo.expect("image 0 has a 0"));
    let mut x = vec![0f32; 784];
    let mut y = [0f32; 1];
    fill_plain(&fm, &[0], &mut x, &mut y).unwrap();
    close(x[hi], 2.022_662_9, "Fashion-MNIST 255");
    close(x[lo], -0.810_198_3, "Fashion-MNIST 0");
    assert_eq!(y, [9.0]);
}

#[test]
fn random_augmentation_covers_every_offset_and_flips_only_when_allowed() {
    let mut rng = rarts::data::Rng::new(11);
    let mut seen = [[false; 2 * PAD + 1]; 2];
    let mut flips = 0;
    for _ in 0..2000 {
        let a = Aug::random(&mut rng, PAD, true);
        assert!(a.dy.unsigned_abs() <= PAD && a.dx.unsigned_abs() <= PAD, "{a:?}");
        seen[0][(a.dy + PAD as isize) as usize] = true;
        seen[1][(a.dx + PAD as isize) as usize] = true;
        flips += usize::from(a.flip);
    }
    assert!(seen.iter().flatten().all(|&s| s), "some crop offset never drawn: {seen:?}");
    assert!((850..1150).contains(&flips), "{flips} flips in 2000 draws");
    assert!((0..200).all(|_| !Aug::random(&mut rng, PAD, false).flip));
}

#[test]
fn batches_are_flipped_only_where_the_data_set_allows() {
    // Every batch must be some crop of the image; with flips allowed, some
    // batches are crops of its mirror that no plain crop can produce.
    let plain_crops: Vec<Vec<u8>> = (-4..=4)
        .flat_map(|dy| (-4..=4).map(move |dx| (dy, dx)))
        .map(|(dy, dx)| pixels_of(&tiny_image(true), Aug { dy, dx, flip: false }))
        .collect();
    for hflip in [false, true] {
        let ds = tiny_image(hflip);
        let mut s = Sampler::new(0..1, 1, 5).unwrap();
        let mut x = vec![0f32; 12];
        let mut y = [0f32; 1];
        let mut mirrored = 0;
        // A mirror is visible only when the crop keeps at least two columns
        // and one row: about 0.5 · (5/9)² ≈ 15% of draws, ~62 of 400.
        for _ in 0..400 {
            s.next_batch(&ds, &mut x, &mut y).unwrap();
            let got: Vec<u8> = x.iter().map(|v| (v * 255.0).round() as u8).collect();
            if !plain_crops.contains(&got) {
                mirrored += 1;
            }
            assert_eq!(y, [1.0]);
        }
        if hflip {
            assert!(mirrored > 20, "only {mirrored} of 100 batches were mirrored");
        } else {
            assert_eq!(mirrored, 0, "a set without flips produced a mirrored image");
        }
    }
}

// ---------------------------------------------------------------- sampler

/// `n` one-pixel images whose value is their index (n ≤ 256), labels
/// index % 3, normalised so that the f32 value times 255 is the index.
fn indexed(n: usize) -> Dataset {
    let meta = Meta {
        name: "indexed".into(),
        classes: vec!["a".into(), "b".into(), "c".into()],
        mean: vec![0.0],
        std: vec![1.0],
        hflip: false,
    };
    let pixels: Vec<u8> = (0..n).map(|i| i as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    Dataset::new(meta, Shape::nchw(n, 1, 1, 1), pixels, labels).unwrap()
}

#[test]
fn each_epoch_visits_its_part_once_in_a_fresh_order() {
    let ds = indexed(100);
    let mut s = SearchSampler::new(&ds, 0.5, 10, 3).unwrap();
    s.set_augment(false);
    assert_eq!(s.steps_per_epoch(), 5);
    let mut x = vec![0f32; 10];
    let mut y = vec![0f32; 10];
    let mut epochs = Vec::new();
    for epoch in 0..2 {
        assert_eq!(s.epoch(), epoch);
        let (mut w, mut a) = (Vec::new(), Vec::new());
        for step in 0..5 {
            assert_eq!(s.step(), step);
            s.next_weights_batch(&ds, &mut x, &mut y).unwrap();
            for (v, l) in x.iter().zip(&y) {
                let i = (v * 255.0).round() as usize;
                assert_eq!(*l as usize, i % 3, "label travels with its image");
                w.push(i);
            }
            s.next_arch_batch(&ds, &mut x, &mut y).unwrap();
            a.extend(x.iter().map(|v| (v * 255.0).round() as usize));
        }
        epochs.push(w.clone());
        w.sort();
        a.sort();
        assert_eq!(w, (0..50).collect::<Vec<_>>(), "weights part is the first half, once each");
        assert_eq!(a, (50..100).collect::<Vec<_>>(), "α part is the second half, once each");
    }
    assert_ne!(epochs[0], epochs[1], "each epoch reshuffles");
    assert_ne!(epochs[0], (0..50).collect::<Vec<_>>(), "epoch 0 is shuffled too");
}

#[test]
fn steps_per_epoch_drop_the_last_partial_batch() {
    let ds = indexed(100);
    let s = SearchSampler::new(&ds, 0.5, 16, 0).unwrap();
    assert_eq!(s.steps_per_epoch(), 3); // floor(50 / 16)
    assert_eq!(s.arch.steps_per_epoch(), 3);
    let s = SearchSampler::new(&ds, 0.7, 16, 0).unwrap();
    assert_eq!((s.weights.range(), s.arch.range()), (0..70, 70..100));
    assert_eq!((s.steps_per_epoch(), s.arch.steps_per_epoch()), (4, 1));
}

#[test]
fn bad_sampler_settings_are_errors() {
    let ds = indexed(100);
    for p in [0.0, 1.0, -0.5, f64::NAN] {
        assert_contains(&err(SearchSampler::new(&ds, p, 8, 0)), &["train_portion"]);
    }
    let msg = err(SearchSampler::new(&ds, 0.5, 64, 0));
    assert_contains(&msg, &["train_portion 0.5", "50 for the weights", "batch 64"]);
    assert_contains(&err(SearchSampler::new(&ds, 0.5, 0, 0)), &["batch size 0"]);

    let mut s = SearchSampler::new(&ds, 0.5, 10, 0).unwrap();
    let mut x = vec![0f32; 9];
    let mut y = vec![0f32; 10];
    assert_contains(&err(s.next_weights_batch(&ds, &mut x, &mut y)), &["batch buffer", "10×1×1×1"]);
    let other = indexed(90);
    let mut x = vec![0f32; 10];
    assert_contains(&err(s.next_weights_batch(&other, &mut x, &mut y)), &["100 images"]);
}

fn draw(s: &mut SearchSampler, ds: &Dataset, steps: usize) -> Vec<Vec<f32>> {
    let b = s.weights.batch();
    let mut out = Vec::new();
    for _ in 0..steps {
        let mut x = vec![0f32; b * ds.image_len()];
        let mut y = vec![0f32; b];
        s.next_weights_batch(ds, &mut x, &mut y).unwrap();
        out.push([x, y].concat());
        let mut x = vec![0f32; b * ds.image_len()];
        let mut y = vec![0f32; b];
        s.next_arch_batch(ds, &mut x, &mut y).unwrap();
        out.push([x, y].concat());
    }
    out
}

#[test]
fn sampler_is_deterministic_in_its_seed() {
    let ds = synthetic::generate(64, 3, 8, 8, 4, 1).unwrap();
    let a = draw(&mut SearchSampler::new(&ds, 0.5, 8, 42).unwrap(), &ds, 10);
    let b = draw(&mut SearchSampler::new(&ds, 0.5, 8, 42).unwrap(), &ds, 10);
    let c = draw(&mut SearchSampler::new(&ds, 0.5, 8, 43).unwrap(), &ds, 10);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn resume_from_saved_state_gives_the_same_next_batches() {
    let ds = synthetic::generate(64, 3, 8, 8, 4, 1).unwrap();
    // 32 images per part, batch 8: 4 steps an epoch; stop mid-epoch 1.
    let mut first = SearchSampler::new(&ds, 0.5, 8, 9).unwrap();
    draw(&mut first, &ds, 6);
    let saved = first.save_state();
    assert_eq!((first.epoch(), first.step()), (1, 2));
    let expected = draw(&mut first, &ds, 7);

    let mut resumed = SearchSampler::new(&ds, 0.5, 8, 9).unwrap();
    resumed.restore_state(&saved).unwrap();
    assert_eq!((resumed.epoch(), resumed.step()), (1, 2));
    assert_eq!(draw(&mut resumed, &ds, 7), expected);

    // The state also carries the seed: a sampler built with another seed
    // resumes the saved run, not its own.
    let mut other = SearchSampler::new(&ds, 0.5, 8, 1234).unwrap();
    other.restore_state(&saved).unwrap();
    assert_eq!(draw(&mut other, &ds, 7), expected);
}

#[test]
fn sampler_state_text_round_trips_and_rejects_mismatches() {
    let st = SamplerState { start: 5, end: 105, batch: 16, seed: 77, epoch: 3, pos: 2, rng: 0xdead_beef };
    let text = st.to_string();
    assert_eq!(text, "range=5..105 batch=16 seed=77 epoch=3 pos=2 rng=00000000deadbeef");
    assert_eq!(text.parse::<SamplerState>().unwrap(), st);
    assert_contains(&err("range=5..105 batch=16 epoch=3 pos=2 rng=1".parse::<SamplerState>()), &["missing 'seed'"]);
    assert_contains(&err("range=x batch=1 seed=1 epoch=0 pos=0 rng=0".parse::<SamplerState>()), &["range=x"]);

    let ds = indexed(100);
    let mut s = SearchSampler::new(&ds, 0.5, 10, 0).unwrap();
    let saved = s.save_state();
    let mut other = SearchSampler::new(&ds, 0.5, 5, 0).unwrap();
    assert_contains(&err(other.restore_state(&saved)), &["batches of 10", "batches of 5"]);
    assert_contains(&err(s.restore_state("garbage")), &["rarts-sampler v1"]);
    let cut: String = saved.lines().take(2).collect::<Vec<_>>().join("\n");
    assert_contains(&err(s.restore_state(&cut)), &["arch"]);
}

#[test]
fn eval_path_fills_in_order_and_reports_a_short_last_batch() {
    let ds = indexed(25);
    let mut x = vec![-1f32; 10];
    let mut y = vec![-1f32; 10];
    assert_eq!(fill_eval(&ds, 10, &mut x, &mut y).unwrap(), 10);
    let idx: Vec<usize> = x.iter().map(|v| (v * 255.0).round() as usize).collect();
    assert_eq!(idx, (10..20).collect::<Vec<_>>());
    let mut x = vec![-1f32; 10];
    assert_eq!(fill_eval(&ds, 20, &mut x, &mut y).unwrap(), 5);
    assert_eq!(x[5..], [-1.0; 5], "the unused tail is left alone");
    assert_contains(&err(fill_eval(&ds, 25, &mut x, &mut y)), &["starts at image 25"]);
    assert_contains(&err(fill_plain(&ds, &[3, 25], &mut x[..2], &mut y[..2])), &["index 25"]);
}

// ---------------------------------------------------------------- synthetic

#[test]
fn synthetic_is_deterministic_and_learnable() {
    let a = synthetic::generate(50, 2, 6, 7, 5, 3).unwrap();
    assert_eq!(a, synthetic::generate(50, 2, 6, 7, 5, 3).unwrap());
    assert_ne!(a.pixels(), synthetic::generate(50, 2, 6, 7, 5, 4).unwrap().pixels());
    assert_eq!(a.shape(), Shape::nchw(50, 2, 6, 7));
    for k in 0..5u8 {
        assert_eq!(a.labels().iter().filter(|&&l| l == k).count(), 10, "balanced classes");
    }

    // Learnable: a nearest-class-mean classifier fitted on the training set
    // gets nearly all of a test set with fresh noise and labels right.
    let (train, test) = synthetic::generate_pair(200, 100, (3, 16, 16), 10, 0).unwrap();
    assert_eq!(test.mean(), train.mean());
    let m = train.image_len();
    let mut centre = vec![0f64; 10 * m];
    let mut count = [0f64; 10];
    for i in 0..train.len() {
        let k = usize::from(train.labels()[i]);
        count[k] += 1.0;
        for (c, &p) in centre[k * m..(k + 1) * m].iter_mut().zip(train.image(i)) {
            *c += f64::from(p);
        }
    }
    for k in 0..10 {
        centre[k * m..(k + 1) * m].iter_mut().for_each(|c| *c /= count[k]);
    }
    let correct = (0..test.len())
        .filter(|&i| {
            let dist = |k: usize| -> f64 {
                centre[k * m..(k + 1) * m].iter().zip(test.image(i)).map(|(c, &p)| (c - f64::from(p)).powi(2)).sum()
            };
            let best = (0..10).min_by(|&a, &b| dist(a).total_cmp(&dist(b))).unwrap();
            best == usize::from(test.labels()[i])
        })
        .count();
    assert!(correct >= 95, "nearest class mean got {correct}/100");
    assert_contains(&err(synthetic::generate(0, 1, 1, 1, 2, 0)), &["zero dimension"]);
}

// ---------------------------------------------------------------- spec, describe

#[test]
fn data_specs_parse_and_print() {
    let cases = [
        ("cifar10:/d/cifar", DataSpec::Cifar10("/d/cifar".into())),
        ("fashion-mnist:fm", DataSpec::FashionMnist("fm".into())),
        ("mnist:C:/x", DataSpec::Mnist("C:/x".into())),
        ("synthetic", DataSpec::Synthetic { n: 512, side: 16 }),
        ("synthetic:64", DataSpec::Synthetic { n: 64, side: 16 }),
        ("synthetic:64:32", DataSpec::Synthetic { n: 64, side: 32 }),
        ("embedded", DataSpec::Embedded),
    ];
    for (text, want) in cases {
        let got: DataSpec = text.parse().unwrap();
        assert_eq!(got, want, "{text}");
        assert_eq!(got.to_string().parse::<DataSpec>().unwrap(), want);
    }
    for bad in [
        "imagenet:/x",
        "cifar10",
        "cifar10:",
        "synthetic:0",
        "synthetic:many",
        "synthetic:64:2",
        "synthetic:64:x",
        "embedded:x",
        "",
    ] {
        let msg = err(bad.parse::<DataSpec>());
        assert_contains(
            &msg,
            &["--data", "cifar10:PATH", "fashion-mnist:PATH", "mnist:PATH", "synthetic:N", "embedded"],
        );
    }
}

#[test]
fn specs_load_train_and_test_sets() {
    let split: rarts::data::Split = "synthetic:40".parse::<DataSpec>().unwrap().load().unwrap();
    assert_eq!(split.train.len(), 40);
    assert_eq!(split.test.map(|t| t.len()), Some(10));
    let split = format!("cifar10:{FIRST20}").parse::<DataSpec>().unwrap().load().unwrap();
    assert_eq!(split.train.labels(), FIRST20_LABELS);
    assert!(split.test.is_none());
}

#[test]
fn describe_names_size_shape_classes_and_first_labels() {
    let ds = cifar10::load(Path::new(FIRST20)).unwrap().train;
    let text = describe(&ds);
    assert_contains(
        &text,
        &[
            "20 images",
            "3×32×32",
            "0 airplane",
            "9 truck",
            "first labels: 3 8 8 0 6 6 1 6 3 1\n",
            "horizontal flip: yes",
        ],
    );
    let head = ds.head(3);
    assert_eq!(head.labels(), [3, 8, 8]);
    assert_contains(&describe(&head), &["3 images", "first labels: 3 8 8\n"]);
}
