//! Weights that leave rarts and come back: a trained DARTS evaluation
//! network as a safetensors file whose tensor names and shapes are exactly
//! those of quark0/darts' `NetworkCIFAR.state_dict()` (`cnn/model.py`, ops
//! from `cnn/operations.py`), and the reading of such a file — written by
//! `rarts export` or by PyTorch — back into the engine.
//!
//! Names: our `stem.conv` is DARTS' `stem.0.weight` and `stem.bn.*` its
//! `stem.1.*`; a `ReLUConvBN` preprocessing is `op.1` (conv) and `op.2`
//! (BN); a `FactorizedReduce` keeps `conv_1`, `conv_2`, `bn`; a sep_conv is
//! `op.{1,2,3}` (first depthwise, pointwise, BN) and `op.{5,6,7}` (second);
//! a dil_conv `op.{1,2,3}`; the auxiliary head's `features.{2,3,5,6}`.
//! Every BN also gets `num_batches_tracked`, an int64 scalar counting the
//! training steps, as PyTorch keeps it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use crate::error::{Context, Error, Result};
use crate::genotype::Genotype;
use crate::model::Model;
use crate::space::NetSpec;
use crate::space::eval::EvalNetConfig;

/// The `format` metadata of an exported file.
pub const FORMAT: &str = "rarts-export-darts-1";

/// How a tensor's shape reads in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// A convolution's weight: 4-D, as ours.
    Conv,
    /// A linear layer's weight: `(out, in)`.
    Matrix,
    /// A BN parameter or statistic, a bias: 1-D.
    Vector,
}

/// BN's four tensors, by the suffix of their names.
const BN_PARTS: [&str; 4] = ["weight", "bias", "running_mean", "running_var"];

/// DARTS' name and layout for one of our tensor names; `fr` holds the
/// prefixes (`cells.3.preprocess0`) that are a `FactorizedReduce`.
fn darts_name(ours: &str, fr: &HashSet<String>) -> Option<(String, Layout)> {
    let p: Vec<&str> = ours.split('.').collect();
    let bn =
        |prefix: String, part: &str| BN_PARTS.contains(&part).then(|| (format!("{prefix}.{part}"), Layout::Vector));
    let conv = |name: String| Some((format!("{name}.weight"), Layout::Conv));
    match p.as_slice() {
        ["stem", "conv"] => conv("stem.0".into()),
        ["stem", "bn", part] => bn("stem.1".into(), part),
        ["classifier", "weight"] => Some(("classifier.weight".into(), Layout::Matrix)),
        ["classifier", "bias"] => Some(("classifier.bias".into(), Layout::Vector)),
        ["auxiliary_head", "conv1"] => conv("auxiliary_head.features.2".into()),
        ["auxiliary_head", "bn1", part] => bn("auxiliary_head.features.3".into(), part),
        ["auxiliary_head", "conv2"] => conv("auxiliary_head.features.5".into()),
        ["auxiliary_head", "bn2", part] => bn("auxiliary_head.features.6".into(), part),
        ["auxiliary_head", "classifier", "weight"] => Some(("auxiliary_head.classifier.weight".into(), Layout::Matrix)),
        ["auxiliary_head", "classifier", "bias"] => Some(("auxiliary_head.classifier.bias".into(), Layout::Vector)),
        ["cells", i, pre @ ("preprocess0" | "preprocess1"), rest @ ..] => {
            let prefix = format!("cells.{i}.{pre}");
            let reduce = fr.contains(&prefix);
            match rest {
                ["conv"] if !reduce => conv(format!("{prefix}.op.1")),
                ["bn", part] if !reduce => bn(format!("{prefix}.op.2"), part),
                [c @ ("conv_1" | "conv_2")] if reduce => conv(format!("{prefix}.{c}")),
                ["bn", part] if reduce => bn(format!("{prefix}.bn"), part),
                _ => None,
            }
        }
        ["cells", i, "ops", k, op, rest @ ..] => {
            let prefix = format!("cells.{i}._ops.{k}");
            match (op.split('_').next()?, rest) {
                ("sep", [s @ ("0" | "1"), kind, tail @ ..]) => {
                    let base = if *s == "0" { 1 } else { 5 };
                    match (*kind, tail) {
                        ("dw", []) => conv(format!("{prefix}.op.{base}")),
                        ("pw", []) => conv(format!("{prefix}.op.{}", base + 1)),
                        ("bn", [part]) => bn(format!("{prefix}.op.{}", base + 2), part),
                        _ => None,
                    }
                }
                ("dil", ["dw"]) => conv(format!("{prefix}.op.1")),
                ("dil", ["pw"]) => conv(format!("{prefix}.op.2")),
                ("dil", ["bn", part]) => bn(format!("{prefix}.op.3"), part),
                ("skip", [c @ ("conv_1" | "conv_2")]) => conv(format!("{prefix}.{c}")),
                ("skip", ["bn", part]) => bn(format!("{prefix}.bn"), part),
                _ => None,
            }
        }
        _ => None,
    }
}

