//! `rarts eval`: a trained model, or a file in DARTS' layout, read back and
//! scored (`crate::score`).

use super::*;

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
/// its gradients, written there (see [`crate::export::search::evaluate`]).
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
    if crate::export::is_darts_file(&path) {
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
    let net = record(&info.net, batch, s)?;
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

/// Every weight and BN statistic of `ex` from a file in DARTS' layout.
pub(crate) fn load_darts<B: Backend<Elem = f32>>(ex: &mut Exec<B>, file: &crate::export::DartsFile) -> Result<()> {
    let nodes = run_record::persistent_nodes(&ex.tape);
    let names: Vec<String> = nodes.iter().map(|&n| ex.tape.nodes[n].name.clone()).collect();
    let shapes: Vec<Vec<usize>> = nodes.iter().map(|&n| ex.shape(n).0.to_vec()).collect();
    for (&n, v) in nodes.iter().zip(file.tensors_for(&names, &shapes)?) {
        ex.set_elems(n, &v)?;
    }
    Ok(())
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

/// `rarts eval` of a file in DARTS' layout (see [`crate::export`]): the
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
    use crate::export::{DartsFile, Network};
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
            let net = record(&spec, batch, s)?;
            let mut ex = Exec::new(be, net.tape)?;
            load_darts(&mut ex, &file)?;
            (spec.size(), spec.arch(), score(&mut ex, &set, net.io, set.len())?)
        }
        Network::Search(cfg) => {
            let (scores, arch) = crate::export::search::evaluate(be, &file, &set, batch, grads)?;
            (format!("search network, C={}, {} cells", cfg.c, cfg.layers), arch, scores)
        }
    };
    Ok(Evaluated { size, arch, epochs, split, classes: set.classes().to_vec(), scores })
}
