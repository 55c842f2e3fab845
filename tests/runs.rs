//! Runs a user can trust: checkpoints that refuse what they cannot vouch
//! for, one process per output folder, no silent overwrite, every bad flag
//! named, and kill -9 at any moment followed by `--resume` ending exactly
//! where an uninterrupted run ends.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::cli::{bin, epoch_losses, fails_with, ok, small_search, tmp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rarts::checkpoint::Checkpoint;

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A finished 2-epoch search in a fresh folder.
fn finished(name: &str) -> PathBuf {
    let out = tmp(name);
    ok(&small_search(&out, "rarts", 2, 2).output().unwrap());
    out
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Resuming `out` with the settings that wrote it fails with `needles`, and
/// the checkpoint is left exactly as it was.
fn resume_refused(out: &Path, needles: &[&str]) {
    let ck = out.join("checkpoint.bin");
    let before = read(&ck);
    fails_with(&small_search(out, "rarts", 2, 2).arg("--resume").output().unwrap(), needles);
    assert_eq!(read(&ck), before, "a refused resume changed the checkpoint");
}

#[test]
fn a_corrupted_checkpoint_is_refused() {
    let out = finished("ck-corrupt");
    let ck = out.join("checkpoint.bin");
    let mut b = read(&ck);
    let mid = b.len() / 2;
    b[mid] ^= 0x10;
    fs::write(&ck, &b).unwrap();
    resume_refused(&out, &["checkpoint.bin", "checksum mismatch", "corrupted"]);
    // Cut short, as by a full disk.
    fs::write(&ck, &b[..mid]).unwrap();
    resume_refused(&out, &["checkpoint.bin", "checksum mismatch"]);
}

#[test]
fn a_checkpoint_of_another_format_version_is_refused() {
    let out = finished("ck-version");
    let ck = out.join("checkpoint.bin");
    let good = read(&ck);
    for (byte, shown) in [(b'9', "version 9"), (b'1', "version 1")] {
        let mut b = good.clone();
        b[7] = byte;
        fs::write(&ck, &b).unwrap();
        resume_refused(&out, &["checkpoint.bin", shown, "reads version 2"]);
    }
    fs::write(&ck, b"PK\x03\x04 some other file").unwrap();
    resume_refused(&out, &["checkpoint.bin", "not a rarts checkpoint"]);
}

#[test]
fn a_checkpoint_holding_a_non_finite_value_is_refused() {
    let out = finished("ck-nan");
    let ck_path = out.join("checkpoint.bin");
    let mut ck = Checkpoint::load(&ck_path).unwrap();
    let (name, data) = &mut ck.tensors[3];
    let name = name.clone();
    data[1] = f32::INFINITY;
    // A valid checksum over an infinite value: the value check must catch it.
    fs::write(&ck_path, ck.to_bytes()).unwrap();
    resume_refused(&out, &["checkpoint.bin", &format!("tensor '{name}' holds inf at element 1")]);
}

#[test]
fn resuming_on_other_data_is_refused() {
    let dir = tmp("ck-data");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("train.bin");
    fs::copy(manifest("tests/data/cifar10_test_first20.bin"), &file).unwrap();
    let out = dir.join("run");
    let search = || {
        let mut c = bin();
        c.args(["search", "--c", "4", "--layers", "3", "--batch", "4", "--epochs", "2", "--steps-per-epoch", "1"]);
        c.args(["--quiet", "--data"]).arg(format!("cifar10:{}", file.display())).arg("--out").arg(&out);
        c
    };
    ok(&search().output().unwrap());
    // Same path, same settings, one pixel changed.
    let mut b = read(&file);
    b[100] ^= 0xff;
    fs::write(&file, &b).unwrap();
    let before = read(&out.join("checkpoint.bin"));
    fails_with(&search().arg("--resume").output().unwrap(), &["checkpoint.bin", "other data", "20+0 images"]);
    assert_eq!(read(&out.join("checkpoint.bin")), before);
}

/// `--arch-lr 1e30` keeps the first epoch finite and sends α to NaN in the
/// second, while the loss is still finite: the state check must stop the run
/// before that epoch's checkpoint, naming the tensor and the flag.
#[test]
fn a_non_finite_state_stops_the_run_before_its_checkpoint() {
    let out = tmp("nan-state");
    let mut c = small_search(&out, "rarts", 4, 1);
    c.args(["--arch-lr", "1e30"]);
    fails_with(&c.output().unwrap(), &["epoch 1", "'alpha_normal'", "lower --arch-lr (now 1e30)", "is intact"]);
    let ck = Checkpoint::load(&out.join("checkpoint.bin")).expect("the last good checkpoint loads");
    assert_eq!(ck.get("epochs_done"), Some("1"));
    assert!(ck.first_non_finite().is_none());
    assert_eq!(epoch_losses(&out).len(), 1, "the log holds the good epoch only");
    assert!(!out.join("genotype.txt").exists());
}

#[test]
fn a_folder_holding_a_run_is_refused_without_resume_or_force() {
    let out = finished("refuse");
    let before = read(&out.join("checkpoint.bin"));
    let log = read(&out.join("log.jsonl"));
    fails_with(
        &small_search(&out, "rarts", 2, 2).output().unwrap(),
        &["already holds a run", "checkpoint.bin", "genotype.txt", "--resume", "--force"],
    );
    assert_eq!(read(&out.join("checkpoint.bin")), before);
    assert_eq!(read(&out.join("log.jsonl")), log);
    // --resume of a finished run changes nothing it computed.
    let genotype = read(&out.join("genotype.json"));
    ok(&small_search(&out, "rarts", 2, 2).arg("--resume").output().unwrap());
    assert_eq!(read(&out.join("genotype.json")), genotype);
    assert_eq!(read(&out.join("checkpoint.bin")), before);
}

#[test]
fn force_removes_the_files_rarts_wrote_and_nothing_else() {
    let out = finished("force");
    fs::write(out.join("notes.txt"), "mine").unwrap();
    // A new run that stops in its second epoch: a stale genotype of the old
    // run must not be left beside its log.
    let mut c = small_search(&out, "rarts", 4, 1);
    c.args(["--force", "--arch-lr", "1e30"]);
    fails_with(&c.output().unwrap(), &["'alpha_normal'"]);
    assert!(!out.join("genotype.txt").exists() && !out.join("genotype.json").exists());
    assert_eq!(epoch_losses(&out).len(), 1);
    assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
    let c = small_search(&out, "rarts", 2, 2).args(["--force", "--resume"]).output().unwrap();
    fails_with(&c, &["--force", "--resume"]);
}

#[test]
fn resume_with_other_settings_names_only_what_differs() {
    let out = finished("resume-diff");
    let mut c = small_search(&out, "rarts", 2, 2);
    c.args(["--lambda", "2", "--beta", "0.5", "--resume"]);
    let stderr = fails_with(
        &c.output().unwrap(),
        &["other settings", "--lambda: 1 in the checkpoint, 2 now", "--beta: 1 in the checkpoint, 0.5 now"],
    );
    assert!(!stderr.contains("--c:") && !stderr.contains("--seed"), "unchanged settings listed: {stderr}");
}

#[test]
fn resume_without_a_checkpoint_beside_other_outputs_is_refused() {
    let out = finished("resume-nock");
    fs::remove_file(out.join("checkpoint.bin")).unwrap();
    fails_with(
        &small_search(&out, "rarts", 2, 2).arg("--resume").output().unwrap(),
        &["no checkpoint.bin to resume from", "log.jsonl", "--force"],
    );
    // An empty folder: --resume starts a new search (scripts rerun it blindly).
    let fresh = tmp("resume-fresh");
    ok(&small_search(&fresh, "rarts", 1, 1).arg("--resume").output().unwrap());
    assert!(fresh.join("genotype.txt").exists());
}

#[test]
fn two_processes_on_one_folder_one_runs_the_other_is_refused_at_once() {
    let out = tmp("lock");
    let spawn = || small_search(&out, "rarts", 3, 3).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (winner, loser) = match (a.status.success(), b.status.success()) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        other => panic!(
            "exactly one must run: {other:?}\n{}\n{}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        ),
    };
    assert!(winner.status.success());
    fails_with(&loser, &["another rarts process", "rarts.lock"]);
    assert_eq!(epoch_losses(&out).len(), 3, "the runner's log is complete");
    assert!(out.join("genotype.json").exists());
    assert_eq!(Checkpoint::load(&out.join("checkpoint.bin")).unwrap().get("epochs_done"), Some("3"));
}

/// What must agree between two runs: every tensor and header field of the
/// checkpoint except the step times inside its log lines.
fn wait_killed(mut child: Child) -> bool {
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

#[test]
fn killed_at_five_moments_and_resumed_ends_like_an_uninterrupted_run() {
    let (epochs, steps) = (6, 3);
    let full = tmp("kill-full");
    let t = Instant::now();
    ok(&small_search(&full, "rarts", epochs, steps).output().unwrap());
    let t_full = t.elapsed().as_secs_f64();

    let cut = tmp("kill-cut");
    let mut rng = StdRng::seed_from_u64(2024);
    let mut interrupted = 0;
    for _ in 0..5 {
        let at = Duration::from_secs_f64(t_full * rng.random_range(0.03..0.25));
        let child = small_search(&cut, "rarts", epochs, steps)
            .arg("--resume")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        interrupted += wait_killed(child) as usize;
        // Whatever the moment, what is there is whole.
        if cut.join("checkpoint.bin").exists() {
            Checkpoint::load(&cut.join("checkpoint.bin")).expect("a killed run leaves a whole checkpoint");
        }
    }
    assert!(interrupted >= 3, "only {interrupted} of 5 kills hit a running search");
    ok(&small_search(&cut, "rarts", epochs, steps).arg("--resume").output().unwrap());
    assert_eq!(read(&full.join("genotype.json")), read(&cut.join("genotype.json")));
    assert_eq!(read(&full.join("genotype.txt")), read(&cut.join("genotype.txt")));
    assert_eq!(epoch_losses(&full), epoch_losses(&cut));
    // The α trace: every sample once, none lost or repeated by a kill.
    assert_eq!(read(&full.join("alpha.jsonl")), read(&cut.join("alpha.jsonl")));
    assert_eq!(fs::read_to_string(cut.join("alpha.jsonl")).unwrap().lines().count(), epochs * steps);
    // The same checkpoint (every byte of the state) and log (every field
    // but the timings): the one helper that says what "the same run" means.
    let diff = rarts::run_record::run_differences(&full, &cut).unwrap();
    assert!(diff.is_empty(), "the resumed run differs from the uninterrupted one: {diff:?}");
    let timings = |d: &Path| {
        Checkpoint::load(&d.join("checkpoint.bin"))
            .unwrap()
            .header
            .iter()
            .filter(|(k, _)| k.starts_with("timing."))
            .count()
    };
    assert_eq!(timings(&cut), epochs, "each epoch's timings kept apart from the state");
    let stale: Vec<_> =
        fs::read_dir(&cut).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(stale.is_empty(), "temp files left: {stale:?}");
}

#[test]
fn every_flag_outside_its_domain_is_named() {
    let out = tmp("flags");
    let cases: &[(&str, &str, &str)] = &[
        ("--lr", "-0.1", "finite positive"),
        ("--lr", "nan", "finite positive"),
        ("--lr-min", "-1e-3", "finite non-negative"),
        ("--clip", "inf", "finite positive"),
        ("--weight-decay", "-3e-4", "finite non-negative"),
        ("--arch-lr", "nan", "finite positive"),
        ("--arch-weight-decay", "-1", "finite non-negative"),
        ("--momentum", "1", "[0, 1)"),
        ("--lambda", "-1", "finite non-negative"),
        ("--beta", "inf", "finite non-negative"),
        ("--xi", "-0.01", "finite non-negative"),
        ("--train-portion", "0", "strictly between 0 and 1"),
    ];
    for (flag, value, expected) in cases {
        let mut c = small_search(&out, "rarts", 1, 1);
        c.arg(format!("{flag}={value}"));
        fails_with(&c.output().unwrap(), &[flag, expected]);
        assert!(!out.exists(), "{flag} {value}: --out was created before the flags were checked");
    }
    let o = bin().args(["search", "--layers", "2", "--out"]).arg(&out).output().unwrap();
    fails_with(&o, &["--layers 2", "at least 3 cells"]);
    let o = bin().args(["search", "--steps-per-epoch", "0", "--out"]).arg(&out).output().unwrap();
    fails_with(&o, &["--steps-per-epoch 0", "at least 1"]);
    for (flag, value) in
        [("--c", "-1"), ("--lr", "nan"), ("--lambda", "0"), ("--beta", "-1"), ("--xi", "inf"), ("--steps", "0")]
    {
        let o = bin().args(["toy", &format!("{flag}={value}")]).output().unwrap();
        fails_with(&o, &[flag]);
    }
}

#[test]
fn sizes_too_large_for_the_machine_are_refused_before_allocating() {
    let out = tmp("huge");
    let t = Instant::now();
    let o = bin().args(["search", "--layers", "100000", "--quiet", "--out"]).arg(&out).output().unwrap();
    fails_with(&o, &["GiB", "--layers 100000"]);
    let huge = "synthetic:100000000000:1024";
    fails_with(&small_search(&out, "rarts", 1, 1).args(["--data", huge]).output().unwrap(), &["--data", huge, "GiB"]);
    fails_with(&bin().args(["info", "--data", huge]).output().unwrap(), &["--data", huge, "GiB"]);
    assert!(t.elapsed() < Duration::from_secs(60), "refusing took {:?}", t.elapsed());
}

#[test]
fn eval_images_on_data_without_a_test_split_is_an_error() {
    let data = format!("cifar10:{}", manifest("tests/data/cifar10_test_first20.bin").display());
    let out = tmp("no-test");
    let mut c = bin();
    c.args(["search", "--c", "4", "--layers", "3", "--batch", "4", "--epochs", "1", "--steps-per-epoch", "1"]);
    c.args(["--quiet", "--data", &data, "--out"]).arg(&out);
    let explicit = c.arg("--eval-images").arg("10").output().unwrap();
    fails_with(&explicit, &["--eval-images 10", "no test split", "nothing to evaluate"]);
    let mut c = bin();
    c.args(["search", "--c", "4", "--layers", "3", "--batch", "4", "--epochs", "1", "--steps-per-epoch", "1"]);
    c.args(["--quiet", "--force", "--data", &data, "--out"]).arg(&out);
    ok(&c.output().unwrap());
    let log = fs::read_to_string(out.join("log.jsonl")).unwrap();
    assert!(log.contains("\"test_acc\":null"), "{log}");
}

#[test]
fn darts2_logs_its_validation_loss_as_taken_at_the_unrolled_weights() {
    let out = tmp("darts2-log");
    ok(&small_search(&out, "darts2", 1, 2).output().unwrap());
    let log = fs::read_to_string(out.join("log.jsonl")).unwrap();
    assert!(log.contains("\"loss_val_unrolled\":") && !log.contains("\"loss_val\":"), "{log}");
    let out = tmp("darts1-log");
    ok(&small_search(&out, "darts1", 1, 2).output().unwrap());
    assert!(fs::read_to_string(out.join("log.jsonl")).unwrap().contains("\"loss_val\":"));
}

/// A CIFAR file whose size is not a whole number of records says so; an IDX
/// set whose test images differ in size from its training images names the
/// test file.
#[test]
fn data_files_that_do_not_fit_say_why() {
    let dir = tmp("bad-data");
    fs::create_dir_all(&dir).unwrap();
    let f = dir.join("odd.bin");
    fs::write(&f, &read(&manifest("tests/data/cifar10_test_first20.bin"))[..3073 * 3 + 5]).unwrap();
    let o = bin().args(["info", "--data"]).arg(format!("cifar10:{}", f.display())).output().unwrap();
    fails_with(&o, &["odd.bin", "not a multiple of the 3073-byte CIFAR-10 record", "3 whole records and 5 bytes over"]);

    let idx = dir.join("idx");
    fs::create_dir_all(&idx).unwrap();
    let images = |n: u32, side: u32| {
        let mut b = vec![0, 0, 8, 3];
        for v in [n, side, side] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.resize(16 + (n * side * side) as usize, 7);
        b
    };
    let labels = |n: u32| {
        let mut b = vec![0, 0, 8, 1];
        b.extend_from_slice(&n.to_be_bytes());
        b.resize(8 + n as usize, 1);
        b
    };
    fs::write(idx.join("train-images-idx3-ubyte"), images(4, 28)).unwrap();
    fs::write(idx.join("train-labels-idx1-ubyte"), labels(4)).unwrap();
    fs::write(idx.join("t10k-images-idx3-ubyte"), images(2, 32)).unwrap();
    fs::write(idx.join("t10k-labels-idx1-ubyte"), labels(2)).unwrap();
    let o = bin().args(["info", "--data"]).arg(format!("fashion-mnist:{}", idx.display())).output().unwrap();
    fails_with(&o, &["t10k-images-idx3-ubyte", "32×32", "28×28"]);
}
