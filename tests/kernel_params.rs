//! Each kernel's scalar arguments are one struct declared twice, in Rust
//! (`kernel_params!` in the family's `mod.rs`) and in the family's `.cu`.
//! The `.cu` pins its struct's size and field offsets with `PARAMS_SIZE`
//! and `PARAMS_FIELD` (`static_assert`s: a field changed there alone fails
//! the kernel build); this test reads each `.cu` struct and its pins and
//! holds them to the Rust struct — names, C types, offsets, size — so that
//! a field changed on the Rust side alone fails here. It also checks that
//! every kernel takes only buffers and at most one params struct: no
//! positional scalars.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rarts::device::kernel_params::Layout;

/// What the `.cu` files declare.
#[derive(Default)]
struct Cu {
    /// `#define NAME number`.
    defines: BTreeMap<String, String>,
    /// Each struct's fields: (name, C type as the test reads it).
    structs: BTreeMap<String, Vec<(String, String)>>,
    /// `PARAMS_SIZE(S, n)`.
    sizes: BTreeMap<String, usize>,
    /// `PARAMS_FIELD(S, f, offset)`.
    offsets: BTreeMap<String, BTreeMap<String, usize>>,
    kernels: Vec<Kernel>,
}

/// A kernel's file, name and parameters as (C type, name).
struct Kernel {
    file: String,
    name: String,
    params: Vec<(String, String)>,
}

/// The text without `//` comments.
fn strip_comments(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// A C declaration `const float* x[MIX_MAX]` as (name, type): `ptr[MIX_MAX]`;
/// `unsigned long long mask` as (`mask`, `unsigned long long`).
fn declarator(ty: &str, decl: &str) -> (String, String) {
    let decl = decl.trim();
    let (decl, array) = match decl.split_once('[') {
        Some((d, rest)) => (d.trim(), format!("[{}]", rest.trim_end_matches(']').trim())),
        None => (decl, String::new()),
    };
    let pointer = ty.contains('*') || decl.starts_with('*');
    let name = decl.trim_start_matches('*').trim().to_string();
    let base = if pointer {
        "ptr".to_string()
    } else {
        ty.split_whitespace().filter(|w| *w != "const").collect::<Vec<_>>().join(" ")
    };
    (name, base + &array)
}

/// One field line `int nc, h, w` as its fields.
fn fields_of(line: &str) -> Vec<(String, String)> {
    let line = line.trim();
    if line.is_empty() {
        return Vec::new();
    }
    let mut parts = line.split(',');
    let first = parts.next().unwrap().trim();
    // The type is every word of the first declarator but its last.
    let cut = first.rfind(|c: char| c.is_whitespace() || c == '*').expect("a type before the name") + 1;
    let (ty, name) = first.split_at(cut);
    let ty = ty.trim().to_string();
    std::iter::once(declarator(&ty, name)).chain(parts.map(|d| declarator(&ty, d))).collect()
}

fn read_cu(dir: &Path) -> Cu {
    let mut cu = Cu::default();
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "cu" || e == "cuh")) {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let text = strip_comments(&std::fs::read_to_string(path).unwrap());
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() == 3 && w[0] == "#define" && w[2].chars().all(|c| c.is_ascii_digit()) {
                cu.defines.insert(w[1].to_string(), w[2].to_string());
            }
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("\nstruct ") {
            rest = &rest[at + "\nstruct ".len()..];
            let name = rest[..rest.find(|c: char| !c.is_alphanumeric() && c != '_').unwrap()].to_string();
            let (Some(open), Some(close)) = (rest.find('{'), rest.find("};")) else { continue };
            if open > rest.find(';').unwrap_or(usize::MAX) {
                continue; // a declaration, not a definition
            }
            let body = &rest[open + 1..close];
            cu.structs.insert(name, body.split(';').flat_map(fields_of).collect());
        }
        // The macros' own definitions are not uses.
        let uses: String =
            text.lines().filter(|l| !l.trim_start().starts_with("#define")).collect::<Vec<_>>().join("\n");
        let args = |call: &str, text: &str| -> Vec<Vec<String>> {
            let mut out = Vec::new();
            let mut rest = text;
            while let Some(at) = rest.find(call) {
                rest = &rest[at + call.len()..];
                let close = rest.find(')').unwrap();
                out.push(rest[..close].split(',').map(|a| a.trim().to_string()).collect());
            }
            out
        };
        for a in args("PARAMS_SIZE(", &uses) {
            cu.sizes.insert(a[0].clone(), a[1].parse().unwrap());
        }
        for a in args("PARAMS_FIELD(", &uses) {
            cu.offsets.entry(a[0].clone()).or_default().insert(a[1].clone(), a[2].parse().unwrap());
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("__global__ void ") {
            rest = &rest[at + "__global__ void ".len()..];
            let open = rest.find('(').unwrap();
            let close = rest.find(')').unwrap();
            let name = rest[..open].trim().to_string();
            let params = rest[open + 1..close].split(',').flat_map(fields_of).map(|(n, t)| (t, n)).collect();
            cu.kernels.push(Kernel { file: file.clone(), name, params });
        }
    }
    cu
}

