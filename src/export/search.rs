//! A DARTS search's network in quark0/darts' `cnn/model_search.py` layout:
//! [`export`] writes one network of a search checkpoint (a RARTS search
//! keeps `w` and `y` side by side in each tensor, `w` first) with α as
//! `alphas_normal` and `alphas_reduce` (`rarts eval` scores such a file).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Net;
use crate::backend::Part;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::json::Json;
use crate::model::MODEL_FILE;
use crate::model::darts::Network;
use crate::run_record::{SEARCH_FORMAT as CHECKPOINT_FORMAT, reads_as};
use crate::space::SearchSpace;
use crate::space::darts::{self, SuperNetConfig};

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
    if !reads_as(ck.get("format").unwrap_or("(none)"), CHECKPOINT_FORMAT) {
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
