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
