//! `rarts train` end to end on the embedded data: a few steps that learn,
//! a genotype read from a search's folder, resume after a kill ending where
//! an uninterrupted run ends, and clear errors.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::cli::{bin, fails_with, kill_after_first_checkpoint, ok, small_search, tmp};
use rarts::checkpoint::Checkpoint;

/// A network small enough for CI: C=4, 3 cells, batches of 16.
fn small_train(out: &Path, genotype: &str, epochs: usize, steps: usize) -> Command {
    let mut c = bin();
    c.args(["train", "--genotype", genotype, "--c", "4", "--layers", "3", "--batch", "16", "--cutout", "8"]);
    c.args(["--epochs", &epochs.to_string(), "--steps-per-epoch", &steps.to_string()]);
    c.args(["--eval-images", "100", "--quiet", "--out"]).arg(out);
    c.args(["--drop-path", "0.2"]);
    c
}

fn field(line: &str, key: &str) -> f64 {
    let v = line.split(&format!("\"{key}\":")).nth(1).unwrap_or_else(|| panic!("no {key} in {line}"));
    v.split([',', '}']).next().unwrap().parse().unwrap_or_else(|_| panic!("{key} in {line}"))
}

#[test]
fn training_a_built_in_genotype_learns_and_logs_every_epoch() {
    let out = tmp("train-v2");
    let stdout = ok(&small_train(&out, "DARTS_V2", 3, 15).output().unwrap());
    assert!(stdout.contains("weights: "), "{stdout}");
    assert!(stdout.contains("test accuracy: "), "{stdout}");
    let log = fs::read_to_string(out.join("log.jsonl")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3);
    for key in ["lr", "loss_train", "acc_train", "loss_test", "acc_test", "drop_prob", "epoch_s"] {
        assert!(field(lines[0], key).is_finite(), "{key}");
    }
    assert!(field(lines[2], "loss_train") < field(lines[0], "loss_train"), "{log}");
    // Fashion-MNIST has 10 classes: well past chance after 45 steps.
    assert!(field(lines[2], "acc_test") > 0.3, "{log}");
    assert!(field(lines[1], "lr") < field(lines[0], "lr"), "cosine schedule");
}

#[test]
fn a_genotype_is_read_from_a_search_folder() {
    let search = tmp("train-from-search");
    ok(&small_search(&search, "rarts", 1, 2).output().unwrap());
    let out = tmp("train-from-search-out");
    ok(&small_train(&out, search.to_str().unwrap(), 1, 2).output().unwrap());
    ok(&small_train(&tmp("train-from-txt"), search.join("genotype.txt").to_str().unwrap(), 1, 1).output().unwrap());
    let o = small_train(&tmp("train-bad"), "/nonexistent/run", 1, 1).output().unwrap();
    fails_with(&o, &["--genotype", "/nonexistent/run"]);
    let o = small_train(&tmp("train-bad2"), "Genotype(normal=[('conv_9x9', 0)])", 1, 1).output().unwrap();
    fails_with(&o, &["--genotype"]);
}

#[test]
fn training_killed_and_resumed_ends_like_an_uninterrupted_run() {
    let full = tmp("train-full");
    ok(&small_train(&full, "random:3", 3, 4).output().unwrap());
    let cut = tmp("train-cut");
    kill_after_first_checkpoint(small_train(&cut, "random:3", 3, 4), &cut);
    fails_with(&small_train(&cut, "random:3", 3, 4).output().unwrap(), &["already holds a run", "--resume"]);
    ok(&small_train(&cut, "random:3", 3, 4).arg("--resume").output().unwrap());
    let (a, b) = (
        Checkpoint::load(&full.join("checkpoint.bin")).unwrap(),
        Checkpoint::load(&cut.join("checkpoint.bin")).unwrap(),
    );
    assert!(a.tensors == b.tensors, "the resumed run's weights differ from the uninterrupted run's");
    let diff = rarts::run_record::run_differences(&full, &cut).unwrap();
    assert!(diff.is_empty(), "the resumed training differs (model.safetensors included): {diff:?}");
    let losses = |d: &Path| -> Vec<(f64, f64)> {
        let log = fs::read_to_string(d.join("log.jsonl")).unwrap();
        log.lines().map(|l| (field(l, "loss_train"), field(l, "acc_test"))).collect()
    };
    assert_eq!(losses(&full), losses(&cut));
    let mut c = small_train(&cut, "random:3", 3, 4);
    c.args(["--lr", "0.1", "--resume"]);
    fails_with(&c.output().unwrap(), &["other settings", "--lr: 0.025 in the checkpoint, 0.1 now"]);
}

