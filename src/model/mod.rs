//! A trained network in the safetensors format (`model.safetensors`): every
//! weight and BatchNorm running statistic under its tape name, as f32 in the
//! engine's four-dimensional NCHW shape (a vector of n is `[n, 1, 1, 1]`),
//! and in the metadata the space, the architecture (a DARTS genotype or an
//! NB201 cell string) and every setting needed to build the network again.
//! A file without a `space` field is a DARTS network (the first format).

pub mod darts;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use crate::backend::Backend;
use crate::error::{Context, Error, Result};
use crate::exec::Exec;
use crate::genotype::Genotype;
use crate::run_record::persistent_nodes;
use crate::space::NetSpec;
use crate::space::eval::EvalNetConfig;
use crate::space::nb201::{Nb201Cell, Nb201Config};
use crate::space::width::{WidthConfig, Widths};

pub const MODEL_FILE: &str = "model.safetensors";
const FORMAT: &str = "rarts-model-1";

/// What a model file says about its network.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub net: NetSpec,
    /// Input image `(c, h, w)` the network was trained on.
    pub image: (usize, usize, usize),
    /// Every metadata field, for display (genotype, data, epochs, …).
    pub metadata: HashMap<String, String>,
}

/// The model file's bytes: `ex`'s persistent tensors and `info` (its
/// `metadata` adds to the fields written from `net` and `image`).
pub fn to_bytes<B: Backend>(ex: &Exec<B>, info: &ModelInfo) -> Result<Vec<u8>> {
    let nodes = persistent_nodes(&ex.tape);
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = nodes
        .iter()
        .map(|&n| {
            let v: Vec<u8> = ex.get(n)?.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect();
            Ok((ex.tape.nodes[n].name.clone(), ex.shape(n).0.to_vec(), v))
        })
        .collect::<Result<_>>()?;
    let mut names: Vec<&str> = data.iter().map(|d| d.0.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        crate::bail!("model: two tensors are named '{}'", w[0]);
    }
    let views = data
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.as_str(), v))
                .map_err(|e| Error(format!("model: {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = info.metadata.clone();
    let mut fields = vec![
        ("format", FORMAT.to_string()),
        ("space", info.net.space().name().to_string()),
        ("genotype", info.net.arch()),
        ("classes", info.net.classes().to_string()),
        ("image", format!("{}x{}x{}", info.image.0, info.image.1, info.image.2)),
    ];
    match &info.net {
        NetSpec::Darts(n) => fields.extend([
            ("c", n.c.to_string()),
            ("layers", n.layers.to_string()),
            ("auxiliary", n.auxiliary.to_string()),
        ]),
        NetSpec::Nb201(n, _) => {
            fields.extend([("c", n.c.to_string()), ("cells_per_stage", n.cells_per_stage.to_string())])
        }
        NetSpec::Width(n, _) => fields.push(("depth", n.depth.to_string())),
    }
    for (k, v) in fields {
        meta.insert(k.into(), v);
    }
    sort_metadata(safetensors::serialize(views, Some(meta)).map_err(|e| Error(format!("model: {e}")))?)
}

/// `path` itself if it is a file, else `path/model.safetensors`.
pub fn model_path(path: &Path) -> PathBuf {
    if path.is_dir() { path.join(MODEL_FILE) } else { path.to_path_buf() }
}

/// A model file read into memory, its metadata checked.
pub struct Model {
    pub path: PathBuf,
    pub info: ModelInfo,
    bytes: Vec<u8>,
}

impl Model {
    pub fn load(path: &Path) -> Result<Model> {
        let dir = path;
        let path = model_path(path);
        let what = path.display().to_string();
        if dir.is_dir() && !path.exists() && dir.join("checkpoint.bin").is_file() && dir.join("alpha.jsonl").exists() {
            crate::bail!(
                "--model {}: a search's folder, which holds a supernet, not a trained network; to evaluate one of \
                 its networks, export it first (`rarts export --model {0} --out FILE`, then `rarts eval --model \
                 FILE`); to train what it found, `rarts train --genotype {0}`",
                dir.display()
            );
        }
        let bytes = std::fs::read(&path).ctx(|| format!("--model {what}: cannot read the model"))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error(format!("--model {what}: not a safetensors file ({e})")))?;
        let m = meta.metadata().clone().unwrap_or_default();
        let field = |k: &str| m.get(k).ok_or_else(|| Error(format!("--model {what}: metadata has no '{k}'")));
        let num = |k: &str| -> Result<usize> {
            let v = field(k)?;
            v.parse().map_err(|_| Error(format!("--model {what}: metadata '{k}' is '{v}', expected a whole number")))
        };
        if field("format")? != FORMAT {
            crate::bail!("--model {what}: format '{}', expected {FORMAT}", field("format")?);
        }
        let image: Vec<usize> = field("image")?.split('x').filter_map(|d| d.parse().ok()).collect();
        let [ic, ih, iw] = image[..] else {
            crate::bail!("--model {what}: metadata 'image' is '{}', expected CxHxW", field("image")?);
        };
        let net = match m.get("space").map_or("darts", String::as_str) {
            "darts" => {
                let genotype = Genotype::parse(field("genotype")?, &format!("{what} metadata 'genotype'"))?;
                NetSpec::Darts(EvalNetConfig {
                    auxiliary: field("auxiliary")? == "true",
                    ..EvalNetConfig::new(num("c")?, num("layers")?, num("classes")?, ic, genotype)
                })
            }
            "nb201" => {
                let cell = Nb201Cell::parse(field("genotype")?).map_err(|e| Error(format!("--model {what}: {e}")))?;
                NetSpec::Nb201(Nb201Config::new(num("c")?, num("cells_per_stage")?, num("classes")?, ic), cell)
            }
            "width" => {
                let cfg = WidthConfig::new(num("depth")?, num("classes")?, ic, (ih, iw));
                cfg.check().map_err(|e| Error(format!("--model {what}: {e}")))?;
                let w = Widths::parse(&cfg, field("genotype")?, &format!("{what} metadata 'genotype'"))?;
                NetSpec::Width(cfg, w)
            }
            other => crate::bail!("--model {what}: metadata 'space' is '{other}', expected darts, nb201 or width"),
        };
        Ok(Model { path, info: ModelInfo { net, image: (ic, ih, iw), metadata: m }, bytes })
    }

    /// Every tensor's name, sorted.
    pub fn tensor_names(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self.open()?.names().into_iter().map(String::from).collect();
        v.sort();
        Ok(v)
    }

    /// One tensor of the file by name: its shape and values, checked finite.
    pub fn tensor(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        self.read(&self.open()?, name)
    }

    fn open(&self) -> Result<SafeTensors<'_>> {
        SafeTensors::deserialize(&self.bytes).map_err(|e| Error(format!("--model {}: {e}", self.path.display())))
    }

    fn read(&self, st: &SafeTensors<'_>, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let what = self.path.display();
        let t = st.tensor(name).map_err(|_| Error(format!("--model {what}: no tensor '{name}'")))?;
        if t.dtype() != Dtype::F32 {
            crate::bail!("--model {what}: tensor '{name}' is {:?}; expected F32", t.dtype());
        }
        let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            crate::bail!("--model {what}: tensor '{name}' holds {} at element {i}", v[i]);
        }
        Ok((t.shape().to_vec(), v))
    }

    /// Puts every persistent tensor of `ex` from the file, checking names and shapes.
    pub fn load_into<B: Backend<Elem = f32>>(&self, ex: &mut Exec<B>) -> Result<()> {
        self.load_into_with(ex, &[])
    }

    /// As [`Model::load_into`], but the tensors named in `replaced` take
    /// those values instead of the file's (a pruned network's).
    pub fn load_into_with<B: Backend<Elem = f32>>(
        &self,
        ex: &mut Exec<B>,
        replaced: &[(String, Vec<f32>)],
    ) -> Result<()> {
        let what = self.path.display();
        let st = self.open()?;
        for n in persistent_nodes(&ex.tape) {
            let name = ex.tape.nodes[n].name.clone();
            let want = ex.shape(n);
            if let Some((_, v)) = replaced.iter().find(|r| r.0 == name) {
                if v.len() != want.numel() {
                    crate::bail!(
                        "--model {what}: '{name}' has {} values after pruning; expected {}",
                        v.len(),
                        want.numel()
                    );
                }
                ex.set_elems(n, v)?;
                continue;
            }
            let (shape, v) = self.read(&st, &name)?;
            if shape != want.0 {
                crate::bail!("--model {what}: tensor '{name}' is {shape:?}; expected {:?}", want.0);
            }
            ex.set_elems(n, &v)?;
        }
        // Every tensor of the file must be one of the network's: an extra one
        // means the file is not the network it says it is.
        let known: std::collections::HashSet<&str> =
            persistent_nodes(&ex.tape).into_iter().map(|n| ex.tape.nodes[n].name.as_str()).collect();
        let extra: Vec<String> = st.names().into_iter().filter(|n| !known.contains(n)).map(String::from).collect();
        if let Some(first) = extra.first() {
            crate::bail!(
                "--model {what}: {} tensor(s) the {} network does not have, the first '{first}'; expected exactly \
                 the tensors rarts wrote for it",
                extra.len(),
                self.info.net.size()
            );
        }
        Ok(())
    }
}

