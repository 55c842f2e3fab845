//! Nothing a user types destroys work or lies: outputs that would overwrite
//! an input or a run's files are refused, the report writes only into run
//! folders and over its own pages, temp-file clean-up takes only rarts'
//! own names, and numbers that are not true end with an error instead.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::cli::{bin, fails_with, ok, small_search, tmp};

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A trained DARTS network (a few steps) in a fresh folder.
fn trained(name: &str) -> PathBuf {
    let out = tmp(name);
    let mut c = bin();
    c.args(["train", "--genotype", "DARTS_V2", "--c", "4", "--layers", "3", "--batch", "8", "--epochs", "1"]);
    ok(&c.args(["--steps-per-epoch", "2", "--eval-images", "16", "--quiet", "--out"]).arg(&out).output().unwrap());
    out
}

/// `eval --logits` and `--grads`, and `export --out`, onto the model, its
/// data or a run's file are refused naming both; the files are untouched.
/// A new file inside the model's folder is fine.
#[test]
fn outputs_onto_inputs_or_run_files_are_refused() {
    let tr = trained("out-onto-train");
    let model = tr.join("model.safetensors");
    let ck = tr.join("checkpoint.bin");
    let (m0, c0) = (read(&model), read(&ck));
    let eval = |extra: &[&str]| {
        let mut c = bin();
        c.args(["eval", "--model"]).arg(&tr).args(extra);
        c.output().unwrap()
    };
    fails_with(&eval(&["--logits", model.to_str().unwrap()]), &["--logits", "model.safetensors", "--model's file"]);
    fails_with(&eval(&["--logits", ck.to_str().unwrap()]), &["--logits", "checkpoint.bin", "a file of the rarts run"]);
    let data = tmp("out-onto-data");
    fs::create_dir_all(&data).unwrap();
    let bin_file = data.join("batch.bin");
    fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cifar10_test_first20.bin"), &bin_file).unwrap();
    let d0 = read(&bin_file);
    let spec = format!("cifar10:{}", bin_file.display());
    let mut c = bin();
    c.args(["eval", "--model"]).arg(&tr).args(["--data", &spec, "--logits"]).arg(&bin_file);
    fails_with(&c.output().unwrap(), &["--logits", "batch.bin", "--data"]);
    assert_eq!(read(&bin_file), d0);
    let mut c = bin();
    c.args(["export", "--model"]).arg(&tr).arg("--out").arg(&model);
    fails_with(&c.output().unwrap(), &["--out", "model.safetensors"]);
    let search = tmp("out-onto-search");
    ok(&small_search(&search, "rarts", 1, 1).output().unwrap());
    let s0 = read(&search.join("checkpoint.bin"));
    let mut c = bin();
    c.args(["export", "--model"]).arg(&search).arg("--out").arg(search.join("checkpoint.bin"));
    fails_with(&c.output().unwrap(), &["--out", "checkpoint.bin"]);
    assert_eq!(read(&search.join("checkpoint.bin")), s0);
    assert_eq!((read(&model), read(&ck)), (m0, c0), "a refused output changed the run");
    // Beside the run's files, a name of the user's own is written.
    let logits = tr.join("logits.jsonl");
    ok(&eval(&["--logits", logits.to_str().unwrap()]));
    assert!(read(&logits).starts_with(b"["));
}

/// `rarts report` refuses a folder no rarts run made (even with a
/// results.md or a one-line log.jsonl) and a report.html it did not write;
/// both are left as they were.
#[test]
fn report_writes_only_into_run_folders_over_its_own_page() {
    let mine = tmp("report-mine");
    fs::create_dir_all(&mine).unwrap();
    fs::write(mine.join("log.jsonl"), "{\"epoch\":0,\"loss_train\":1}\n").unwrap();
    fs::write(mine.join("results.md"), "# my notes\n").unwrap();
    fs::write(mine.join("report.html"), "<p>my own page</p>\n").unwrap();
    let o = bin().arg("report").arg(&mine).output().unwrap();
    fails_with(&o, &["report-mine", "not a folder a rarts run made"]);
    assert_eq!(read(&mine.join("report.html")), b"<p>my own page</p>\n");
    // A run's folder in which a user put a page of their own under that name.
    let run = tmp("report-run-own-page");
    ok(&small_search(&run, "rarts", 1, 1).arg("--no-report").output().unwrap());
    fs::write(run.join("report.html"), "<p>mine</p>\n").unwrap();
    fails_with(&bin().arg("report").arg(&run).output().unwrap(), &["report.html", "not a page rarts report wrote"]);
    assert_eq!(read(&run.join("report.html")), b"<p>mine</p>\n");
    // Its own page it rewrites.
    fs::remove_file(run.join("report.html")).unwrap();
    ok(&bin().arg("report").arg(&run).output().unwrap());
    ok(&bin().arg("report").arg(&run).output().unwrap());
}

