//! A DARTS search's network in quark0/darts' `cnn/model_search.py` layout:
//! [`export`] writes one network of a search checkpoint (a RARTS search
//! keeps `w` and `y` side by side in each tensor, `w` first) with α as
//! `alphas_normal` and `alphas_reduce`; [`evaluate`] scores such a file and
//! writes, on request, the training-mode loss of one batch and its
//! gradient with respect to α and every weight — what
//! `scripts/crosscheck-torch.py` compares with PyTorch.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;

use super::{DartsFile, Net, Network, darts_names, serialize, torch_shape};
use crate::backend::{Backend, Part};
use crate::checkpoint::Checkpoint;
use crate::data::{Dataset, fill_eval};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::json::Json;
use crate::model::MODEL_FILE;
use crate::run_record::persistent_nodes;
use crate::score::{Scores, score};
use crate::search::CHECKPOINT_FORMAT;
use crate::shape::Shape;
use crate::space::darts::{self, SuperNetConfig};
use crate::space::{GROUP_ARCH, GROUP_W, SearchSpace};
use crate::tape::{Kind, NodeId, Tape};
use crate::train::load_darts;

/// The `format` metadata of an exported search network.
pub const FORMAT: &str = "rarts-export-darts-search-1";

/// One search network on a tape: α, the supernet, its cross-entropy.
pub struct SearchNet {
    pub tape: Tape,
    /// (images, labels, logits).
    pub io: (NodeId, NodeId, NodeId),
    pub loss: NodeId,
}

/// Records the search network of `cfg` on images of shape `x` (NCHW).
pub fn record(cfg: &SuperNetConfig, x: Shape) -> SearchNet {
    let mut t = Tape::new();
    let (_, _, mw) = darts::alphas(&mut t, cfg, GROUP_ARCH);
    let images = t.input(x, "images");
    let labels = t.input(Shape::vec(x.n()), "labels");
    let net = darts::supernet(&mut t, cfg, images, mw, GROUP_W);
    let loss = t.cross_entropy(net.logits, labels);
    SearchNet { tape: t, io: (images, labels, net.logits), loss }
}

/// The search checkpoint `model` names: a search folder's `checkpoint.bin`
/// (a folder holding a trained model is not one), or a checkpoint file.
pub fn checkpoint_in(model: &Path) -> Option<PathBuf> {
    if model.is_dir() {
        let ck = model.join("checkpoint.bin");
        return (ck.is_file() && !model.join(MODEL_FILE).exists()).then_some(ck);
    }
    let mut magic = [0u8; 7];
    std::fs::File::open(model).and_then(|mut f| f.read_exact(&mut magic)).ok()?;
    (&magic == b"RARTSCK").then(|| model.to_path_buf())
}

/// Writes network `net` of the DARTS search whose checkpoint is `ck_path`
/// to `out`; returns the number of tensors written.
pub fn export(ck_path: &Path, out: &Path, net: Net) -> Result<usize> {
    let what = format!("--model {}", ck_path.display());
    let ck = Checkpoint::load(ck_path)?;
    if ck.get("format") != Some(CHECKPOINT_FORMAT) {
        crate::bail!(
            "{what}: a checkpoint of format {}; rarts export reads a search's ({CHECKPOINT_FORMAT}) or a trained \
             model.safetensors",
            ck.get("format").unwrap_or("(none)")
        );
    }
    let setting = |flag: &str| ck.get(&format!("setting{flag}")).unwrap_or("");
    if setting("--space") != "darts" {
        crate::bail!("{what}: a {} search; rarts export writes DARTS' search network", setting("--space"));
    }
    let algo = setting("--algo");
    let nets = if algo == "rarts" { 2 } else { 1 };
    if net == Net::Y && nets == 1 {
        crate::bail!("--net y: a {algo} search trains one network; --net y picks RARTS's second");
    }
    let (c, layers): (usize, usize) = (ck.parse("setting--c")?, ck.parse("setting--layers")?);
    let tensor = |name: &str| -> Result<&Vec<f32>> {
        ck.tensors
            .iter()
            .find(|t| t.0 == name)
            .map(|t| &t.1)
            .ok_or_else(|| Error(format!("{what}: no tensor '{name}'")))
    };
    let stem = 3 * c;
    let in_channels = tensor("stem.conv")?.len() / (nets * stem * 9);
    let classes = tensor("classifier.bias")?.len() / nets;
    let cfg = SuperNetConfig::new(c, layers, classes, in_channels);
    let network = Network::Search(cfg);
    let (names, shapes) = network.tensors()?;
    let part = Part::net(if net == Net::Y { 1 } else { 0 }, nets);
    let mut tensors = Vec::with_capacity(names.len());
    for (name, shape) in names.into_iter().zip(shapes) {
        let v = tensor(&name)?;
        let n: usize = shape.iter().product();
        // α is shared; every other tensor holds each network's copy in turn.
        let copies = if name.starts_with("alpha") { 1 } else { nets };
        if v.len() != copies * n {
            crate::bail!(
                "{what}: tensor '{name}' has {} values; a {algo} search of C={c}, {layers} cells, {classes} classes \
                 and {in_channels}-channel images holds {}",
                v.len(),
                copies * n
            );
        }
        let v = if copies == 1 { v.clone() } else { v[part.range(v.len())].to_vec() };
        tensors.push((name, shape, v));
    }
    let alpha = |i: usize| tensors[i].2.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
    let genotype = darts::DartsSpace(cfg).derive(&[alpha(0), alpha(1)])?.text;
    // The training steps so far: the sum of the epochs' `steps` in the log.
    let steps: i64 = (0..)
        .map_while(|i| ck.get(&format!("log.{i}")))
        .filter_map(|line| Json::parse(line).ok()?.get("steps")?.num())
        .map(|s| s as i64)
        .sum();
    let mut meta: HashMap<String, String> =
        ck.header.iter().filter(|(k, _)| k.starts_with("setting")).cloned().collect();
    for (k, v) in [
        ("net", if net == Net::Y { "y" } else { "w" }.to_string()),
        ("algo", algo.to_string()),
        ("epochs_done", ck.get("epochs_done").unwrap_or("0").to_string()),
        ("genotype", genotype),
    ] {
        meta.insert(k.into(), v);
    }
    super::write(out, &network, tensors, steps, meta)
}

