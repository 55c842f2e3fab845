//! Genotype derivation from α.

use rarts::genotype::Genotype;
use rarts::space::darts::PRIMITIVES;

fn idx(name: &str) -> usize {
    PRIMITIVES.iter().position(|p| *p == name).unwrap()
}

/// α that makes `genes` the answer: the chosen (op, edge) pairs get a large
/// logit, the rest small ones; `none` larger still, to prove it is skipped.
fn alpha_for(genes: &[(&str, usize)]) -> Vec<f64> {
    let mut a = vec![0.0; 14 * 8];
    let mut start = 0;
    for node in 0..4 {
        for e in start..start + node + 2 {
            a[e * 8] = 5.0; // none dominates every row
        }
        for (rank, (op, j)) in genes[2 * node..2 * node + 2].iter().enumerate() {
            a[(start + j) * 8 + idx(op)] = 3.0 - rank as f64;
        }
        start += node + 2;
    }
    a
}

#[test]
fn recovers_the_published_darts_v2_cells() {
    // The built-in DARTS_V2 is checked against SPEC §3 below.
    let published = v2();
    let (normal, reduce) = (published.normal.clone(), published.reduce.clone());
    let g = Genotype::from_alphas(&alpha_for(&normal), &alpha_for(&reduce), 4, 4);
    assert_eq!(g.normal, normal.to_vec());
    assert_eq!(g.reduce, reduce.to_vec());
    assert!(g.is_valid(4));
    assert_eq!(
        g.to_text(),
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), \
         ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], \
         reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), \
         ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
    );
    let json = g.to_json(&alpha_for(&normal), &alpha_for(&reduce));
    assert!(json.starts_with("{\"genotype\": {\"normal\": [[\"sep_conv_3x3\", 0]"));
    assert_eq!(json.matches('[').count(), json.matches(']').count());
}

#[test]
fn edge_strength_ignores_none() {
    // Node 0: edge 0 has the largest `none` but edge 1's best real op wins.
    let mut a = vec![0.0; 14 * 8];
    a[0] = 9.0; // edge 0 none
    a[idx("avg_pool_3x3")] = 1.0;
    a[8 + idx("dil_conv_5x5")] = 2.0;
    let g = Genotype::from_alphas(&a, &a, 4, 4);
    assert_eq!(g.normal[0], ("dil_conv_5x5", 1));
    assert_eq!(g.normal[1].1, 0);
}

// ---- reading a genotype back ------------------------------------------------

use rarts::genotype::{DARTS_V1, DARTS_V2, STEPS};
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rarts-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn v2() -> Genotype {
    Genotype::builtin("DARTS_V2").expect("DARTS_V2 is built in")
}

#[test]
fn built_in_cells_are_the_published_ones() {
    let g = v2();
    // SPEC §3 lists the DARTS_V2 cells.
    let normal = [
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ];
    let reduce = [
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ];
    assert_eq!(g.normal, normal.to_vec());
    assert_eq!(g.reduce, reduce.to_vec());
    assert_eq!((g.normal_concat.clone(), g.reduce_concat.clone()), (vec![2, 3, 4, 5], vec![2, 3, 4, 5]));
    assert_eq!(Genotype::builtin("DARTS"), Some(g), "genotypes.py: DARTS = DARTS_V2");
    let v1 = Genotype::builtin("DARTS_V1").unwrap();
    assert_eq!(v1.normal[0], ("sep_conv_3x3", 1));
    assert_eq!(v1.normal[7], ("skip_connect", 2));
    assert_eq!(v1.reduce[7], ("avg_pool_3x3", 0));
    assert!(v1.is_valid(STEPS));
    assert_eq!(Genotype::builtin("DARTS_V3"), None);
}

#[test]
fn text_and_json_round_trip() {
    let mut all = vec![Genotype::builtin("DARTS_V1").unwrap(), v2()];
    all.extend((0..12).map(Genotype::random));
    let alpha = vec![0.0; 14 * 8];
    for g in all {
        let text = g.to_text();
        assert_eq!(Genotype::parse(&text, "text").unwrap(), g, "{text}");
        let json = g.to_json(&alpha, &alpha);
        assert_eq!(Genotype::parse(&json, "json").unwrap(), g, "{json}");
    }
    // The constants are genotypes.py's lines, which to_text reproduces.
    assert_eq!(v2().to_text(), DARTS_V2);
    assert_eq!(Genotype::builtin("DARTS_V1").unwrap().to_text(), DARTS_V1);
}