fn kernels_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels")
}

/// Every difference between a Rust params struct and its `.cu` declaration.
fn differences(rust: &Layout, cu: &Cu) -> Vec<String> {
    let name = rust.name;
    let mut out = Vec::new();
    let Some(c_fields) = cu.structs.get(name) else {
        return vec![format!("{name}: no `struct {name}` in kernels/")];
    };
    let ours: Vec<(String, String)> = rust.fields.iter().map(|(f, t, _)| (f.to_string(), t.clone())).collect();
    if ours != *c_fields {
        out.push(format!("{name}: Rust fields {ours:?}, .cu fields {c_fields:?}"));
    }
    match cu.sizes.get(name) {
        Some(&n) if n == rust.size => {}
        Some(&n) => out.push(format!("{name}: PARAMS_SIZE {n} in the .cu, {} bytes in Rust", rust.size)),
        None => out.push(format!("{name}: no PARAMS_SIZ\x45({name}, …) in the .cu")),
    }
    let pins = cu.offsets.get(name).cloned().unwrap_or_default();
    for (f, _, offset) in &rust.fields {
        match pins.get(*f) {
            Some(o) if o == offset => {}
            Some(o) => out.push(format!("{name}.{f}: PARAMS_FIELD at {o} in the .cu, at {offset} in Rust")),
            None => out.push(format!("{name}.{f}: no PARAMS_FIELD in the .cu")),
        }
    }
    for f in pins.keys() {
        if !rust.fields.iter().any(|(g, _, _)| g == f) {
            out.push(format!("{name}.{f}: pinned in the .cu, not a field in Rust"));
        }
    }
    out
}

#[test]
fn every_params_struct_matches_its_cu_declaration() {
    let cu = read_cu(&kernels_dir());
    let rust = rarts::ops::kernel_params();
    let mut bad: Vec<String> = rust.iter().flat_map(|l| differences(l, &cu)).collect();
    let names: BTreeSet<&str> = rust.iter().map(|l| l.name).collect();
    for s in cu.sizes.keys() {
        if !names.contains(s.as_str()) {
            bad.push(format!("{s}: a params struct in kernels/ without its Rust declaration"));
        }
    }
    assert!(bad.is_empty(), "kernel params out of step:\n{}", bad.join("\n"));
    assert!(!rust.is_empty());
}

#[test]
fn every_kernel_takes_buffers_and_one_params_struct() {
    let cu = read_cu(&kernels_dir());
    let structs: BTreeSet<&str> = cu.sizes.keys().map(String::as_str).collect();
    let mut bad = Vec::new();
    for Kernel { file, name: kernel, params } in &cu.kernels {
        let scalars: Vec<String> = params
            .iter()
            .filter(|(t, _)| !t.starts_with("ptr") && !structs.contains(t.as_str()))
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        let structs_taken = params.iter().filter(|(t, _)| structs.contains(t.as_str())).count();
        if !scalars.is_empty() || structs_taken > 1 {
            bad.push(format!("{file}: {kernel}: scalar arguments {scalars:?}, {structs_taken} params structs"));
        }
    }
    assert!(cu.kernels.len() >= 60, "found only {} kernels", cu.kernels.len());
    assert!(bad.is_empty(), "kernels that take positional scalars:\n{}", bad.join("\n"));
}

/// The kernels a family launches (its `family_state!`) are exactly those
/// its `.cu` defines: none missing, none left over.
#[test]
fn every_family_loads_exactly_the_kernels_its_cu_defines() {
    let cu = read_cu(&kernels_dir());
    let defined: BTreeSet<(String, String)> =
        cu.kernels.iter().map(|k| (k.file.trim_end_matches(".cu").to_string(), k.name.clone())).collect();
    let loaded: BTreeSet<(String, String)> = rarts::ops::cuda_kernels()
        .into_iter()
        .flat_map(|(m, names)| names.iter().map(move |n| (m.to_string(), n.to_string())))
        .collect();
    let unloaded: Vec<_> = defined.difference(&loaded).collect();
    let undefined: Vec<_> = loaded.difference(&defined).collect();
    assert!(
        unloaded.is_empty() && undefined.is_empty(),
        "defined in kernels/ but launched by no family: {unloaded:?}; listed by a family but not defined: {undefined:?}"
    );
}

/// The reading of C declarations the test relies on.
#[test]
fn c_declarations_are_read() {
    assert_eq!(
        fields_of("int nc, h, w"),
        [("nc", "int"), ("h", "int"), ("w", "int")].map(|(a, b)| (a.into(), b.into()))
    );
    assert_eq!(fields_of("const float* x[MIX_MAX]"), vec![("x".to_string(), "ptr[MIX_MAX]".to_string())]);
    assert_eq!(fields_of("unsigned long long add"), vec![("add".to_string(), "unsigned long long".to_string())]);
    assert_eq!(fields_of("float *y"), vec![("y".to_string(), "ptr".to_string())]);
    let cu = read_cu(&kernels_dir());
    assert_eq!(cu.defines.get("MIX_MAX").map(String::as_str), Some("40"));
}
