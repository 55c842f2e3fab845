//! A DARTS network in quark0/darts' own layout: a safetensors file whose
//! tensor names and shapes are exactly those of its `state_dict()` —
//! `NetworkCIFAR` (`cnn/model.py`, ops from `cnn/operations.py`) or the
//! search's `Network` (`cnn/model_search.py`) — written by `rarts export`
//! or by PyTorch, and read back into the engine by `train --init-from` and
//! `eval`.
//!
//! Names: our `stem.conv` is DARTS' `stem.0.weight` and `stem.bn.*` its
//! `stem.1.*`; a `ReLUConvBN` preprocessing is `op.1` (conv) and `op.2`
//! (BN); a `FactorizedReduce` keeps `conv_1`, `conv_2`, `bn`; a sep_conv is
//! `op.{1,2,3}` (first depthwise, pointwise, BN) and `op.{5,6,7}` (second);
//! a dil_conv `op.{1,2,3}`; the auxiliary head's `features.{2,3,5,6}`.
//! Every BN also gets `num_batches_tracked`, an int64 scalar counting the
//! training steps, as PyTorch keeps it. In the search network an edge's
//! ops sit one level deeper, `cells.{i}._ops.{e}._ops.{p}` with `p` the
//! op's index in `PRIMITIVES`, a pool's BN is `._ops.{p}.1`, and α is
//! `alphas_normal` and `alphas_reduce`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use crate::backend::Backend;
use crate::error::{Context, Error, Result};
use crate::exec::Exec;
use crate::genotype::Genotype;
use crate::ops::record::*;
use crate::run_record::persistent_nodes;
use crate::shape::Shape;
use crate::space::darts::{self, Primitive, SuperNetConfig};
use crate::space::eval::EvalNetConfig;
use crate::space::{GROUP_ARCH, GROUP_W, NetSpec};
use crate::tape::{NodeId, Tape};

/// The `format` metadata of an exported evaluation network.
pub const EVAL_FORMAT: &str = "rarts-export-darts-1";

/// Which of quark0/darts' two networks a file holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Network {
    /// `NetworkCIFAR`, trained from a genotype.
    Eval(EvalNetConfig),
    /// The search's `Network` (one of a RARTS search's two), α included.
    Search(SuperNetConfig),
}

impl Network {
    pub fn is_search(&self) -> bool {
        matches!(self, Network::Search(_))
    }

    /// Our names and shapes of the network's persistent tensors (weights,
    /// BN statistics and, for a search network, α), in recording order.
    pub fn tensors(&self) -> Result<(Vec<String>, Vec<Vec<usize>>)> {
        let t = match self {
            Network::Eval(cfg) => {
                let mut t = Tape::new();
                let x = t.input(Shape::nchw(1, cfg.in_channels, 32, 32), "images");
                NetSpec::Darts(cfg.clone()).record(&mut t, x, GROUP_W)?;
                t
            }
            Network::Search(cfg) => record_search(cfg, Shape::nchw(1, cfg.in_channels, 32, 32)).tape,
        };
        let nodes = persistent_nodes(&t);
        Ok((
            nodes.iter().map(|&n| t.nodes[n].name.clone()).collect(),
            nodes.iter().map(|&n| t.shape(n).0.to_vec()).collect(),
        ))
    }

    /// The metadata fields that describe it.
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("rarts_version", env!("CARGO_PKG_VERSION").to_string())];
        match self {
            Network::Eval(cfg) => v.extend([
                ("format", EVAL_FORMAT.to_string()),
                ("network", "NetworkCIFAR".into()),
                ("genotype", NetSpec::Darts(cfg.clone()).arch()),
                ("c", cfg.c.to_string()),
                ("layers", cfg.layers.to_string()),
                ("classes", cfg.classes.to_string()),
                ("auxiliary", cfg.auxiliary.to_string()),
            ]),
            Network::Search(cfg) => v.extend([
                ("format", SEARCH_FORMAT.to_string()),
                ("network", "Network".into()),
                ("c", cfg.c.to_string()),
                ("layers", cfg.layers.to_string()),
                ("classes", cfg.classes.to_string()),
            ]),
        }
        v
    }
}

/// How a tensor's shape reads in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A convolution's weight: 4-D, as ours.
    Conv,
    /// A linear layer's weight: `(out, in)`.
    Matrix,
    /// A BN parameter or statistic, a bias: 1-D.
    Vector,
}

/// BN's four tensors, by the suffix of their names.
const BN_PARTS: [&str; 4] = ["weight", "bias", "running_mean", "running_var"];