#[test]
fn the_auxiliary_head_needs_an_8x8_map_and_trains_on_32x32_images() {
    let o = small_train(&tmp("aux-28"), "DARTS_V2", 1, 1).arg("--auxiliary").output().unwrap();
    fails_with(&o, &["--auxiliary", "8×8", "7×7"]);
    let out = tmp("aux-32");
    let mut c = bin();
    c.args(["train", "--genotype", "DARTS_V2", "--c", "4", "--layers", "6", "--batch", "8", "--auxiliary"]);
    c.args(["--data", "synthetic:64:32", "--epochs", "2", "--steps-per-epoch", "2", "--eval-images", "16"]);
    c.args(["--quiet", "--out"]).arg(&out);
    ok(&c.output().unwrap());
    let log = fs::read_to_string(out.join("log.jsonl")).unwrap();
    assert_eq!(field(log.lines().nth(1).unwrap(), "drop_prob"), 0.1, "p·epoch/epochs with p = 0.2");
}

#[test]
fn eval_prints_a_per_class_table_and_refuses_what_does_not_fit() {
    let out = tmp("eval");
    ok(&small_train(&out, "DARTS_V2", 1, 6).output().unwrap());
    let stdout = ok(&bin().args(["eval", "--data", "embedded", "--model"]).arg(&out).output().unwrap());
    let seen = stdout.lines().find(|l| l.starts_with("data: ")).expect("data line");
    assert!(seen.contains("test split, 500 images"), "{seen}");
    // One row per class, and the rows add up to the whole test split.
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("class"))
        .skip(1)
        .take(10)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let images: usize = rows.iter().map(|r| r[r.len() - 2].parse::<usize>().unwrap()).sum();
    assert_eq!(images, 500, "{stdout}");
    for class in ["T-shirt/top", "Ankle boot"] {
        assert!(stdout.contains(class), "per-class table lacks {class}: {stdout}");
    }
    // CIFAR images (3×32×32) do not fit a Fashion-MNIST model (1×28×28).
    let cifar = format!("cifar10:{}/tests/data/cifar10_test_first20.bin", env!("CARGO_MANIFEST_DIR"));
    let o = bin().args(["eval", "--data", &cifar, "--model"]).arg(&out).output().unwrap();
    fails_with(&o, &["3×32×32", "1×28×28"]);
    // A damaged model file says so.
    let model = out.join("model.safetensors");
    let bytes = fs::read(&model).unwrap();
    fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(&bin().args(["eval", "--model"]).arg(&model).output().unwrap(), &["model.safetensors"]);
    fails_with(&bin().args(["eval", "--model", "/nonexistent/m"]).output().unwrap(), &["--model", "/nonexistent/m"]);
}

#[test]
fn eval_matches_the_accuracy_logged_on_the_same_images() {
    let out = tmp("eval-same");
    let mut c = bin();
    c.args(["train", "--genotype", "random:5", "--c", "4", "--layers", "3", "--batch", "16", "--epochs", "1"]);
    c.args(["--steps-per-epoch", "8", "--quiet", "--drop-path", "0.2", "--out"]).arg(&out);
    ok(&c.output().unwrap());
    let log = fs::read_to_string(out.join("log.jsonl")).unwrap();
    let logged = field(log.lines().last().unwrap(), "acc_test");
    let stdout = ok(&bin().args(["eval", "--model"]).arg(&out).output().unwrap());
    let top1: f64 = stdout.lines().find_map(|l| l.strip_prefix("top-1: ")).unwrap().parse().unwrap();
    assert!((top1 - logged).abs() < 1e-4, "eval {top1}, training log {logged}\n{stdout}");
}

