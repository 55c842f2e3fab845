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
