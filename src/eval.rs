//! `rarts eval`: a trained model, or a file in DARTS' layout (an evaluation
//! or a search network), read back and scored (`crate::score`); for a
//! search network, on request, the training-mode loss of one batch and its
//! gradients — what `scripts/crosscheck-torch.py` compares with PyTorch.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::Dtype;

use crate::backend::Backend;
use crate::data::{DataSpec, Dataset, fill_eval};
use crate::error::Result;
use crate::exec::Exec;
use crate::flags::need;
use crate::model::darts::{
    DartsFile, Network, darts_names, is_darts_file, load_darts, record_search, serialize, torch_shape,
};
use crate::model::{self, Model};
use crate::run_record::persistent_nodes;
use crate::score::{Scores, score};
use crate::shape::Shape;
use crate::space::darts;
use crate::space::trainable::trainable;
use crate::space::{GROUP_ARCH, GROUP_W, NetSpec, SearchSpace};
use crate::tape::Kind;

/// What `rarts eval` found.
pub struct Evaluated {
    /// The network's size and architecture, in words.
    pub size: String,
    pub arch: String,
    /// The epochs it was trained for, where its file says.
    pub epochs: Option<String>,
    /// Which split was scored (`test`, or `train` where the data have no test split).
    pub split: &'static str,
    pub classes: Vec<String>,
    pub scores: Scores,
}

/// `rarts eval`: the model in `model` (a `rarts train` folder or its
/// `model.safetensors`, or a file in DARTS' layout) on the test split of
/// `data` (the training split where the data have none). With `grads`
/// (search networks only), also the training-mode loss of one batch and
/// its gradients, written there (see `evaluate_search`).
pub fn evaluate<B: Backend<Elem = f32>>(
    be: B,
    model: &Path,
    genotype: Option<&str>,
    data: &DataSpec,
    batch: usize,
    grads: Option<&Path>,
) -> Result<Evaluated> {
    need(batch >= 1, "--batch", batch, "at least 1")?;
    let path = model::model_path(model);
    if is_darts_file(&path) {
        return evaluate_darts_file(be, &path, genotype, data, batch, grads);
    }
    if genotype.is_some() {
        crate::bail!("--genotype: {} records its network; --genotype is for files in DARTS' layout", path.display());
    }
    no_grads(grads, &path)?;
    let model = Model::load(model)?;
    let (set, split) = eval_split(data)?;
    let info = &model.info;
    let s = set.shape();
    if (s.c(), s.h(), s.w()) != info.image || set.num_classes() != info.net.classes() {
        crate::bail!(
            "--data {data} has {} classes of {}×{}×{} images; the model {} was trained on {} classes of {}×{}×{}",
            set.num_classes(),
            s.c(),
            s.h(),
            s.w(),
            model.path.display(),
            info.net.classes(),
            info.image.0,
            info.image.1,
            info.image.2
        );
    }
    let net = trainable(&info.net, batch, s)?;
    let mut ex = Exec::new(be, net.tape)?;
    model.load_into(&mut ex)?;
    let scores = score(&mut ex, &set, net.io, set.len())?;
    Ok(Evaluated {
        size: info.net.size(),
        arch: info.net.arch(),
        epochs: info.metadata.get("epochs_done").cloned(),
        split,
        classes: set.classes().to_vec(),
        scores,
    })
}

/// What `rarts eval` scores: the test split of `data`, or its training
/// split where it has none; and which it is.
fn eval_split(data: &DataSpec) -> Result<(Dataset, &'static str)> {
    let split = data.load()?;
    Ok(match split.test {
        Some(t) => (t, "test"),
        None => (split.train, "train"),
    })
}

/// An error when `--grads` was given for `path`, which holds a trained network.
fn no_grads(grads: Option<&Path>, path: &Path) -> Result<()> {
    if grads.is_some() {
        crate::bail!("--grads: {} holds a trained network; --grads is for a search network's file", path.display());
    }
    Ok(())
}

/// `rarts eval` of a file in DARTS' layout (see [`crate::model::darts`]): the
/// network from its tensors' shapes and the genotype, or a search network
/// with its α.
fn evaluate_darts_file<B: Backend<Elem = f32>>(
    be: B,
    path: &Path,
    genotype: Option<&str>,
    data: &DataSpec,
    batch: usize,
    grads: Option<&Path>,
) -> Result<Evaluated> {
    let file = DartsFile::load(path, genotype)?;
    file.no_genotype(genotype)?;
    let (in_channels, classes) = match &file.network {
        Network::Eval(cfg) => (cfg.in_channels, cfg.classes),
        Network::Search(cfg) => (cfg.in_channels, cfg.classes),
    };
    if !matches!(file.network, Network::Search(_)) {
        no_grads(grads, path)?;
    }
    let (set, split) = eval_split(data)?;
    let s = set.shape();
    if s.c() != in_channels || set.num_classes() != classes {
        crate::bail!(
            "--data {data} has {} classes of {}-channel images; the model {} takes {in_channels}-channel images into \
             {classes} classes",
            set.num_classes(),
            s.c(),
            path.display(),
        );
    }
    let epochs = file.metadata.get("epochs_done").cloned();
    let (size, arch, scores) = match &file.network {
        Network::Eval(cfg) => {
            let spec = NetSpec::Darts(cfg.clone());
            let net = trainable(&spec, batch, s)?;
            let mut ex = Exec::new(be, net.tape)?;
            load_darts(&mut ex, &file)?;
            (spec.size(), spec.arch(), score(&mut ex, &set, net.io, set.len())?)
        }
        Network::Search(cfg) => {
            let (scores, arch) = evaluate_search(be, &file, &set, batch, grads)?;
            (format!("search network, C={}, {} cells", cfg.c, cfg.layers), arch, scores)
        }
    };
    Ok(Evaluated { size, arch, epochs, split, classes: set.classes().to_vec(), scores })
}

/// `rarts eval` of a search network read from `file`: its scores on `set`
/// in evaluation mode (BN's running statistics) and, with `grads`, a
/// safetensors file there holding the training-mode loss of the first
/// `batch` images (`loss`, f64) and its gradient with respect to α and
/// every weight, under DARTS' names. Returns the scores and the genotype
/// the file's α stand for.
fn evaluate_search<B: Backend<Elem = f32>>(
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
    let net = record_search(cfg, Shape::nchw(batch, s.c(), s.h(), s.w()));
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