#[test]
fn python_forms_with_range_and_any_whitespace_parse() {
    let text = "Genotype(\n  normal = [\n    (\"sep_conv_3x3\", 0),\n    ('sep_conv_3x3', 1),\n    ('sep_conv_3x3',0),\
        ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0),\n\t('skip_connect', 0), ('dil_conv_3x3', 2),\n  ],\n\
        normal_concat = range(2, 6),\n  reduce_concat=range( 2 ,6 ), reduce = [['max_pool_3x3', 0], ('max_pool_3x3', 1), \
        ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), \
        ('max_pool_3x3', 1)],\n)\n";
    assert_eq!(Genotype::parse(text, "multi-line").unwrap(), v2());
    // Positional fields, as the namedtuple allows.
    let g = v2();
    let pos = format!(
        "Genotype({:?}, [2, 3, 4, 5], {:?}, range(2, 6))",
        g.normal.iter().map(|(o, j)| format!("('{o}', {j})")).collect::<Vec<_>>(),
        g.reduce.iter().map(|(o, j)| format!("('{o}', {j})")).collect::<Vec<_>>()
    )
    .replace('"', "");
    assert_eq!(Genotype::parse(&pos, "positional").unwrap(), g);
}

#[test]
fn random_genotypes_are_valid_deterministic_and_vary() {
    let mut seen = Vec::new();
    let mut ops = std::collections::BTreeSet::new();
    let mut inputs = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let g = Genotype::random(seed);
        assert!(g.is_valid(STEPS), "seed {seed}: {}", g.to_text());
        assert_eq!(Genotype::random(seed), g, "seed {seed} is deterministic");
        assert_eq!(Genotype::from_source(&format!("random:{seed}")).unwrap(), g);
        for cell in [&g.normal, &g.reduce] {
            for (node, pair) in cell.chunks(2).enumerate() {
                assert_ne!(pair[0].1, pair[1].1, "seed {seed}: node {node} takes two distinct inputs");
                inputs.insert((node, pair[0].1));
                inputs.insert((node, pair[1].1));
            }
            ops.extend(cell.iter().map(|(op, _)| *op));
        }
        assert!(!seen.contains(&g), "seed {seed} repeats an earlier genotype");
        seen.push(g);
    }
    assert_eq!(ops.len(), 7, "every op but none is drawn: {ops:?}");
    assert!(!ops.contains("none"));
    assert_eq!(inputs.len(), 2 + 3 + 4 + 5, "every earlier state is drawn for every node");
}

#[test]
fn from_source_reads_names_inline_text_files_and_directories() {
    let g = Genotype::random(3);
    assert_eq!(Genotype::from_source("  DARTS_V2\n").unwrap(), v2());
    assert_eq!(Genotype::from_source(&g.to_text()).unwrap(), g);
    assert_eq!(Genotype::from_source(&g.to_json(&[0.0; 112], &[0.0; 112])).unwrap(), g);

    // A search --out directory: genotype.json first, else genotype.txt.
    let both = tmp("geno-both");
    std::fs::write(both.join("genotype.json"), g.to_json(&[0.0; 112], &[0.0; 112]) + "\n").unwrap();
    std::fs::write(both.join("genotype.txt"), v2().to_text() + "\n").unwrap();
    assert_eq!(Genotype::from_source(both.to_str().unwrap()).unwrap(), g);
    let txt = tmp("geno-txt");
    std::fs::write(txt.join("genotype.txt"), v2().to_text() + "\n").unwrap();
    assert_eq!(Genotype::from_source(txt.to_str().unwrap()).unwrap(), v2());
    // A file in either form, whatever its name.
    assert_eq!(Genotype::from_source(both.join("genotype.json").to_str().unwrap()).unwrap(), g);
    assert_eq!(Genotype::from_source(txt.join("genotype.txt").to_str().unwrap()).unwrap(), v2());
    let _ = std::fs::remove_dir_all(both);
    let _ = std::fs::remove_dir_all(txt);
}

/// `src` (given to `from_source`) fails with a message holding every needle.
fn fails(src: &str, needles: &[&str]) {
    let e = match Genotype::from_source(src) {
        Ok(g) => panic!("{src:?} parsed as {}", g.to_text()),
        Err(e) => e.to_string(),
    };
    for n in needles {
        assert!(e.contains(n), "error for {src:?} lacks {n:?}: {e}");
    }
}

fn v2_with(from: &str, to: &str) -> String {
    let t = v2().to_text();
    assert!(t.contains(from), "{from} not in {t}");
    t.replacen(from, to, 1)
}

