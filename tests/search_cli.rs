//! The `rarts` binary end to end: searches on the embedded data, resume
//! after a kill, determinism, and clear errors for bad input.

mod common;

use common::cli::{bin, epoch_losses, fails_with, kill_after_first_checkpoint, ok, small_search, tmp};
use std::path::Path;
use std::process::Command;

fn check_search(algo: &str) {
    let out = tmp(&format!("search-{algo}"));
    let stdout = ok(&small_search(&out, algo, 4, 6).output().unwrap());
    assert!(stdout.contains("weights: "), "{stdout}");
    let text = std::fs::read_to_string(out.join("genotype.txt")).unwrap();
    assert!(text.starts_with("Genotype(normal=[('"), "{text}");
    assert!(stdout.contains(text.trim()), "the genotype is printed at the end");
    let json = std::fs::read_to_string(out.join("genotype.json")).unwrap();
    assert!(json.contains("\"softmax_alpha_normal\""));
    // 8 genes per cell, none of them `none`.
    assert_eq!(text.matches("('").count(), 16, "{text}");
    assert!(!text.contains("'none'"));
    let losses = epoch_losses(&out);
    assert_eq!(losses.len(), 4);
    assert!(losses[3] < losses[0], "{algo}: training loss did not fall: {losses:?}");
    assert!(out.join("checkpoint.bin").exists());
}

#[test]
fn rarts_search_on_embedded_data_learns_and_writes_a_genotype() {
    check_search("rarts");
}

#[test]
fn darts1_search_on_embedded_data_learns_and_writes_a_genotype() {
    check_search("darts1");
}

#[test]
fn darts2_search_on_embedded_data_learns_and_writes_a_genotype() {
    check_search("darts2");
}

/// A short NAS-Bench-201 search of each algorithm ends with a cell string
/// NATS-Bench can look up, the softmax of α beside it, and a training loss
/// that fell.
#[test]
fn nb201_search_writes_a_cell_string() {
    for algo in ["rarts", "darts1", "darts2"] {
        let out = tmp(&format!("nb201-{algo}"));
        let mut c = bin();
        c.args(["search", "--space", "nb201", "--algo", algo, "--c", "4", "--cells-per-stage", "1", "--batch", "8"]);
        c.args(["--seed", "7", "--epochs", "3", "--steps-per-epoch", "5", "--eval-images", "32", "--quiet", "--out"]);
        let stdout = ok(&c.arg(&out).output().unwrap());
        let text = std::fs::read_to_string(out.join("genotype.txt")).unwrap();
        let cell = rarts::space::nb201::Nb201Cell::parse(text.trim()).unwrap();
        assert_eq!(cell.to_arch_str(), text.trim());
        assert!(stdout.contains(text.trim()), "{algo}: the cell is printed at the end");
        let json = std::fs::read_to_string(out.join("genotype.json")).unwrap();
        assert!(json.contains("\"space\":\"nb201\"") && json.contains("\"softmax_alpha\""), "{json}");
        let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
        assert!(log.lines().all(|l| l.contains("\"softmax_alpha_cell\":[[")), "{log}");
        let losses = epoch_losses(&out);
        assert_eq!(losses.len(), 3);
        assert!(losses[2] < losses[0], "{algo}: training loss did not fall: {losses:?}");
    }
}

#[test]
fn same_seed_gives_the_same_genotype_and_losses() {
    let (a, b) = (tmp("det-a"), tmp("det-b"));
    ok(&small_search(&a, "rarts", 1, 3).output().unwrap());
    ok(&small_search(&b, "rarts", 1, 3).output().unwrap());
    let read = |d: &Path| std::fs::read_to_string(d.join("genotype.json")).unwrap();
    assert_eq!(read(&a), read(&b));
    assert_eq!(epoch_losses(&a), epoch_losses(&b));
}