/// DARTS' name and layout for one of our tensor names, in the search
/// network when `search`; `fr` holds the prefixes (`cells.3.preprocess0`)
/// that are a `FactorizedReduce`.
fn darts_name(ours: &str, fr: &HashSet<String>, search: bool) -> Option<(String, Layout)> {
    let p: Vec<&str> = ours.split('.').collect();
    let bn =
        |prefix: String, part: &str| BN_PARTS.contains(&part).then(|| (format!("{prefix}.{part}"), Layout::Vector));
    let conv = |name: String| Some((format!("{name}.weight"), Layout::Conv));
    match p.as_slice() {
        ["stem", "conv"] => conv("stem.0".into()),
        ["stem", "bn", part] => bn("stem.1".into(), part),
        [a @ ("alpha_normal" | "alpha_reduce")] if search => Some((a.replacen("alpha", "alphas", 1), Layout::Matrix)),
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
            let prefix = if search {
                let p = Primitive::ALL.iter().position(|p| p.name() == *op)?;
                format!("cells.{i}._ops.{k}._ops.{p}")
            } else {
                format!("cells.{i}._ops.{k}")
            };
            match (op.split('_').next()?, rest) {
                ("max" | "avg", [part]) if search => bn(format!("{prefix}.1"), part),
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
pub fn darts_names(names: &[String], network: &Network) -> Result<Vec<(String, Layout)>> {
    let fr: HashSet<String> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".conv_1"))
        .filter(|p| p.contains("preprocess"))
        .map(String::from)
        .collect();
    names
        .iter()
        .map(|n| {
            darts_name(n, &fr, network.is_search()).ok_or_else(|| {
                let net = if network.is_search() { "search Network" } else { "NetworkCIFAR" };
                Error(format!("tensor '{n}' has no name in DARTS' {net}"))
            })
        })
        .collect()
}

/// The PyTorch shape of a tensor we hold as `ours` (always 4-D).
pub fn torch_shape(ours: &[usize], layout: Layout) -> Vec<usize> {
    match layout {
        Layout::Conv => ours.to_vec(),
        Layout::Matrix => vec![ours[0], ours.iter().skip(1).product()],
        Layout::Vector => vec![ours.iter().product()],
    }
}

/// The `format` metadata of an exported search network.
pub const SEARCH_FORMAT: &str = "rarts-export-darts-search-1";

/// One search network on a tape: α, the supernet, its cross-entropy.
pub struct SearchNet {
    pub tape: Tape,
    /// (images, labels, logits).
    pub io: (NodeId, NodeId, NodeId),
    pub loss: NodeId,
}

/// Records the search network of `cfg` on images of shape `x` (NCHW).
pub fn record_search(cfg: &SuperNetConfig, x: Shape) -> SearchNet {
    let mut t = Tape::new();
    let (_, _, mw) = darts::alphas(&mut t, cfg, GROUP_ARCH);
    let images = t.input(x, "images");
    let labels = t.input(Shape::vec(x.n()), "labels");
    let net = darts::supernet(&mut t, cfg, images, mw, GROUP_W);
    let loss = t.cross_entropy(net.logits, labels);
    SearchNet { tape: t, io: (images, labels, net.logits), loss }
}

/// Writes `data` (name, dtype, shape, bytes) and `metadata` to `path` as a
/// safetensors file, atomically; `flag` names the path in errors. Returns
/// the number of tensors.
pub fn serialize(
    path: &Path,
    flag: &str,
    data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    metadata: HashMap<String, String>,
) -> Result<usize> {
    let views = data
        .iter()
        .map(|(n, dt, shape, bytes)| {
            TensorView::new(*dt, shape.clone(), bytes)
                .map(|v| (n.as_str(), v))
                .map_err(|e| Error(format!("{flag} {}: {n}: {e}", path.display())))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| Error(format!("{flag}: {e}")))?;
    let bytes = crate::model::sort_metadata(bytes)?;
    crate::rundir::write_atomic(path, &bytes).map_err(|e| Error(format!("{flag} {}: {}", path.display(), e.0)))?;
    Ok(data.len())
}

/// A file in DARTS' layout read back: the network it holds, its tensors by
/// DARTS name, its BN step count and its metadata.
pub struct DartsFile {
    pub network: Network,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// `num_batches_tracked` of the stem's BN (0 where absent).
    pub steps: i64,
    pub metadata: HashMap<String, String>,
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
    /// head if present). A file with `alphas_normal` holds a search network
    /// (`genotype` does not apply: see [`DartsFile::no_genotype`]); any
    /// other an evaluation network of `genotype`, or else of the genotype in
    /// the file's metadata.
    pub fn load(path: &Path, genotype: Option<&str>) -> Result<DartsFile> {
        let what = path.display().to_string();
        let bytes = std::fs::read(path).ctx(|| format!("--model {what}: cannot read it"))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error(format!("--model {what}: not a safetensors file ({e})")))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| Error(format!("--model {what}: {e}")))?;
        let mut tensors = HashMap::new();
        let mut steps = 0;
        for (name, t) in st.tensors() {
            if name.ends_with(".num_batches_tracked") {
                if name == "stem.1.num_batches_tracked" && t.dtype() == Dtype::I64 && t.data().len() == 8 {
                    steps = i64::from_le_bytes(t.data().try_into().expect("8 bytes"));
                }
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
        let metadata = meta.metadata().clone().unwrap_or_default();
        let network = if tensors.contains_key("alphas_normal") {
            Network::Search(SuperNetConfig::new(c, layers, classes, in_channels))
        } else {
            let auxiliary = tensors.keys().any(|n| n.starts_with("auxiliary_head."));
            let genotype = match genotype.or(metadata.get("genotype").map(String::as_str)) {
                Some(g) => Genotype::from_source(g).map_err(|e| Error(format!("--genotype: {e}")))?,
                None => crate::bail!("--model {what}: its metadata has no genotype; pass --genotype"),
            };
            Network::Eval(EvalNetConfig { auxiliary, ..EvalNetConfig::new(c, layers, classes, in_channels, genotype) })
        };
        Ok(DartsFile { network, tensors, steps, metadata, path: what })
    }

    /// An error when a genotype was given for a search network, whose α
    /// decide its cells.
    pub fn no_genotype(&self, genotype: Option<&str>) -> Result<()> {
        if self.network.is_search() && genotype.is_some() {
            crate::bail!("--genotype: {} holds a search network (alphas_normal); its α decide the cells", self.path);
        }
        Ok(())
    }

    /// The evaluation network's configuration; an error for a search network.
    pub fn eval_config(&self) -> Result<&EvalNetConfig> {
        match &self.network {
            Network::Eval(cfg) => Ok(cfg),
            Network::Search(_) => crate::bail!(
                "--model {}: a search network (it holds alphas_normal); train from a genotype, not from it",
                self.path
            ),
        }
    }

    /// Every tensor of the network whose tensors are named `names` (ours),
    /// in order, from the file: a missing or misshapen tensor, or one the
    /// network does not have, is an error naming it.
    pub fn tensors_for(&self, names: &[String], shapes: &[Vec<usize>]) -> Result<Vec<Vec<f32>>> {
        let theirs = darts_names(names, &self.network).map_err(|e| Error(format!("--model {}: {e}", self.path)))?;
        let net = if self.network.is_search() { "the search network" } else { "the genotype's network" };
        let mut used = HashSet::new();
        let mut out = Vec::new();
        for ((name, layout), ours) in theirs.iter().zip(shapes) {
            let want = torch_shape(ours, *layout);
            let (shape, v) = self
                .tensors
                .get(name)
                .ok_or_else(|| Error(format!("--model {}: no tensor '{name}' ({net} needs it)", self.path)))?;
            if *shape != want {
                crate::bail!("--model {}: tensor '{name}' is {shape:?}; {net} needs {want:?}", self.path);
            }
            used.insert(name.as_str());
            out.push(v.clone());
        }
        let mut extra: Vec<&String> = self.tensors.keys().filter(|k| !used.contains(k.as_str())).collect();
        extra.sort();
        if let Some(e) = extra.first() {
            crate::bail!(
                "--model {}: tensor '{e}'{} is not in {net}{}",
                self.path,
                if extra.len() > 1 { format!(" and {} more", extra.len() - 1) } else { String::new() },
                if self.network.is_search() { "" } else { "; wrong --genotype?" }
            );
        }
        Ok(out)
    }
}

/// Every weight and BN statistic of `ex` from a file in DARTS' layout.
pub fn load_darts<B: Backend<Elem = f32>>(ex: &mut Exec<B>, file: &DartsFile) -> Result<()> {
    let nodes = persistent_nodes(&ex.tape);
    let names: Vec<String> = nodes.iter().map(|&n| ex.tape.nodes[n].name.clone()).collect();
    let shapes: Vec<Vec<usize>> = nodes.iter().map(|&n| ex.shape(n).0.to_vec()).collect();
    for (&n, v) in nodes.iter().zip(file.tensors_for(&names, &shapes)?) {
        ex.set_elems(n, &v)?;
    }
    Ok(())
}