#[test]
fn every_bad_source_is_an_error_naming_the_problem() {
    let inline = "genotype `Genotype(";
    fails("", &["empty", "DARTS_V2", "random:SEED"]);
    fails("DARTS_V3", &["`DARTS_V3`", "no such file", "DARTS_V1", "random:SEED"]);
    fails("random:x", &["`random:x`", "SEED"]);
    fails("random:-1", &["`random:-1`", "SEED"]);
    fails(
        &v2_with("sep_conv_3x3", "sep_conv_7x7"),
        &[inline, "normal gene 0", "unknown op 'sep_conv_7x7'", "dil_conv_5x5"],
    );
    fails(&v2_with("('dil_conv_3x3', 2)", "('none', 2)"), &[inline, "normal gene 7", "'none' cannot be chosen"]);
    fails(
        &v2_with("('sep_conv_3x3', 1)", "('sep_conv_3x3', 2)"),
        &[inline, "normal gene 1", "node 0 can take states 0..=1"],
    );
    fails(&v2_with("('max_pool_3x3', 1)", "('max_pool_3x3', 9)"), &["reduce gene 1", "node 0"]);
    fails(&v2_with("('sep_conv_3x3', 0), ", ""), &[inline, "normal has 7 genes; expected 8"]);
    fails(&v2_with(", ('max_pool_3x3', 1)]", ", ('max_pool_3x3', 1), ('max_pool_3x3', 1)]"), &["reduce has 9 genes"]);
    fails(&v2_with(", reduce_concat=[2, 3, 4, 5]", ""), &[inline, "no `reduce_concat`"]);
    fails(&v2_with("reduce_concat", "normal_concat"), &["`normal_concat` is given twice"]);
    fails(&v2_with("reduce_concat", "reduce_cat"), &["unknown field `reduce_cat`", "normal_concat"]);
    fails(
        &v2_with("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 4, 6]"),
        &["normal_concat: 6 is not an intermediate node"],
    );
    fails(&v2_with("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 3]"), &["normal_concat: node 3 appears twice"]);
    fails(&v2_with("normal_concat=[2, 3, 4, 5]", "normal_concat=[]"), &["normal_concat is empty"]);
    fails(&v2_with("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6, 1)"), &["normal_concat: expected"]);
    fails(&v2_with("('sep_conv_3x3', 0)", "('sep_conv_3x3', -1)"), &["normal gene 0", "negative"]);
    fails(&v2_with("('sep_conv_3x3', 0)", "('sep_conv_3x3', 0.0)"), &["normal gene 0", "an integer"]);
    fails(&v2_with("('sep_conv_3x3', 0)", "('sep_conv_3x3')"), &["normal gene 0", "(op, input) pair"]);
    fails(&v2_with("('sep_conv_3x3', 0)", "(sep_conv_3x3, 0)"), &["normal gene 0", "op name in quotes"]);
    // The quote closes at the next one, which leaves `sep_conv_3x3` outside a string.
    fails(&v2_with("('sep_conv_3x3', 0)", "('sep_conv_3x3, 0)"), &["line 1, column 40", "expected `,` or `)`"]);
    fails("Genotype(normal=[('sep_conv_3x3", &["line 1, column 19", "string is not closed"]);
    fails(&v2_with("])", "]"), &["expected `,` or `)`", "the end of the input"]);
    fails(&(v2().to_text() + " extra"), &["line 1", "unexpected `extra`"]);
    fails(&format!("Genotype(normal={}1{})", "[".repeat(40), "]".repeat(40)), &["nested"]);
    fails("{\"genotype\": [1, 2]}", &["genotype `{", "\"genotype\" should be an object"]);
    fails("{\"normal\": [", &["expected a value", "the end of the input"]);

    // Files and directories name their path.
    let dir = tmp("geno-bad");
    fails(dir.to_str().unwrap(), &[dir.to_str().unwrap(), "neither genotype.json nor genotype.txt"]);
    let file = dir.join("genotype.txt");
    std::fs::write(&file, "Genotype(normal=[\n  ('sep_conv_3x3', 0)\n  ('sep_conv_3x3', 1)])\n").unwrap();
    fails(file.to_str().unwrap(), &[file.to_str().unwrap(), "line 3, column 3", "expected `,` or `]`"]);
    std::fs::write(&file, "").unwrap();
    fails(dir.to_str().unwrap(), &["genotype.txt", "expected a value, found the end of the input"]);
    let _ = std::fs::remove_dir_all(dir);

    // Not a Genotype call at all.
    let e = Genotype::parse("Phenotype(normal=[])", "pasted").unwrap_err().to_string();
    assert!(e.contains("pasted") && e.contains("expected Genotype(...), found Phenotype(...)"), "{e}");
}

/// Every prefix of a valid text or JSON genotype is an error, never a panic,
/// and so is every one-byte corruption.
#[test]
fn truncated_or_corrupted_input_never_panics() {
    let g = v2();
    for src in [g.to_text(), g.to_json(&[0.0; 112], &[0.0; 112])] {
        for cut in (0..src.len()).filter(|&i| src.is_char_boundary(i)) {
            assert!(Genotype::parse(&src[..cut], "prefix").is_err(), "prefix {cut} parsed");
        }
        for i in 0..src.len().min(400) {
            for b in [b'(', b')', b'[', b'\'', b'"', b'-', b'9', b'x', b'=', b',', b'{', b'\\', b'.', b'e'] {
                let mut bytes = src.clone().into_bytes();
                bytes[i] = b;
                if let Ok(s) = String::from_utf8(bytes) {
                    let _ = Genotype::parse(&s, "corrupted");
                }
            }
        }
    }
    assert!(Genotype::parse("Genotype(normal=[('é', 0)])", "x").unwrap_err().to_string().contains("unknown op 'é'"));
    assert!(Genotype::parse("é", "x").unwrap_err().to_string().contains("found `é`"));
}
