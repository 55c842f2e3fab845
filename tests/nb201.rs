//! The NAS-Bench-201 space (SPEC §6): the trained network's weight count,
//! the arch string both ways, the derivation from α, and the search network
//! recorded, run and differentiated.

use rarts::backend::Cpu;
use rarts::exec::Exec;
use rarts::ops::record::*;
use rarts::shape::Shape;
use rarts::space::nb201::{EDGES, Nb201Cell, Nb201Config, OPS, alphas, edge, supernet, trained_net};
use rarts::space::{GROUP_ARCH, GROUP_W};
use rarts::tape::Tape;

fn all(op: &str) -> Nb201Cell {
    let k = OPS.iter().position(|&o| o == op).unwrap();
    Nb201Cell { ops: [k; EDGES] }
}

/// NATS-Bench's network of all `nor_conv_3x3` edges (C = 16, 5 cells a
/// stage, 10 classes, 3 input channels) has 1,531,546 weights, BN's γ and β
/// included.
#[test]
fn trained_network_weight_count() {
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(2, 3, 32, 32), "x");
    let cfg = Nb201Config::new(16, 5, 10, 3);
    trained_net(&mut t, &cfg, x, &all("nor_conv_3x3"), GROUP_W);
    assert_eq!(t.numel(GROUP_W), 1_531_546);
    // Of all skips: the stem, the two residual blocks, the last BN and the classifier.
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(2, 3, 32, 32), "x");
    trained_net(&mut t, &cfg, x, &all("skip_connect"), GROUP_W);
    let stem = 3 * 16 * 9 + 2 * 16;
    let res = |a: usize, b: usize| a * b * 9 + 2 * b + b * b * 9 + 2 * b + a * b;
    assert_eq!(t.numel(GROUP_W), stem + res(16, 32) + res(32, 64) + 2 * 64 + 64 * 10 + 10);
}

#[test]
fn arch_strings_both_ways() {
    let s = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|";
    let c = Nb201Cell::parse(s).unwrap();
    assert_eq!(c.to_arch_str(), s);
    assert_eq!(c.ops[edge(1, 0)], 3);
    assert_eq!(c.ops[edge(2, 0)], 0);
    assert_eq!(c.ops[edge(3, 2)], 1);
    assert_eq!(c.skips_and_parameterless(), (2, 4));
    for (bad, says) in [
        ("|nor_conv_3x3~0|+|none~0|skip_connect~1|", "2 nodes"),
        ("|conv~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|", "unknown op 'conv'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "input 0 reads '~1'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 lists 1 inputs"),
        ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "not enclosed"),
    ] {
        let e = Nb201Cell::parse(bad).unwrap_err().to_string();
        assert!(e.contains(says) && e.contains("expected |op~0|"), "{bad}: {e}");
    }
}

/// A cell is cut off when no path of edges other than `none` leads from
/// node 0 to node 3; its JSON says which.
#[test]
fn cut_off_cells_are_found() {
    for (arch, reaches) in [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", true),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", false),
        // Only through node 1, only through node 2, only directly.
        ("|skip_connect~0|+|none~0|none~1|+|none~0|avg_pool_3x3~1|none~2|", true),
        ("|none~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|skip_connect~2|", true),
        ("|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|", true),
        // Node 1 fed only by `none` (a cell a search found), and node 2
        // reached but not read.
        ("|none~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|", false),
        ("|none~0|+|skip_connect~0|none~1|+|none~0|nor_conv_3x3~1|none~2|", false),
    ] {
        let c = Nb201Cell::parse(arch).unwrap();
        assert_eq!(c.input_reaches_output(), reaches, "{arch}");
        assert!(c.to_json(None).contains(&format!("\"input_reaches_output\":{reaches}")), "{arch}");
    }
}

/// The strongest op of each edge, `none` included; ties go to the first.
#[test]
fn derivation_is_argmax_per_edge() {
    let mut a = vec![0.0; EDGES * OPS.len()];
    let want = [0usize, 3, 1, 4, 2, 3];
    for (e, &k) in want.iter().enumerate() {
        a[e * OPS.len() + k] = 1.0 + e as f64;
    }
    assert_eq!(Nb201Cell::from_alpha(&a).unwrap().ops, want);
    assert_eq!(Nb201Cell::from_alpha(&vec![0.5; EDGES * OPS.len()]).unwrap().ops, [0; EDGES]);
    assert!(Nb201Cell::from_alpha(&[0.0; 3]).is_err());
    let json = Nb201Cell { ops: want }.to_json(Some(&vec![0.2; EDGES * OPS.len()]));
    assert!(json.contains("\"arch\":\"|none~0|+|nor_conv_3x3~0|skip_connect~1|+|"), "{json}");
    assert!(json.contains("\"softmax_alpha\":[[0.20000,"), "{json}");
}

/// The search network runs forward and backward, and every α entry gets a
/// gradient (`none`'s through the softmax).
#[test]
fn search_network_runs_and_alpha_gets_gradients() {
    let mut t = Tape::new();
    let x = t.input(Shape::nchw(2, 3, 8, 8), "x");
    let labels = t.input(Shape::vec(2), "labels");
    let (a, w) = alphas(&mut t, GROUP_ARCH);
    let n = supernet(&mut t, &Nb201Config::new(4, 1, 3, 3), x, w, GROUP_W);
    let loss = t.cross_entropy(n.logits, labels);
    let mut ex = Exec::new(Cpu::<f64>::new(), t).unwrap();
    ex.init_params(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3)).unwrap();
    let xs: Vec<f64> = (0..2 * 3 * 64).map(|i| ((i * 37 % 101) as f64 / 50.0) - 1.0).collect();
    ex.set(x, &xs).unwrap();
    ex.set(labels, &[0.0, 2.0]).unwrap();
    ex.forward().unwrap();
    assert!(ex.scalar(loss).unwrap().is_finite());
    ex.backward(loss, &[GROUP_W, GROUP_ARCH]).unwrap();
    let g = ex.get_grad(a).unwrap();
    for e in 0..EDGES {
        for k in 0..OPS.len() {
            let v = g[e * OPS.len() + k];
            assert!(v.is_finite() && v != 0.0, "edge {e} op {}: gradient {v}", OPS[k]);
        }
    }
}

/// A search still running (a log.jsonl, no genotype file yet) stands for
/// the cell its last whole log line's softmax(α) picks; a line the search
/// is still writing is skipped.
#[test]
fn a_running_search_folder_gives_its_last_epochs_cell() {
    let dir = std::env::temp_dir().join(format!("rarts-nb201-running-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rows = |pick: usize| -> Vec<Vec<f64>> {
        (0..EDGES)
            .map(|e| (0..OPS.len()).map(|o| if o == (e + pick) % OPS.len() { 0.4 } else { 0.15 }).collect())
            .collect()
    };
    let line = |epoch: usize, m: &[Vec<f64>]| {
        let m: Vec<String> =
            m.iter().map(|r| format!("[{}]", r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","))).collect();
        format!("{{\"epoch\":{epoch},\"softmax_alpha_cell\":[{}]}}\n", m.join(","))
    };
    let (first, last) = (rows(0), rows(2));
    let text = format!("{}{}{{\"epoch\":2,\"softmax_alpha_cell\":[[0.1,0.2", line(0, &first), line(1, &last));
    std::fs::write(dir.join("log.jsonl"), text).unwrap();
    let got = Nb201Cell::from_source(dir.to_str().unwrap()).unwrap();
    assert_eq!(got, Nb201Cell::from_alpha(&last.concat()).unwrap());
    assert_ne!(got, Nb201Cell::from_alpha(&first.concat()).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}