/// `rarts eval` of a search network read from `file`: its scores on `set`
/// in evaluation mode (BN's running statistics) and, with `grads`, a
/// safetensors file there holding the training-mode loss of the first
/// `batch` images (`loss`, f64) and its gradient with respect to α and
/// every weight, under DARTS' names. Returns the scores and the genotype
/// the file's α stand for.
pub fn evaluate<B: Backend<Elem = f32>>(
    be: B,
    file: &DartsFile,
    set: &Dataset,
    batch: usize,
    grads: Option<&Path>,
) -> Result<(Scores, String)> {
    let Network::Search(cfg) = &file.network else { crate::bail!("not a search network") };
    if let Some(g) = grads
        && set.len() < batch
    {
        crate::bail!(
            "--grads {}: the loss is taken on one batch of --batch {batch} images; the split has {}",
            g.display(),
            set.len()
        );
    }
    let s = set.shape();
    let net = record(cfg, Shape::nchw(batch, s.c(), s.h(), s.w()));
    let mut ex = Exec::new(be, net.tape)?;
    load_darts(&mut ex, file)?;
    let nodes = persistent_nodes(&ex.tape);
    let names: Vec<String> = nodes.iter().map(|&n| ex.tape.nodes[n].name.clone()).collect();
    let shapes: Vec<Vec<usize>> = nodes.iter().map(|&n| ex.shape(n).0.to_vec()).collect();
    // α was recorded first: alpha_normal, alpha_reduce.
    let genotype = darts::DartsSpace(*cfg).derive(&[ex.get(nodes[0])?, ex.get(nodes[1])?])?.text;
    let scores = score(&mut ex, set, net.io, set.len())?;
    if let Some(path) = grads {
        let mut x = vec![0.0; ex.shape(net.io.0).numel()];
        let mut labels = vec![0.0; batch];
        fill_eval(set, 0, &mut x, &mut labels)?;
        ex.set_elems(net.io.0, &x)?;
        ex.set_elems(net.io.1, &labels)?;
        ex.train = true;
        ex.forward()?;
        let loss = ex.scalar(net.loss)?;
        ex.backward(net.loss, &[GROUP_ARCH, GROUP_W])?;
        let params: Vec<usize> =
            (0..nodes.len()).filter(|&i| matches!(ex.tape.nodes[nodes[i]].kind, Kind::Param { .. })).collect();
        let ours: Vec<String> = params.iter().map(|&i| names[i].clone()).collect();
        let theirs = darts_names(&ours, &file.network)?;
        let mut data = vec![("loss".to_string(), Dtype::F64, vec![], loss.to_le_bytes().to_vec())];
        for (&i, (name, layout)) in params.iter().zip(theirs) {
            let g = ex.get_grad(nodes[i])?;
            let bytes = g.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect();
            data.push((name, Dtype::F32, torch_shape(&shapes[i], layout), bytes));
        }
        serialize(path, "--grads", data, HashMap::new())?;
    }
    Ok((scores, genotype))
}