#[test]
fn bench_train_times_each_batch_size() {
    let o = bin()
        .args([
            "bench-train",
            "--c",
            "4",
            "--layers",
            "3",
            "--hw",
            "8",
            "--in-ch",
            "1",
            "--batches",
            "2,4",
            "--steps",
            "1",
        ])
        .output()
        .unwrap();
    let stdout = ok(&o);
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for (row, batch) in rows.iter().zip([2, 4]) {
        assert!(row.starts_with(&format!("{{\"batch\":{batch},")), "{row}");
        assert!(field(row, "ms_per_step") > 0.0, "{row}");
    }
    fails_with(&bin().args(["bench-train", "--steps", "0"]).output().unwrap(), &["--steps", "at least 1"]);
}

#[test]
fn compare_runs_every_method_and_seed_then_skips_what_is_done() {
    let out = tmp("compare");
    let run = || bin().args(["compare", "--preset", "smoke", "--out"]).arg(&out).output().unwrap();
    let first = run();
    let stdout = ok(&first);
    for method in ["| rarts |", "| darts1 |", "| darts2 |", "| random |"] {
        assert!(stdout.contains(method), "{method} missing: {stdout}");
    }
    assert!(stdout.contains("RARTS / DARTS second order"), "{stdout}");
    assert!(stdout.contains("--arch-lr"), "settings listed: {stdout}");
    let md = fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.starts_with("# rarts compare --space darts --preset smoke") && stdout.ends_with(&md), "{stdout}");
    for job in ["search-rarts-s0", "search-darts2-s1", "train-random-s1", "train-darts1-s0"] {
        assert!(out.join(job).is_dir(), "{job} missing");
    }
    // Done jobs are skipped: nothing is run again.
    let again = run();
    let stderr = String::from_utf8_lossy(&again.stderr);
    ok(&again);
    assert!(!stderr.contains("compare: search") && !stderr.contains("compare: train"), "{stderr}");
    fails_with(&bin().args(["compare", "--preset", "huge"]).output().unwrap(), &["--preset huge", "small"]);
    fails_with(&bin().args(["compare", "--preset", "paper"]).output().unwrap(), &["--preset paper", "cifar10"]);
}