/// `bytes` (a safetensors file) with the pairs of its `__metadata__` object
/// in sorted order. The writer takes the metadata as a `HashMap`, so its
/// order changes from one process to the next; sorted, a file written twice
/// from the same state is the same bytes. Each pair is moved as it was
/// written (escapes and all), so the header keeps its length and the tensor
/// offsets stay valid. A file without metadata comes back unchanged.
pub fn sort_metadata(mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    const OPEN: &[u8] = b"{\"__metadata__\":{";
    let bad = || Error("safetensors header: not the layout of its writer (metadata first)".into());
    let n = u64::from_le_bytes(bytes.get(..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
    let header = bytes.get(8..8 + n).ok_or_else(bad)?;
    if !header.starts_with(OPEN) {
        return Ok(bytes);
    }
    // The raw `"key":"value"` pairs up to the metadata's closing brace
    // (`quotes` counts the strings opened in the current pair).
    let mut pairs: Vec<&[u8]> = Vec::new();
    let (mut i, mut start, mut in_str, mut quotes) = (OPEN.len(), OPEN.len(), false, 0);
    let end = loop {
        let c = *header.get(i).ok_or_else(bad)?;
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => {
                    in_str = true;
                    quotes += 1;
                }
                b',' | b'}' if quotes == 2 => {
                    pairs.push(&header[start..i]);
                    (start, quotes) = (i + 1, 0);
                    if c == b'}' {
                        break i;
                    }
                }
                b'}' if quotes == 0 && pairs.is_empty() => break i,
                b':' | b' ' => {}
                _ => return Err(bad()),
            }
        }
        i += 1;
    };
    let mut sorted = pairs.clone();
    sorted.sort();
    let joined = sorted.join(&b","[..]);
    debug_assert_eq!(joined.len(), end - OPEN.len());
    let out: Vec<u8> = joined;
    bytes[8 + OPEN.len()..8 + end].copy_from_slice(&out);
    Ok(bytes)
}