/// DARTS' names for all of one network's tensor names, in order.
fn darts_names(names: &[String]) -> Result<Vec<(String, Layout)>> {
    let fr: HashSet<String> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".conv_1"))
        .filter(|p| p.contains("preprocess"))
        .map(String::from)
        .collect();
    names
        .iter()
        .map(|n| darts_name(n, &fr).ok_or_else(|| Error(format!("tensor '{n}' has no name in DARTS' NetworkCIFAR"))))
        .collect()
}

/// The PyTorch shape of a tensor we hold as `ours` (always 4-D).
fn torch_shape(ours: &[usize], layout: Layout) -> Vec<usize> {
    match layout {
        Layout::Conv => ours.to_vec(),
        Layout::Matrix => vec![ours[0], ours.iter().skip(1).product()],
        Layout::Vector => vec![ours.iter().product()],
    }
}

/// Writes the trained DARTS evaluation network in `model` (a `rarts train`
/// folder or its model file) to `out` under DARTS' names; returns the
/// number of tensors written.
pub fn export(model: &Path, out: &Path) -> Result<usize> {
    let m = Model::load(model)?;
    let NetSpec::Darts(cfg) = &m.info.net else {
        crate::bail!(
            "--model {}: a {} network; rarts export writes DARTS' evaluation network (NetworkCIFAR)",
            m.path.display(),
            m.info.net.space().name()
        );
    };
    let names = m.tensor_names()?;
    let theirs = darts_names(&names).map_err(|e| Error(format!("--model {}: {e}", m.path.display())))?;
    let steps: i64 = m.info.metadata.get("steps_done").and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (ours, (name, layout)) in names.iter().zip(&theirs) {
        let (shape, v) = m.tensor(ours)?;
        data.push((
            name.clone(),
            Dtype::F32,
            torch_shape(&shape, *layout),
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
        if let Some(bn) = name.strip_suffix(".running_var") {
            data.push((format!("{bn}.num_batches_tracked"), Dtype::I64, vec![], steps.to_le_bytes().to_vec()));
        }
    }
    let views = data
        .iter()
        .map(|(n, dt, shape, bytes)| {
            TensorView::new(*dt, shape.clone(), bytes)
                .map(|v| (n.as_str(), v))
                .map_err(|e| Error(format!("export: {n}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta: HashMap<String, String> =
        m.info.metadata.iter().filter(|(k, _)| k.starts_with("setting")).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in [
        ("format", FORMAT.to_string()),
        ("network", "NetworkCIFAR".into()),
        ("genotype", m.info.net.arch()),
        ("c", cfg.c.to_string()),
        ("layers", cfg.layers.to_string()),
        ("classes", cfg.classes.to_string()),
        ("auxiliary", cfg.auxiliary.to_string()),
        ("rarts_version", env!("CARGO_PKG_VERSION").to_string()),
    ] {
        meta.insert(k.into(), v);
    }
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| Error(format!("export: {e}")))?;
    crate::rundir::write_atomic(out, &bytes).map_err(|e| Error(format!("--out {}: {}", out.display(), e.0)))?;
    Ok(data.len())
}

/// A file in DARTS' layout read back: the network it holds and its tensors
/// by DARTS name.
pub struct DartsFile {
    pub cfg: EvalNetConfig,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    path: String,
}

/// True when `path` is a safetensors file in DARTS' layout (it holds
/// `stem.0.weight`).
pub fn is_darts_file(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    SafeTensors::deserialize(&bytes).is_ok_and(|st| st.names().contains(&"stem.0.weight"))
}

impl DartsFile {
    /// Reads `path`, the network's sizes from its tensors' shapes (C from
    /// the stem, the cells, the classes from the classifier, the auxiliary
    /// head if present) and its genotype from `genotype` or else the file's
    /// metadata.
    pub fn load(path: &Path, genotype: Option<&str>) -> Result<DartsFile> {
        let what = path.display().to_string();
        let bytes = std::fs::read(path).ctx(|| format!("--model {what}: cannot read it"))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error(format!("--model {what}: not a safetensors file ({e})")))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| Error(format!("--model {what}: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, t) in st.tensors() {
            if name.ends_with(".num_batches_tracked") {
                continue;
            }
            if t.dtype() != Dtype::F32 {
                crate::bail!("--model {what}: tensor '{name}' is {:?}; expected F32", t.dtype());
            }
            let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                crate::bail!("--model {what}: tensor '{name}' holds {} at element {i}", v[i]);
            }
            tensors.insert(name.clone(), (t.shape().to_vec(), v));
        }
        let shape = |n: &str| -> Result<&Vec<usize>> {
            tensors.get(n).map(|t| &t.0).ok_or_else(|| Error(format!("--model {what}: no tensor '{n}'")))
        };
        let stem = shape("stem.0.weight")?;
        if stem.len() != 4 || stem[0] % 3 != 0 {
            crate::bail!("--model {what}: tensor 'stem.0.weight' is {stem:?}; expected [3·C, channels, 3, 3]");
        }
        let (c, in_channels) = (stem[0] / 3, stem[1]);
        let classes = shape("classifier.weight")?[0];
        let layers = tensors
            .keys()
            .filter_map(|n| n.strip_prefix("cells.")?.split('.').next()?.parse::<usize>().ok())
            .max()
            .map_or(0, |m| m + 1);
        let auxiliary = tensors.keys().any(|n| n.starts_with("auxiliary_head."));
        let meta = meta.metadata().clone().unwrap_or_default();
        let genotype = match genotype.or(meta.get("genotype").map(String::as_str)) {
            Some(g) => Genotype::from_source(g).map_err(|e| Error(format!("--genotype: {e}")))?,
            None => crate::bail!("--model {what}: its metadata has no genotype; pass --genotype"),
        };
        let cfg = EvalNetConfig { auxiliary, ..EvalNetConfig::new(c, layers, classes, in_channels, genotype) };
        Ok(DartsFile { cfg, tensors, path: what })
    }

    /// Every tensor of the network whose tensors are named `names` (ours),
    /// in order, from the file: a missing or misshapen tensor, or one the
    /// network does not have, is an error naming it.
    pub fn tensors_for(&self, names: &[String], shapes: &[Vec<usize>]) -> Result<Vec<Vec<f32>>> {
        let theirs = darts_names(names).map_err(|e| Error(format!("--model {}: {e}", self.path)))?;
        let mut used = HashSet::new();
        let mut out = Vec::new();
        for ((name, layout), ours) in theirs.iter().zip(shapes) {
            let want = torch_shape(ours, *layout);
            let (shape, v) = self.tensors.get(name).ok_or_else(|| {
                Error(format!("--model {}: no tensor '{name}' (the genotype's network needs it)", self.path))
            })?;
            if *shape != want {
                crate::bail!(
                    "--model {}: tensor '{name}' is {shape:?}; the genotype's network needs {want:?}",
                    self.path
                );
            }
            used.insert(name.as_str());
            out.push(v.clone());
        }
        let mut extra: Vec<&String> = self.tensors.keys().filter(|k| !used.contains(k.as_str())).collect();
        extra.sort();
        if let Some(e) = extra.first() {
            crate::bail!(
                "--model {}: tensor '{e}'{} is not in the genotype's network; wrong --genotype?",
                self.path,
                if extra.len() > 1 { format!(" and {} more", extra.len() - 1) } else { String::new() }
            );
        }
        Ok(out)
    }
}