/// An NB201 cell from a search's folder trained with NATS-Bench's recipe
/// (Nesterov SGD) learns; its model file says it is an NB201 network and
/// `rarts eval` rebuilds and scores it; the recipe's flags apply, DARTS'
/// extras are refused.
#[test]
fn an_nb201_cell_trains_and_evaluates() {
    let search = tmp("nb201-train-search");
    let mut c = bin();
    c.args(["search", "--space", "nb201", "--algo", "rarts", "--c", "4", "--cells-per-stage", "1", "--batch", "8"]);
    c.args(["--epochs", "1", "--steps-per-epoch", "2", "--eval-images", "0", "--quiet", "--out"]).arg(&search);
    ok(&c.output().unwrap());
    let out = tmp("nb201-train");
    let train = |out: &Path, genotype: &str, extra: &[&str]| {
        let mut c = bin();
        c.args(["train", "--space", "nb201", "--genotype", genotype, "--c", "4", "--cells-per-stage", "1"]);
        c.args(["--batch", "32", "--lr", "0.05", "--eval-images", "200"]);
        c.args(if extra.is_empty() { &["--epochs", "3", "--steps-per-epoch", "15"][..] } else { extra });
        c.args(["--quiet", "--out"]).arg(out);
        c.output().unwrap()
    };
    let stdout = ok(&train(&out, search.to_str().unwrap(), &[]));
    assert!(stdout.contains("test accuracy: "), "{stdout}");
    let log = fs::read_to_string(out.join("log.jsonl")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(field(lines[2], "loss_train") < field(lines[0], "loss_train"), "{log}");
    let cell = fs::read_to_string(search.join("genotype.txt")).unwrap();
    let eval = ok(&bin().args(["eval", "--model"]).arg(&out).output().unwrap());
    assert!(eval.contains(&format!("genotype: {}", cell.trim())), "{eval}");
    assert!(eval.contains("cells per stage") && eval.contains("top-1: "), "{eval}");
    // An inline string and a random cell train too; a bad string and DARTS' extras are refused.
    ok(&train(
        &tmp("nb201-inline"),
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
        &["--epochs", "1", "--steps-per-epoch", "1"],
    ));
    ok(&train(&tmp("nb201-random"), "random:3", &["--epochs", "1", "--steps-per-epoch", "1"]));
    // A cell whose output does not depend on its input (node 1 has only a
    // `none` edge) trains as in NATS-Bench: what lies before it gets zero
    // gradients, with a warning that it will score chance.
    let cut = "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|";
    let o = train(&tmp("nb201-cut"), cut, &["--epochs", "1", "--steps-per-epoch", "2"]);
    ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning: --genotype |none~0|") && stderr.contains("does not depend on the image"),
        "{stderr}"
    );
    let o = train(
        &tmp("nb201-through"),
        "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|",
        &["--epochs", "1", "--steps-per-epoch", "1"],
    );
    ok(&o);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("warning"));
    fails_with(
        &train(&tmp("nb201-bad"), "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", &[]),
        &["--genotype", "unknown op 'conv'"],
    );
    fails_with(&train(&tmp("nb201-dp"), "random:1", &["--drop-path", "0.2"]), &["--drop-path", "NB201"]);
}

/// The NB201 comparison runs every method and seed: cell strings, their
/// edges per op, the α spread over 1/5.
#[test]
fn compare_in_nb201_lists_cells_and_their_skips() {
    let out = tmp("compare-nb201");
    let o = bin().args(["compare", "--space", "nb201", "--preset", "smoke", "--out"]).arg(&out).output().unwrap();
    ok(&o);
    let stdout = fs::read_to_string(out.join("results.md")).unwrap();
    assert!(stdout.starts_with("# rarts compare --space nb201 --preset smoke"), "{stdout}");
    for method in ["| rarts |", "| darts1 |", "| darts2 |", "| random |"] {
        assert!(stdout.contains(method), "{method} missing: {stdout}");
    }
    assert!(
        stdout.contains("1/5")
            && stdout.contains("edges by op, none / skip_connect / nor_conv_1x1 / nor_conv_3x3 / avg_pool_3x3"),
        "{stdout}"
    );
    assert!(stdout.contains("## Cells") && stdout.contains("- random, seed 1: `|"), "{stdout}");
    assert!(stdout.contains("`--space nb201`") && stdout.contains("`--nesterov true`"), "settings listed: {stdout}");
}

/// A width search's result retrains (He et al.'s recipe at a short
/// schedule) and evaluates; `full` and `uniform:F` widths train too.
#[test]
fn found_widths_train_and_evaluate() {
    let search = tmp("width-train-search");
    let mut c = bin();
    c.args(["search", "--space", "width", "--depth", "8", "--batch", "8", "--epochs", "1", "--steps-per-epoch", "2"]);
    c.args(["--eval-images", "0", "--quiet", "--out"]).arg(&search);
    ok(&c.output().unwrap());
    let train = |out: &Path, widths: &str| {
        let mut c = bin();
        c.args(["train", "--space", "width", "--widths", widths, "--depth", "8", "--batch", "32", "--lr", "0.05"]);
        c.args(["--epochs", "2", "--steps-per-epoch", "10", "--eval-images", "100", "--quiet", "--out"]).arg(out);
        c.output().unwrap()
    };
    let out = tmp("width-train");
    let stdout = ok(&train(&out, search.to_str().unwrap()));
    assert!(stdout.contains("test accuracy: "), "{stdout}");
    let eval = ok(&bin().args(["eval", "--model"]).arg(&out).output().unwrap());
    assert!(eval.contains("ResNet-8") && eval.contains("\"widths\":[") && eval.contains("top-1: "), "{eval}");
    ok(&train(&tmp("width-full"), "full"));
    ok(&train(&tmp("width-half"), "uniform:0.5"));
    fails_with(&train(&tmp("width-bad"), "uniform:7"), &["--widths", "fraction in (0, 1]"]);
}