#[test]
fn a_search_killed_mid_epoch_resumes_from_its_checkpoint() {
    // Reference: three uninterrupted epochs.
    let full = tmp("resume-full");
    ok(&small_search(&full, "rarts", 3, 4).output().unwrap());
    // Same search, killed once the first epoch's checkpoint exists.
    let cut = tmp("resume-cut");
    kill_after_first_checkpoint(small_search(&cut, "rarts", 3, 4), &cut);
    assert!(!cut.join("genotype.json").exists(), "killed before the end");
    let stdout = ok(&small_search(&cut, "rarts", 3, 4).arg("--resume").output().unwrap());
    assert!(stdout.contains("genotype"));
    let read = |d: &Path| std::fs::read_to_string(d.join("genotype.json")).unwrap();
    assert_eq!(read(&full), read(&cut), "resumed run differs from the uninterrupted one");
    assert_eq!(epoch_losses(&full), epoch_losses(&cut));
}

#[test]
fn resume_with_other_settings_is_refused() {
    let out = tmp("resume-other");
    ok(&small_search(&out, "rarts", 1, 2).output().unwrap());
    let mut c = small_search(&out, "rarts", 1, 2);
    c.args(["--lambda", "2", "--resume"]);
    fails_with(&c.output().unwrap(), &["--resume", "other settings"]);
}

#[test]
fn info_reports_the_real_cifar10_images() {
    let data = format!("cifar10:{}/tests/data/cifar10_test_first20.bin", env!("CARGO_MANIFEST_DIR"));
    let stdout = ok(&bin().args(["info", "--data", &data]).output().unwrap());
    assert!(stdout.contains("20 images, 3×32×32"), "{stdout}");
    assert!(stdout.contains("first labels: 3 8 8 0 6 6 1 6 3 1"), "{stdout}");
}

#[test]
fn missing_data_path_is_a_clear_error() {
    let out = bin().args(["info", "--data", "cifar10:/nonexistent/cifar"]).output().unwrap();
    fails_with(&out, &["error:", "/nonexistent/cifar"]);
}

#[test]
fn truncated_data_file_is_a_clear_error() {
    let dir = tmp("truncated");
    std::fs::create_dir_all(&dir).unwrap();
    let src = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cifar10_test_first20.bin")).unwrap();
    let f = dir.join("cut.bin");
    std::fs::write(&f, &src[..3073 * 2 + 100]).unwrap();
    let out = bin().args(["info", "--data"]).arg(format!("cifar10:{}", f.display())).output().unwrap();
    fails_with(&out, &["error:", "cut.bin"]);
}

#[test]
fn bad_flag_values_are_clear_errors() {
    let out = tmp("bad-flags");
    for (flag, value) in [("--train-portion", "1.5"), ("--c", "5"), ("--batch", "0"), ("--lr", "-1")] {
        let mut c = small_search(&out, "rarts", 1, 1);
        c.arg(format!("{flag}={value}"));
        fails_with(&c.output().unwrap(), &[flag]);
    }
    let o = bin().args(["search", "--algo", "darts3"]).output().unwrap();
    fails_with(&o, &["darts3"]);
    let o = bin().args(["search", "--data", "imagenet:/x"]).output().unwrap();
    fails_with(&o, &["--data", "imagenet"]);
}

#[test]
fn a_diverging_search_stops_with_a_clear_error() {
    let out = tmp("nan");
    let mut c = small_search(&out, "darts1", 1, 5);
    // A huge learning rate with no effective clipping blows the weights up.
    c.args(["--lr", "1e30", "--lr-min", "1e30", "--clip", "1e38"]);
    fails_with(&c.output().unwrap(), &["error:", "non-finite", "lower --lr (now 1e30)"]);
}

