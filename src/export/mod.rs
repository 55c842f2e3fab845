//! `rarts export`: a trained DARTS evaluation network, or one network of a
//! search (see [`search`]), written in quark0/darts' own layout
//! ([`crate::model::darts`]) for PyTorch.

pub mod search;

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::Dtype;

use crate::error::Result;
use crate::model::darts::{DartsFile, Network, darts_names, is_darts_file, serialize, torch_shape};
use crate::model::{self, Model};
use crate::space::NetSpec;

/// Which network of a RARTS search `rarts export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// The one trained on the training half (a DARTS search's only one).
    W,
    /// The one trained on the validation half.
    Y,
}

/// Writes the network in `model` to `out` under DARTS' names; returns the
/// number of tensors written. `model` is a `rarts train` folder or its
/// model file (the evaluation network), a DARTS search folder or its
/// checkpoint (network `net`, α included), or a file in DARTS' layout,
/// which is read into the network it describes and written again (with
/// `genotype` where its metadata has none).
pub fn export(model: &Path, out: &Path, net: Option<Net>, genotype: Option<&str>) -> Result<usize> {
    if let Some(ck) = search::checkpoint_in(model) {
        if genotype.is_some() {
            crate::bail!("--genotype: {} is a search; its α decide the cells", model.display());
        }
        return search::export(&ck, out, net.unwrap_or(Net::W));
    }
    if net.is_some() {
        crate::bail!("--net: {} holds one trained network; --net picks one of a search's", model.display());
    }
    let path = model::model_path(model);
    if is_darts_file(&path) {
        let file = DartsFile::load(&path, genotype)?;
        file.no_genotype(genotype)?;
        let (names, shapes) = file.network.tensors()?;
        let values = file.tensors_for(&names, &shapes)?;
        let tensors = names.into_iter().zip(shapes).zip(values).map(|((n, s), v)| (n, s, v)).collect();
        return write(out, &file.network, tensors, file.steps, file.metadata.clone());
    }
    if genotype.is_some() {
        crate::bail!("--genotype: {} records its network; --genotype is for files in DARTS' layout", path.display());
    }
    let m = Model::load(model)?;
    let NetSpec::Darts(cfg) = &m.info.net else {
        crate::bail!(
            "--model {}: a {} network; rarts export writes DARTS' evaluation network (NetworkCIFAR)",
            m.path.display(),
            m.info.net.space().name()
        );
    };
    let tensors = m
        .tensor_names()?
        .into_iter()
        .map(|n| m.tensor(&n).map(|(shape, v)| (n, shape, v)))
        .collect::<Result<Vec<_>>>()?;
    let steps: i64 = m.info.metadata.get("steps_done").and_then(|s| s.parse().ok()).unwrap_or(0);
    let settings =
        m.info.metadata.iter().filter(|(k, _)| k.starts_with("setting")).map(|(k, v)| (k.clone(), v.clone())).collect();
    write(out, &Network::Eval(cfg.clone()), tensors, steps, settings)
}

/// Writes `tensors` (our name, our shape, values) of `network` to `out`
/// under DARTS' names and PyTorch's shapes, a `num_batches_tracked` of
/// `steps` beside every BN, and `metadata` with the fields that describe
/// the network; returns the number of tensors written.
fn write(
    out: &Path,
    network: &Network,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    steps: i64,
    mut metadata: HashMap<String, String>,
) -> Result<usize> {
    let names: Vec<String> = tensors.iter().map(|t| t.0.clone()).collect();
    let theirs = darts_names(&names, network)?;
    let mut data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for ((_, shape, v), (name, layout)) in tensors.iter().zip(&theirs) {
        data.push((
            name.clone(),
            Dtype::F32,
            torch_shape(shape, *layout),
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
        if let Some(bn) = name.strip_suffix(".running_var") {
            data.push((format!("{bn}.num_batches_tracked"), Dtype::I64, vec![], steps.to_le_bytes().to_vec()));
        }
    }
    for (k, v) in network.metadata() {
        metadata.insert(k.into(), v);
    }
    serialize(out, "--out", data, metadata)
}