/// `--init-from`: the same network continues from a trained model's
/// weights (its test accuracy after a step at a tiny rate is the model's);
/// a narrower width network starts L1-pruned from a wider one; a model that
/// does not fit is refused, naming the flag.
#[test]
fn training_starts_from_a_trained_model() {
    let train = |out: &Path, widths: &str, extra: &[&str]| {
        let mut c = bin();
        c.args(["train", "--space", "width", "--widths", widths, "--depth", "8", "--batch", "32"]);
        c.args(["--eval-images", "200", "--quiet", "--out"]).arg(out).args(extra);
        c.output().unwrap()
    };
    let acc = |out: &Path| {
        let log = fs::read_to_string(out.join("log.jsonl")).unwrap();
        field(log.lines().last().unwrap(), "acc_test")
    };
    let full = tmp("init-full");
    ok(&train(&full, "full", &["--epochs", "2", "--steps-per-epoch", "30", "--lr", "0.05"]));
    let base = acc(&full);
    assert!(base > 0.4, "the full network learned: {base}");
    let same = tmp("init-same");
    let from = full.to_str().unwrap();
    ok(&train(&same, "full", &["--epochs", "1", "--steps-per-epoch", "1", "--lr", "1e-9", "--init-from", from]));
    // The weights are the trained ones (a step at 1e-9 moves them by less
    // than 1e-6); the BN running statistics took one batch more.
    let (a, b) = (rarts::model::Model::load(&full).unwrap(), rarts::model::Model::load(&same).unwrap());
    for name in ["conv1", "layer2.0.conv1", "layer3.0.bn1.weight", "linear.weight"] {
        let (x, y) = (a.tensor(name).unwrap().1, b.tensor(name).unwrap().1);
        assert!(x.iter().zip(&y).all(|(p, q)| (p - q).abs() < 1e-6), "{name} moved");
    }
    assert!((acc(&same) - base).abs() <= 0.1, "continued {} vs trained {base}", acc(&same));
    let pruned = tmp("init-pruned");
    ok(&train(
        &pruned,
        "uniform:0.75",
        &["--epochs", "1", "--steps-per-epoch", "5", "--lr", "0.01", "--init-from", from],
    ));
    let fresh = tmp("init-fresh");
    ok(&train(&fresh, "uniform:0.75", &["--epochs", "1", "--steps-per-epoch", "5", "--lr", "0.01"]));
    assert!(acc(&pruned) > acc(&fresh) + 0.1, "pruned from trained {} vs from scratch {}", acc(&pruned), acc(&fresh));
    let short = ["--epochs", "1", "--steps-per-epoch", "1"];
    // Wider than the model.
    let o = train(&tmp("init-wider"), "full", &[&short[..], &["--init-from", pruned.to_str().unwrap()]].concat());
    fails_with(&o, &["--init-from", "fewer than"]);
    // Another depth, another space, no model.
    let mut c = bin();
    c.args(["train", "--space", "width", "--widths", "full", "--depth", "14", "--quiet", "--out"]);
    let o = c.arg(tmp("init-depth")).args(short).args(["--init-from", from]).output().unwrap();
    fails_with(&o, &["--init-from", "expected the one being trained"]);
    let o = small_train(&tmp("init-space"), "DARTS_V2", 1, 1).args(["--init-from", from]).output().unwrap();
    fails_with(&o, &["--init-from", "width"]);
    let o = train(&tmp("init-none"), "full", &[&short[..], &["--init-from", "/nonexistent/model"]].concat());
    fails_with(&o, &["--init-from /nonexistent/model"]);
}