#[test]
fn toy_prints_alpha_on_its_last_line() {
    let out = ok(&bin().args(["toy", "--algo", "rarts", "--c", "1", "--lambda", "2", "--beta", "3"]).output().unwrap());
    let last = out.lines().last().unwrap();
    let alpha: f64 = last.strip_prefix("alpha=").expect("alpha= line").parse().unwrap();
    // 1 / (1 + c + c/λ + c/β) with c = 1, λ = 2, β = 3.
    assert!((alpha - 1.0 / (1.0 + 1.0 + 0.5 + 1.0 / 3.0)).abs() < 1e-6, "{last}");
}

/// `--device cuda` on a machine without a usable GPU ends with the reason;
/// `--device auto` falls back to the CPU with a one-line notice. (On a GPU
/// machine both run on the GPU, which `gpu_parity` covers.)
#[test]
fn device_choice_without_a_gpu() {
    if rarts::backend::cuda::cuda_available() {
        common::skipped("a CUDA device is present");
        return;
    }
    let run = |device: &str| {
        Command::new(env!("CARGO_BIN_EXE_rarts")).args(["--device", device, "toy", "--algo", "rarts"]).output().unwrap()
    };
    fails_with(&run("cuda"), &["--device cuda", "no usable CUDA device"]);
    let auto = run("auto");
    let stdout = ok(&auto);
    assert!(stdout.lines().last().unwrap().starts_with("alpha="), "{stdout}");
    let stderr = String::from_utf8_lossy(&auto.stderr);
    assert_eq!(stderr.lines().count(), 1, "one notice line expected: {stderr}");
    assert!(stderr.contains("running on the CPU"), "{stderr}");
}

/// `rarts bench` times every requested algorithm and batch size: one JSON
/// line each with a positive step time, then the table.
#[test]
fn bench_prints_one_timing_per_algorithm_and_batch() {
    let out = bin()
        .args(["bench", "--data", "synthetic:32:8", "--c", "4", "--layers", "3", "--steps", "1"])
        .args(["--algos", "darts1,rarts", "--batches", "2,4"])
        .output()
        .unwrap();
    let stdout = ok(&out);
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    for (row, (algo, batch)) in rows.iter().zip([("darts1", 2), ("rarts", 2), ("darts1", 4), ("rarts", 4)]) {
        assert!(row.contains(&format!("\"algo\":\"{algo}\",\"batch\":{batch},")), "{row}");
        let ms: f64 = row.split("\"ms_per_step\":").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
        assert!(ms > 0.0 && ms.is_finite(), "{row}");
    }
    assert!(stdout.lines().any(|l| l.starts_with("algo") && l.contains("ms/step")), "{stdout}");
    fails_with(&bin().args(["bench", "--batches", "0"]).output().unwrap(), &["--batches", "at least 1"]);
}

#[test]
fn bench_with_a_single_algo_and_batch_times_just_those() {
    let out = bin()
        .args(["bench", "--data", "synthetic:32:8", "--c", "4", "--layers", "3", "--steps", "1"])
        .args(["--algo", "darts1", "--batch", "3"])
        .output()
        .unwrap();
    let stdout = ok(&out);
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    assert!(rows[0].contains("\"algo\":\"darts1\",\"batch\":3,"), "{}", rows[0]);
    // Both forms at once would leave one silently unused.
    fails_with(
        &bin().args(["bench", "--algo", "rarts", "--algos", "darts1"]).output().unwrap(),
        &["--algo", "--algos"],
    );
    fails_with(
        &bin().args(["bench", "--batch", "8", "--batches", "8,16"]).output().unwrap(),
        &["--batch", "--batches"],
    );
}