/// A run's first start removes only temp files of rarts' exact pattern
/// (`.NAME.PID.N.tmp`); a user's files of similar names stay.
#[test]
fn temp_clean_up_takes_only_rarts_names() {
    let out = tmp("temp-names");
    fs::create_dir_all(&out).unwrap();
    let users = [".log.jsonl.old.tmp", ".report.html.tmp", ".checkpoint.bin.tmp", ".checkpoint.bin.1.x.tmp"];
    for f in users {
        fs::write(out.join(f), "keep").unwrap();
    }
    fs::write(out.join(".checkpoint.bin.999999.3.tmp"), "stale").unwrap();
    ok(&small_search(&out, "rarts", 1, 1).output().unwrap());
    for f in users {
        assert_eq!(read(&out.join(f)), b"keep", "{f} was removed");
    }
    assert!(!out.join(".checkpoint.bin.999999.3.tmp").exists(), "rarts' own stale temp file stays");
}

/// Numbers that are not true end with an error: an evaluation of a network
/// whose outputs are not finite (a training at lr 1e30), a toy model that
/// diverged; a cutout larger than the image and a batch larger than the
/// data are refused before anything runs.
#[test]
fn untrue_numbers_are_errors() {
    let out = tmp("lr-huge");
    let mut c = bin();
    c.args(["train", "--genotype", "DARTS_V2", "--c", "4", "--layers", "3", "--batch", "8", "--epochs", "1"]);
    c.args(["--steps-per-epoch", "1", "--lr", "1e30", "--eval-images", "16", "--quiet", "--out"]).arg(&out);
    fails_with(&c.output().unwrap(), &["output holds NaN", "lower --lr", "Nothing of this epoch was written"]);
    assert!(!out.join("checkpoint.bin").exists() && !out.join("model.safetensors").exists());

    let o = bin().args(["toy", "--algo", "darts2", "--xi", "1e30"]).output().unwrap();
    fails_with(&o, &["diverged", "--xi"]);
    assert!(String::from_utf8_lossy(&o.stdout).is_empty(), "no alpha printed for a diverged model");
    let o = bin().args(["toy", "--algo", "rarts", "--steps", "5"]).output().unwrap();
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no fixed point within --steps 5"));

    let mut c = bin();
    c.args(["train", "--genotype", "DARTS_V2", "--c", "4", "--layers", "3", "--batch", "8", "--cutout", "29"]);
    fails_with(&c.args(["--out"]).arg(tmp("cutout-big")).output().unwrap(), &["--cutout 29", "28×28"]);
    let mut c = bin();
    c.args(["train", "--genotype", "DARTS_V2", "--c", "4", "--layers", "3", "--batch", "5000", "--out"]);
    fails_with(&c.arg(tmp("batch-big")).output().unwrap(), &["--batch 5000", "2000 training images"]);
    let mut c = bin();
    c.args(["search", "--c", "4", "--layers", "3", "--batch", "5000", "--quiet", "--out"]).arg(tmp("search-batch-big"));
    fails_with(&c.output().unwrap(), &["--batch 5000", "needs at least 5000"]);
}

/// A negative number given as a separate argument is read as the flag's
/// value, and refused as negative by name.
#[test]
fn negative_values_are_read_as_numbers() {
    let o = small_search(&tmp("neg-lr"), "rarts", 1, 1).args(["--lr", "-0.1"]).output().unwrap();
    fails_with(&o, &["--lr -0.1", "positive"]);
    let o = bin().args(["toy", "--beta", "-1"]).output().unwrap();
    fails_with(&o, &["--beta -1"]);
}

