//! `rarts export` writes a trained DARTS network under quark0/darts' names
//! and shapes; `rarts eval` reads such a file back (as PyTorch would write
//! it) and scores it exactly as the original; a missing, extra or
//! misshapen tensor is named. (The PyTorch side is
//! scripts/crosscheck-torch.py.)

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use common::cli::{bin, fails_with, ok, tmp};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

fn train(out: &Path, genotype: &str, extra: &[&str]) {
    let mut c = bin();
    c.args(["train", "--genotype", genotype, "--c", "4", "--layers", "5", "--batch", "16", "--epochs", "2"]);
    ok(&c
        .args(["--steps-per-epoch", "3", "--eval-images", "100", "--quiet", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap());
}

fn eval(model: &Path, extra: &[&str]) -> std::process::Output {
    bin().args(["eval", "--model"]).arg(model).args(extra).output().unwrap()
}

/// A tensor of a safetensors file: name, dtype, shape, bytes.
type Raw = (String, Dtype, Vec<usize>, Vec<u8>);

/// Every tensor of a safetensors file.
fn tensors(path: &Path) -> Vec<Raw> {
    let bytes = fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<_> =
        st.tensors().into_iter().map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Writes `t` as a safetensors file with `meta`.
fn write(path: &Path, t: &[Raw], meta: Option<HashMap<String, String>>) {
    let views: Vec<(&str, TensorView<'_>)> =
        t.iter().map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    fs::write(path, safetensors::serialize(views, meta).unwrap()).unwrap();
}

#[test]
fn exported_weights_carry_darts_names_and_score_the_same() {
    let dir = tmp("export-train");
    train(&dir, "DARTS_V2", &[]);
    let file = dir.with_extension("safetensors");
    let stdout = ok(&bin().args(["export", "--model"]).arg(&dir).arg("--out").arg(&file).output().unwrap());
    assert!(stdout.contains("tensors"), "{stdout}");
    let t = tensors(&file);
    let names: Vec<&str> = t.iter().map(|x| x.0.as_str()).collect();
    let shape = |n: &str| t.iter().find(|x| x.0 == n).unwrap_or_else(|| panic!("no {n}: {names:?}")).2.clone();
    // C = 4: the stem makes 12 channels of the 1-channel Fashion-MNIST images.
    assert_eq!(shape("stem.0.weight"), vec![12, 1, 3, 3]);
    assert_eq!(shape("stem.1.running_var"), vec![12]);
    assert_eq!(shape("classifier.weight"), vec![10, 64]);
    // DARTS_V2: cell 0's gene 0 is sep_conv_3x3, gene 7 dil_conv_3x3; cell 1
    // is a reduction, so cell 2 starts with a FactorizedReduce.
    for n in [
        "cells.0.preprocess0.op.1.weight",
        "cells.0.preprocess0.op.2.running_mean",
        "cells.0._ops.0.op.1.weight",
        "cells.0._ops.0.op.3.weight",
        "cells.0._ops.0.op.7.bias",
        "cells.0._ops.7.op.2.weight",
        "cells.2.preprocess0.conv_1.weight",
        "cells.2.preprocess0.bn.weight",
    ] {
        assert!(names.contains(&n), "{n} missing: {names:?}");
    }
    let nbt = t.iter().find(|x| x.0 == "stem.1.num_batches_tracked").unwrap();
    assert_eq!((nbt.1, nbt.2.clone(), i64::from_le_bytes(nbt.3[..8].try_into().unwrap())), (Dtype::I64, vec![], 6));
    // The same scores and logits from the exported file as from the model.
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    let first = ok(&eval(&dir, &["--logits", a.to_str().unwrap()]));
    let second = ok(&eval(&file, &["--logits", b.to_str().unwrap()]));
    let tail = |s: &str| s.lines().skip_while(|l| !l.starts_with("class")).collect::<Vec<_>>().join("\n");
    assert_eq!(tail(&first), tail(&second));
    assert_eq!(fs::read_to_string(&a).unwrap(), fs::read_to_string(&b).unwrap());
    assert_eq!(fs::read_to_string(&a).unwrap().lines().count(), 500, "a line per test image");

    // A file without metadata (as PyTorch's save_file writes) needs --genotype.
    let bare = dir.with_extension("bare.safetensors");
    write(&bare, &t, None);
    fails_with(&eval(&bare, &[]), &["no genotype", "--genotype"]);
    let c = dir.join("c.jsonl");
    ok(&eval(&bare, &["--genotype", "DARTS_V2", "--logits", c.to_str().unwrap()]));
    assert_eq!(fs::read_to_string(&a).unwrap(), fs::read_to_string(&c).unwrap());
    // Missing, extra and misshapen tensors are named.
    let edit = |f: &dyn Fn(&mut Vec<Raw>)| {
        let mut t = t.clone();
        f(&mut t);
        let p = dir.with_extension("edited.safetensors");
        write(&p, &t, None);
        eval(&p, &["--genotype", "DARTS_V2"])
    };
    let o = edit(&|t| t.retain(|x| x.0 != "cells.0._ops.0.op.6.weight"));
    fails_with(&o, &["no tensor 'cells.0._ops.0.op.6.weight'"]);
    let o = edit(&|t| t.push(("cells.0._ops.9.op.1.weight".into(), Dtype::F32, vec![1], vec![0; 4])));
    fails_with(&o, &["'cells.0._ops.9.op.1.weight'", "not in the genotype's network"]);
    let o = edit(&|t| {
        let x = t.iter_mut().find(|x| x.0 == "cells.0._ops.0.op.2.weight").unwrap();
        x.2 = vec![2, 8, 1, 1];
    });
    fails_with(&o, &["'cells.0._ops.0.op.2.weight' is [2, 8, 1, 1]", "[4, 4, 1, 1]"]);
    // Another genotype reads other tensors.
    fails_with(&eval(&bare, &["--genotype", "DARTS_V1"]), &["--model", "tensor '"]);
    // Training starts from such a file: at a rate of 1e-9 the weights stay.
    let cont = tmp("export-continue");
    train(&cont, "DARTS_V2", &["--init-from", bare.to_str().unwrap(), "--lr", "1e-9"]);
    let (m0, m1) = (rarts::model::Model::load(&dir).unwrap(), rarts::model::Model::load(&cont).unwrap());
    for name in ["stem.conv", "cells.0.ops.0.sep_conv_3x3.0.dw", "classifier.weight"] {
        let (x, y) = (m0.tensor(name).unwrap().1, m1.tensor(name).unwrap().1);
        assert!(x.iter().zip(&y).all(|(p, q)| (p - q).abs() < 1e-6), "{name} moved");
    }
    let mut c = bin();
    c.args(["train", "--genotype", "DARTS_V1", "--c", "4", "--layers", "5", "--epochs", "1", "--quiet", "--out"]);
    let o = c.arg(tmp("export-wrong")).arg("--init-from").arg(&bare).output().unwrap();
    fails_with(&o, &["--init-from", "tensor '"]);
    // Only DARTS' evaluation network exports.
    let nb = tmp("export-nb201");
    let mut c = bin();
    c.args(["train", "--space", "nb201", "--genotype", "random:1", "--c", "4", "--cells-per-stage", "1"]);
    ok(&c
        .args(["--batch", "8", "--epochs", "1", "--steps-per-epoch", "1", "--eval-images", "0", "--quiet", "--out"])
        .arg(&nb)
        .output()
        .unwrap());
    let o = bin().args(["export", "--model"]).arg(&nb).args(["--out", "/tmp/never.safetensors"]).output().unwrap();
    fails_with(&o, &["nb201", "NetworkCIFAR"]);
}

/// The top-1 line of `rarts eval`'s output.
fn top1(stdout: &str) -> f64 {
    let line = stdout.lines().find(|l| l.starts_with("top-1:")).unwrap_or_else(|| panic!("no top-1: {stdout}"));
    line["top-1:".len()..].trim().parse().unwrap()
}

/// The value of one tensor (F32) of `t`.
fn values(t: &[Raw], name: &str) -> Vec<f32> {
    let x = t.iter().find(|x| x.0 == name).unwrap_or_else(|| panic!("no {name}"));
    x.3.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn search_networks_export_under_model_search_names() {
    let dir = tmp("export-search");
    let mut c = bin();
    c.args(["search", "--algo", "rarts", "--c", "4", "--layers", "3", "--batch", "8", "--seed", "7"]);
    c.args(["--epochs", "1", "--steps-per-epoch", "2", "--eval-images", "500", "--quiet", "--out"]);
    ok(&c.arg(&dir).output().unwrap());
    let (wf, yf) = (dir.with_extension("w.safetensors"), dir.with_extension("y.safetensors"));
    let export = |model: &Path, out: &Path, extra: &[&str]| {
        bin().args(["export", "--model"]).arg(model).arg("--out").arg(out).args(extra).output().unwrap()
    };
    ok(&export(&dir, &wf, &[]));
    ok(&export(&dir.join("checkpoint.bin"), &yf, &["--net", "y"]));
    let (w, y) = (tensors(&wf), tensors(&yf));
    let names: Vec<&str> = w.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(names, y.iter().map(|x| x.0.as_str()).collect::<Vec<_>>());
    let shape = |n: &str| w.iter().find(|x| x.0 == n).unwrap_or_else(|| panic!("no {n}: {names:?}")).2.clone();
    // 14 edges of 8 PRIMITIVES; sep_conv_3x3 is primitive 4, max_pool_3x3
    // 1 (its BN without affine parameters), skip_connect 3 (a
    // FactorizedReduce on a reduction cell's stride-2 edges; cell 1 is one).
    assert_eq!(shape("alphas_normal"), vec![14, 8]);
    assert_eq!(shape("alphas_reduce"), vec![14, 8]);
    assert_eq!(shape("stem.0.weight"), vec![12, 1, 3, 3]);
    assert_eq!(shape("cells.0._ops.0._ops.4.op.1.weight"), vec![4, 1, 3, 3]);
    assert_eq!(shape("cells.0._ops.0._ops.4.op.6.weight"), vec![4, 4, 1, 1]);
    assert_eq!(shape("cells.0._ops.0._ops.1.1.running_mean"), vec![4]);
    assert_eq!(shape("cells.1._ops.0._ops.3.conv_1.weight"), vec![4, 8, 1, 1]);
    assert_eq!(shape("classifier.weight"), vec![10, 64]);
    for absent in ["cells.0._ops.0._ops.1.1.weight", "cells.0._ops.0._ops.3.conv_1.weight", "cells.0._ops.0._ops.0"] {
        assert!(!names.iter().any(|n| n.starts_with(absent)), "{absent}: {names:?}");
    }
    let nbt = w.iter().find(|x| x.0 == "cells.0._ops.0._ops.2.1.num_batches_tracked").unwrap();
    assert_eq!((nbt.1, i64::from_le_bytes(nbt.3[..8].try_into().unwrap())), (Dtype::I64, 2));
    // One α, two networks.
    assert_eq!(values(&w, "alphas_normal"), values(&y, "alphas_normal"));
    assert_ne!(values(&w, "cells.0._ops.0._ops.4.op.1.weight"), values(&y, "cells.0._ops.0._ops.4.op.1.weight"));
    let meta = |p: &Path| SafeTensors::read_metadata(&fs::read(p).unwrap()).unwrap().1.metadata().clone().unwrap();
    let (mw, my) = (meta(&wf), meta(&yf));
    assert_eq!((mw["net"].as_str(), my["net"].as_str(), mw["network"].as_str()), ("w", "y", "Network"));
    let genotype = fs::read_to_string(dir.join("genotype.txt")).unwrap();
    assert_eq!(mw["genotype"], genotype.trim());
    assert_eq!(mw["setting--algo"], "rarts");
    // w is the network the search scored: the same test accuracy.
    let log = fs::read_to_string(dir.join("log.jsonl")).unwrap();
    let acc: f64 = log.split("\"test_acc\":").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    let stdout = ok(&eval(&wf, &[]));
    assert!(stdout.contains("search network, C=4, 3 cells"), "{stdout}");
    assert_eq!(top1(&stdout), acc, "{stdout}");
    assert!(stdout.contains(genotype.trim()), "{stdout}");

    // Round trip: export -> import -> export keeps every tensor's bytes.
    let again = dir.with_extension("again.safetensors");
    ok(&export(&wf, &again, &[]));
    assert_eq!(tensors(&again), w);
    assert_eq!(meta(&again)["genotype"], mw["genotype"]);
    // The same without metadata, as PyTorch's save_file writes it.
    let bare = dir.with_extension("bare.safetensors");
    write(&bare, &y, None);
    ok(&export(&bare, &again, &[]));
    assert_eq!(tensors(&again), y);

    // The loss of one batch and its gradient, under DARTS' names.
    let g = dir.with_extension("grads.safetensors");
    ok(&eval(&wf, &["--batch", "10", "--grads", g.to_str().unwrap()]));
    let gt = tensors(&g);
    let loss = gt.iter().find(|x| x.0 == "loss").unwrap();
    assert_eq!((loss.1, loss.2.clone()), (Dtype::F64, vec![]));
    let loss = f64::from_le_bytes(loss.3[..8].try_into().unwrap());
    assert!(loss.is_finite() && loss > 0.5, "{loss}");
    assert_eq!(gt.iter().find(|x| x.0 == "alphas_reduce").unwrap().2, vec![14, 8]);
    assert!(values(&gt, "alphas_normal").iter().any(|&v| v != 0.0));
    // Weights get gradients, statistics do not.
    assert!(gt.iter().any(|x| x.0 == "cells.0._ops.0._ops.4.op.1.weight"));
    assert!(!gt.iter().any(|x| x.0.ends_with("running_mean")));

    // Errors: a missing, extra or misshapen tensor is named.
    let edit = |f: &dyn Fn(&mut Vec<Raw>)| {
        let mut t = w.clone();
        f(&mut t);
        let p = dir.with_extension("edited.safetensors");
        write(&p, &t, None);
        eval(&p, &[])
    };
    let o = edit(&|t| t.retain(|x| x.0 != "cells.0._ops.3._ops.5.op.2.weight"));
    fails_with(&o, &["no tensor 'cells.0._ops.3._ops.5.op.2.weight'", "the search network"]);
    let o = edit(&|t| t.push(("cells.0._ops.14._ops.4.op.1.weight".into(), Dtype::F32, vec![1], vec![0; 4])));
    fails_with(&o, &["'cells.0._ops.14._ops.4.op.1.weight'", "not in the search network"]);
    let o = edit(&|t| {
        let x = t.iter_mut().find(|x| x.0 == "alphas_reduce").unwrap();
        x.2 = vec![8, 14];
    });
    fails_with(&o, &["'alphas_reduce' is [8, 14]", "[14, 8]"]);
    // Flags that do not apply.
    fails_with(&eval(&wf, &["--genotype", "DARTS_V2"]), &["--genotype", "alphas_normal"]);
    fails_with(&export(&dir, &again, &["--genotype", "DARTS_V2"]), &["--genotype", "search"]);
    let mut o = bin();
    o.args(["train", "--genotype", "DARTS_V2", "--c", "4", "--layers", "3", "--epochs", "1", "--quiet"]);
    let o = o.arg("--out").arg(tmp("export-from-search")).arg("--init").arg(&wf).output().unwrap();
    fails_with(&o, &["search network", "genotype"]);
    let d1 = tmp("export-search-darts1");
    ok(&common::cli::small_search(&d1, "darts1", 1, 1).output().unwrap());
    fails_with(&export(&d1, &again, &["--net", "y"]), &["--net y", "darts1"]);
    ok(&export(&d1, &again, &[]));
    assert_eq!(meta(&again)["net"], "w");
}

#[test]
fn evaluation_networks_round_trip_and_refuse_search_flags() {
    let dir = tmp("export-roundtrip");
    train(&dir, "DARTS_V1", &[]);
    let export = |model: &Path, out: &Path, extra: &[&str]| {
        bin().args(["export", "--model"]).arg(model).arg("--out").arg(out).args(extra).output().unwrap()
    };
    let (a, b, c) = (dir.join("a.safetensors"), dir.join("b.safetensors"), dir.join("c.safetensors"));
    ok(&export(&dir, &a, &[]));
    ok(&export(&a, &b, &[]));
    let t = tensors(&a);
    assert!(t.iter().any(|x| x.0 == "cells.0._ops.0.op.1.weight"));
    assert_eq!(tensors(&b), t);
    // Without metadata, the genotype comes from the flag.
    write(&c, &t, None);
    fails_with(&export(&c, &b, &[]), &["no genotype", "--genotype"]);
    ok(&export(&c, &b, &["--genotype", "DARTS_V1"]));
    assert_eq!(tensors(&b), t);
    fails_with(&export(&dir, &b, &["--net", "y"]), &["--net", "one trained network"]);
    fails_with(&export(&dir, &b, &["--genotype", "DARTS_V1"]), &["--genotype", "records its network"]);
    let g = dir.join("g.safetensors");
    fails_with(&eval(&a, &["--grads", g.to_str().unwrap()]), &["--grads", "search network"]);
    assert!(!g.exists());
}