/// A network too large for the machine's memory is refused before anything
/// is allocated, with the sizes and the flags to lower.
#[cfg(target_os = "linux")]
#[test]
fn a_search_larger_than_memory_is_a_clear_error() {
    let out = tmp("too-big");
    let res = bin()
        .args(["search", "--batch", "1000", "--c", "2048", "--epochs", "1", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    fails_with(&res, &["GiB", "memory is available", "--batch"]);
}

/// A short width search of each algorithm on a depth-8 ResNet ends with a
/// width per searchable layer, the network's weights and multiply-adds, and
/// α moved by the multiply-add cost (target 30 %): the widths it picks cost
/// fewer multiply-adds than the full network.
#[test]
fn width_search_writes_widths_under_the_cost() {
    for algo in ["rarts", "darts1", "darts2"] {
        let out = tmp(&format!("width-{algo}"));
        let mut c = bin();
        c.args(["search", "--space", "width", "--algo", algo, "--depth", "8", "--batch", "8", "--seed", "7"]);
        c.args(["--macs-target", "0.3", "--arch-lr", "0.05", "--epochs", "2", "--steps-per-epoch", "5"]);
        c.args(["--eval-images", "32", "--quiet", "--out"]);
        let o = c.arg(&out).output().unwrap();
        let stdout = ok(&o);
        let json = std::fs::read_to_string(out.join("genotype.json")).unwrap();
        assert!(stdout.contains("\"widths\":["), "{algo}: {stdout}");
        let num = |key: &str| -> f64 {
            let v = json.split(&format!("\"{key}\":")).nth(1).unwrap_or_else(|| panic!("{key}: {json}"));
            v.split([',', '}']).next().unwrap().parse().unwrap()
        };
        assert!(num("macs") < num("full_macs"), "{algo}: {json}");
        // A warning exactly where the argmax widths land more than 10 % from
        // the target.
        let off = (num("macs") / num("full_macs") / 0.3 - 1.0).abs() > 0.1;
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(stderr.contains("warning: the argmax widths take"), off, "{algo}: {stderr}\n{json}");
        assert!(json.contains("\"softmax_alpha\":[["), "{json}");
        let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
        assert!(log.lines().all(|l| l.contains("\"softmax_alpha_width\":[[")), "{log}");
    }
}

/// Every epoch prints one summary line on stdout (losses, accuracies, α's
/// spread, time, ETA); the end says how far α moved, where the results are
/// and the next command; a search whose α barely moved warns in words (on
/// stderr and at the top of its report), one whose α moved does not.
#[test]
fn a_search_says_how_far_alpha_moved_and_what_to_run_next() {
    let still = tmp("alpha-still");
    let o = small_search(&still, "rarts", 2, 2).args(["--arch-lr", "1e-6"]).output().unwrap();
    let stdout = ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let epochs: Vec<&str> = stdout.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 2, "{stdout}");
    for (i, l) in epochs.iter().enumerate() {
        assert!(l.starts_with(&format!("epoch {}/2: loss ", i + 1)), "{l}");
        assert!(l.contains("max |softmax(α) − 1/8| 0.0") && l.contains("s/epoch, ETA"), "{l}");
    }
    assert!(stdout.contains("α moved: largest |softmax(α) − 1/8| = 0.0"), "{stdout}");
    assert!(stdout.contains(&format!("next: rarts train --genotype {}", still.display())), "{stdout}");
    assert!(stderr.contains("warning: α has hardly moved"), "{stderr}");
    let html = std::fs::read_to_string(still.join("report.html")).unwrap();
    assert!(html.contains("class=\"warning\"") && html.contains("decided by noise"), "the report warns too");
    let log = std::fs::read_to_string(still.join("log.jsonl")).unwrap();
    assert!(log.lines().all(|l| l.contains("\"alpha_spread\":0.0")), "{log}");

    let moved = tmp("alpha-moved");
    let o = small_search(&moved, "rarts", 1, 3).args(["--arch-lr", "0.3"]).output().unwrap();
    let stdout = ok(&o);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("hardly moved"), "{stdout}");
    let spread: f64 = stdout.split("α moved: largest |softmax(α) − 1/8| = ").nth(1).unwrap()[..6].parse().unwrap();
    assert!(spread >= 0.02, "{stdout}");
    let html = std::fs::read_to_string(moved.join("report.html")).unwrap();
    assert!(html.contains("class=\"spread\"") && !html.contains("class=\"warning\""));
}