/// Files that are not what they seem are named as what they are: a test
/// batch that is a dangling symlink or a symlink loop (not "no test
/// split"), a FIFO (without blocking), a character device, a /proc file; a
/// gzip bomb says so instead of filling the memory; a search folder given
/// where a trained model is expected says to export it first.
#[test]
fn odd_files_are_named_as_what_they_are() {
    let dir = tmp("odd-cifar");
    fs::create_dir_all(&dir).unwrap();
    let first20 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cifar10_test_first20.bin");
    for i in 1..=5 {
        fs::copy(&first20, dir.join(format!("data_batch_{i}.bin"))).unwrap();
    }
    let spec = format!("cifar10:{}", dir.display());
    let info = |spec: &str| bin().args(["info", "--data", spec]).output().unwrap();
    let test = dir.join("test_batch.bin");
    std::os::unix::fs::symlink("/nonexistent/test_batch.bin", &test).unwrap();
    fails_with(&info(&spec), &["test_batch.bin", "symbolic link that leads nowhere"]);
    fs::remove_file(&test).unwrap();
    std::os::unix::fs::symlink("test_batch.bin", &test).unwrap();
    fails_with(&info(&spec), &["test_batch.bin", "in a loop"]);
    fs::remove_file(&test).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(&test).status().unwrap().success());
    fails_with(&info(&spec), &["test_batch.bin", "a FIFO (named pipe)"]);
    fs::remove_file(&test).unwrap();
    fails_with(&info("cifar10:/dev/zero"), &["/dev/zero", "a character device"]);
    fails_with(&info("cifar10:/proc/self/status"), &["/proc/self/status", "/proc"]);

    // 64 MiB of zeros in a 64 kB gzip stream, against a bound of a few MB.
    let gz = tmp("odd-gzip");
    fs::create_dir_all(&gz).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &vec![0u8; 64 << 20]).unwrap();
    let bomb = enc.finish().unwrap();
    let e = rarts::data::idx::gunzip_checked(&bomb, "bomb.gz", 4 << 20).unwrap_err().to_string();
    assert!(e.contains("bomb.gz") && e.contains("gzip bomb"), "{e}");

    let search = tmp("odd-search-as-model");
    ok(&small_search(&search, "rarts", 1, 1).output().unwrap());
    let o = bin().args(["eval", "--model"]).arg(&search).output().unwrap();
    fails_with(&o, &["a search's folder", "rarts export --model"]);
}

/// `rarts report` on malformed logs ends with an error naming the file and
/// the line: an α row of the wrong length, a 100,000-wide row, 50,000 nested
/// brackets (no stack overflow), a line that is not JSON in the middle.
#[test]
fn report_on_malformed_logs_names_the_file_and_line() {
    let run = tmp("report-malformed");
    ok(&small_search(&run, "rarts", 1, 2).output().unwrap());
    let alpha = run.join("alpha.jsonl");
    let good = fs::read_to_string(&alpha).unwrap();
    let first = good.lines().next().unwrap().to_string();
    let row = first.split("\"softmax_alpha_normal\":[[").nth(1).unwrap().split(']').next().unwrap().to_string();
    let report = || bin().arg("report").arg(&run).output().unwrap();
    let short: Vec<&str> = row.split(',').take(5).collect();
    fs::write(&alpha, format!("{}\n{good}", first.replacen(&row, &short.join(","), 1))).unwrap();
    fails_with(&report(), &["alpha.jsonl (entry 1)", "softmax_alpha_normal", "a row of 5 values; expected 8"]);
    let wide = vec!["0.1"; 100_000].join(",");
    fs::write(&alpha, format!("{}\n{good}", first.replacen(&row, &wide, 1))).unwrap();
    fails_with(&report(), &["alpha.jsonl (entry 1)", "a row of 100000 values"]);
    fs::write(&alpha, format!("{{\"a\":{}{}}}\n{good}", "[".repeat(50_000), "]".repeat(50_000))).unwrap();
    fails_with(&report(), &["alpha.jsonl:1:", "nested more than"]);
    fs::write(&alpha, format!("{first}\nnot json\n{good}")).unwrap();
    fails_with(&report(), &["alpha.jsonl:2:", "expected one JSON object per line"]);
    fs::write(&alpha, &good).unwrap();
    ok(&report());
}