/// The width comparison runs every method and seed and reports each one's
/// accuracy, weights and multiply-adds against the target; a second run
/// only reads what is done.
#[test]
fn compare_in_width_prunes_and_scales_at_the_target() {
    let out = tmp("compare-width");
    let run = || bin().args(["compare", "--space", "width", "--preset", "smoke", "--out"]).arg(&out).output().unwrap();
    ok(&run());
    let md = fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.starts_with("# rarts compare --space width --preset smoke"), "{md}");
    for method in ["| full |", "| rarts |", "| darts1 |", "| rarts expected |", "| darts1 expected |", "| uniform |"] {
        assert!(md.contains(method), "{method} missing: {md}");
    }
    assert!(md.contains("| l1-prune |") && md.contains("- darts1 expected widths, seed 1: "), "{md}");
    // The expected widths are those the search's genotype.json records.
    let json = fs::read_to_string(out.join("search-rarts-s0/genotype.json")).unwrap();
    let expected = json.split("\"widths_expected\":").nth(1).unwrap().split(']').next().unwrap().replace(' ', "");
    let listed = md.split("- rarts expected, seed 0: `").nth(1).unwrap().split('`').next().unwrap().replace(' ', "");
    assert_eq!(listed, format!("{expected}]"), "{md}");
    assert!(md.contains("ResNet-8") && md.contains("Target: 50 %") && md.contains("from the target"), "{md}");
    assert!(md.contains("- l1-prune, seed 1: `[") && md.contains("Fine-tuning after L1 pruning"), "{md}");
    // A network another row of the same seed trained is not trained again:
    // the rows repeat one result, and only the first has a folder.
    let widths = |method: &str, seed: &str| {
        let at = format!("- {method}, seed {seed}: `");
        md.split(&at).nth(1).unwrap_or_else(|| panic!("{at} missing: {md}")).split('`').next().unwrap().to_string()
    };
    let row = |method: &str| md.lines().find(|l| l.starts_with(&format!("| {method} |"))).unwrap().to_string();
    let shared: Vec<&str> = md.lines().filter(|l| l.contains(": the widths of ")).collect();
    assert!(!shared.is_empty(), "both searches pick the same widths at this size: {md}");
    for line in shared {
        let (method, rest) = line.trim_start_matches("- ").split_once(", seed ").unwrap();
        let (seed, first) = rest.split_once(": the widths of ").unwrap();
        assert_eq!(widths(method, seed), widths(first, seed), "{line}");
        assert!(!out.join(format!("train-{}-s{seed}", method.replace(' ', "-"))).exists(), "{line}");
        assert!(out.join(format!("train-{}-s{seed}", first.replace(' ', "-"))).exists(), "{line}");
        let i: usize = seed.parse().unwrap();
        let per_seed = |r: &str| r.split(" | ").nth(2).unwrap().split(", ").nth(i).unwrap().to_string();
        assert_eq!(per_seed(&row(method)), per_seed(&row(first)), "{line}");
    }
    for seed in [0, 1] {
        let log = fs::read_to_string(out.join(format!("finetune-l1-prune-s{seed}/log.jsonl"))).unwrap();
        assert_eq!(log.lines().count(), 1);
    }
    let o = run();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    ok(&o);
    assert!(!stderr.contains("compare: search") && !stderr.contains("compare: train"), "{stderr}");
    // The same table from the finished jobs (after the date line).
    let again = fs::read_to_string(out.join("results.md")).unwrap();
    assert_eq!(again.lines().skip(3).collect::<Vec<_>>(), md.lines().skip(3).collect::<Vec<_>>());
}