/// A preset that follows CIFAR-10's protocol refuses data of another size,
/// in whatever format they come.
#[test]
fn cifar_presets_check_their_data() {
    for (space, preset) in [("nb201", "paper"), ("darts", "paper"), ("nb201", "cifar-cpu")] {
        let mut c = bin();
        c.args(["compare", "--space", space, "--preset", preset, "--data", "embedded", "--out"]);
        let out = tmp(&format!("cifar-preset-{space}-{preset}"));
        fails_with(&c.arg(&out).output().unwrap(), &[preset, "1×28×28", "3×32×32"]);
        assert!(!out.exists(), "{preset}: nothing written");
    }
}

/// Sizes that cannot fit are refused before anything is recorded or
/// allocated (at once, not after minutes or a kill by the kernel), also under
/// an address-space limit (`ulimit -v`).
#[test]
fn training_sizes_that_cannot_fit_are_refused_before_allocating() {
    for args in [
        vec!["--genotype", "DARTS_V2", "--layers", "1000000"],
        vec!["--space", "nb201", "--genotype", "random:1", "--cells-per-stage", "1000000"],
        vec!["--space", "width", "--genotype", "full", "--depth", "6000002"],
    ] {
        let t = std::time::Instant::now();
        let o = bin().arg("train").args(&args).arg("--out").arg(tmp("train-too-big")).output().unwrap();
        fails_with(&o, &["GiB", "memory is available", "a lower bound"]);
        assert!(t.elapsed().as_secs() < 20, "{args:?}: refused only after {:?}", t.elapsed());
    }
    let o = bin().args(["bench-train", "--layers", "1000000", "--batches", "32"]).output().unwrap();
    fails_with(&o, &["GiB", "a lower bound"]);
    // 4 GB of address space: a plan of some tens of GB is refused by name.
    let exe = env!("CARGO_BIN_EXE_rarts");
    let out = tmp("train-ulimit");
    let script = format!(
        "ulimit -v 4000000; exec {exe} --device cpu train --genotype DARTS_V2 --c 64 --batch 256 --out {}",
        out.display()
    );
    let o = std::process::Command::new("sh").args(["-c", &script]).output().unwrap();
    fails_with(&o, &["GiB", "memory is available"]);
}

/// The flag blamed for a divergence is the one that caused it: DARTS'
/// second order with a huge ξ names --xi first.
#[test]
fn a_divergence_names_the_flag_that_caused_it() {
    let o = small_search(&tmp("xi-huge"), "darts2", 1, 3).args(["--xi", "1e30"]).output().unwrap();
    let e = fails_with(&o, &["lower --xi (now 1e30)"]);
    assert_eq!(e.matches("--xi").count(), 1, "named once: {e}");
}

/// A native model file with a tensor its network does not have is refused
/// (as files in DARTS' layout are), naming the tensor.
#[test]
fn a_model_file_with_an_extra_tensor_is_refused() {
    let tr = trained("extra-tensor");
    let path = tr.join("model.safetensors");
    let bytes = read(&path);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let extra = vec![0u8; 16];
    let mut tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        st.tensors().into_iter().map(|(n, v)| (n.to_string(), v)).collect();
    tensors.push((
        "cells.9.stray".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &extra).unwrap(),
    ));
    let out = safetensors::serialize(tensors, meta.metadata().clone()).unwrap();
    let copy = tmp("extra-tensor-copy");
    fs::create_dir_all(&copy).unwrap();
    fs::write(copy.join("model.safetensors"), out).unwrap();
    let o = bin().args(["eval", "--model"]).arg(copy.join("model.safetensors")).output().unwrap();
    fails_with(&o, &["cells.9.stray", "does not have"]);
}

/// Model files list their metadata in sorted order whatever the process,
/// each pair moved whole (escaped quotes, commas and braces in values
/// included), so a file written twice from the same state is the same bytes.
#[test]
fn model_metadata_is_written_in_a_fixed_order() {
    let mut meta = std::collections::HashMap::new();
    for (k, v) in [("zeta", "a \"quoted\", {braced} value"), ("alpha", "1"), ("mid\\dle", "x\ny"), ("b", "")] {
        meta.insert(k.to_string(), v.to_string());
    }
    let data = vec![0u8; 8];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    let bytes = safetensors::serialize(vec![("t", view)], Some(meta.clone())).unwrap();
    let sorted = rarts::model::sort_metadata(bytes.clone()).unwrap();
    assert_eq!(sorted.len(), bytes.len());
    let (_, m) = safetensors::SafeTensors::read_metadata(&sorted).unwrap();
    assert_eq!(m.metadata().as_ref().unwrap(), &meta, "the same pairs");
    let n = u64::from_le_bytes(sorted[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&sorted[8..8 + n]).unwrap();
    let at = |k: &str| header.find(&format!("\"{k}\":")).unwrap();
    assert!(at("alpha") < at("b") && at("b") < at("mid\\\\dle") && at("mid\\\\dle") < at("zeta"), "{header}");
    let st = safetensors::SafeTensors::deserialize(&sorted).unwrap();
    assert_eq!(st.tensor("t").unwrap().data(), &data[..]);
}

/// `bench` and `profile` time steps: flags they would ignore (an output
/// folder, resuming, epochs, evaluation) are not offered, and given, are
/// refused by name instead of being silently dropped.
#[test]
fn flags_a_command_ignores_are_not_offered() {
    for cmd in ["bench", "profile"] {
        let help = String::from_utf8(bin().args([cmd, "--help"]).output().unwrap().stdout).unwrap();
        for flag in ["--out", "--resume", "--force", "--epochs", "--eval-images", "--lr-min", "--nb201-table"] {
            assert!(!help.contains(&format!("{flag} ")), "{cmd} --help offers {flag}");
        }
        let o = bin().args([cmd, "--epochs", "3"]).output().unwrap();
        fails_with(&o, &["--epochs"]);
    }
    let help = String::from_utf8(bin().args(["search", "--help"]).output().unwrap().stdout).unwrap();
    for flag in ["--out", "--resume", "--force", "--epochs", "--eval-images", "--nb201-table", "--arch-lr"] {
        assert!(help.contains(flag), "search --help lacks {flag}");
    }
}

/// Text from files cannot drive the terminal: a class folder whose name
/// holds an escape sequence is printed with the control character escaped.
#[test]
fn bytes_from_files_are_escaped_before_the_terminal() {
    let data = tmp("escape-classes");
    for class in ["plain", "red\u{1b}[31mclass"] {
        let dir = data.join("train").join(class);
        fs::create_dir_all(&dir).unwrap();
        image::RgbImage::new(4, 4).save(dir.join("a.png")).unwrap();
    }
    let info = || {
        let spec = format!("folder:{}", data.display());
        bin().args(["info", "--data", &spec]).env("RARTS_CACHE_DIR", "none").output().unwrap()
    };
    let stdout = ok(&info());
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(stdout.contains("red\\u{1b}[31mclass"), "{stdout}");
    // In an error, too.
    fs::write(data.join("train").join("red\u{1b}[31mclass").join("b.png"), "not an image").unwrap();
    let stderr = fails_with(&info(), &["b.png", "not a decodable image"]);
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

/// `eval` of a model whose (finite, huge) weights give non-finite outputs
/// ends with an error instead of printing an accuracy.
#[test]
fn eval_of_a_model_with_non_finite_outputs_is_an_error() {
    let tr = trained("nan-weights");
    let bytes = read(&tr.join("model.safetensors"));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let huge: Vec<u8> = std::iter::repeat_n(f32::MAX.to_le_bytes(), 1 << 16).flatten().collect();
    let mut poisoned = false;
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            if !poisoned && n.contains("classifier") && n.ends_with("weight") {
                poisoned = true;
                let len = v.data().len();
                let view = safetensors::tensor::TensorView::new(v.dtype(), v.shape().to_vec(), &huge[..len]).unwrap();
                return (n.to_string(), view);
            }
            (n.to_string(), v)
        })
        .collect();
    assert!(poisoned, "no classifier weight found");
    let out = tmp("nan-weights-copy");
    fs::create_dir_all(&out).unwrap();
    let file = out.join("model.safetensors");
    fs::write(&file, safetensors::serialize(tensors, meta.metadata().clone()).unwrap()).unwrap();
    let o = bin().args(["eval", "--model"]).arg(&file).output().unwrap();
    let e = fails_with(&o, &["output holds", "no accuracy"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("top-1"), "{e}");
}
