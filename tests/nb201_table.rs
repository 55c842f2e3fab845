//! The NAS-Bench-201 table: parsing (and its errors), rank and percentile,
//! `rarts lookup`, and the searches it judges. The tables are made here: all
//! 15,625 cells with made-up accuracies, three of them replaced by the real
//! rows of tests/data/nb201_rows.csv.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::*;
use rarts::space::nb201::Nb201Cell;
use rarts::space::nb201::table::{CELLS, HEADER, Nb201Table, cell_at, index};

/// The all-`skip_connect` cell (DARTS' published result on this space).
const ALL_SKIP: &str =
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|";
/// The best cell on CIFAR-10.
const BEST: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";
/// The table's first row.
const FIRST: &str = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|";

/// The real rows' accuracies, as NATS-Bench gives them.
const REAL: [(&str, [f64; 3]); 3] = [
    (FIRST, [85.86333333333334, 52.913333294677734, 26.6333332739936]),
    (ALL_SKIP, [54.29666666666666, 15.606666662597656, 16.322222197638617]),
    (BEST, [94.37333333333333, 73.21999999999998, 46.71111101277669]),
];

/// The real rows of tests/data/nb201_rows.csv, without its header.
fn real_rows() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nb201_rows.csv");
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(HEADER), "the data file's header");
    lines.map(str::to_string).collect()
}

/// Made-up accuracies of cell `i`: CIFAR-10 distinct and rising with `i`
/// (10 to 90, below the real best), CIFAR-100 `i mod 50` (so about 312 cells
/// share each value: ties), ImageNet16-120 falling with `i`.
fn made_up(i: usize) -> [f64; 3] {
    let t = i as f64 / CELLS as f64;
    [10.0 + 80.0 * t, (i % 50) as f64, 60.0 - 50.0 * t]
}

/// The table's rows in index order (cell `i` on line `i + 2`, after the
/// header), the three real rows in place of their cells' made-up ones.
fn rows() -> Vec<String> {
    let real: Vec<(usize, String)> =
        real_rows().into_iter().map(|l| (index(&Nb201Cell::parse(l.split(',').nth(3).unwrap()).unwrap()), l)).collect();
    assert_eq!(real.len(), 3);
    (0..CELLS)
        .map(|i| match real.iter().find(|(j, _)| *j == i) {
            Some((_, l)) => l.clone(),
            None => {
                let [a, b, c] = made_up(i);
                format!("{a},{b},{c},{},made-up", cell_at(i).to_arch_str())
            }
        })
        .collect()
}

/// The header and `rows` as the table file's text.
fn text(rows: &[String]) -> String {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

/// Every cell's accuracies as the table holds them, by index.
fn accuracies() -> Vec<[f64; 3]> {
    let mut acc: Vec<[f64; 3]> = (0..CELLS).map(made_up).collect();
    for (arch, a) in REAL {
        acc[index(&Nb201Cell::parse(arch).unwrap())] = a;
    }
    acc
}

/// The whole table written to `tmp(name)/nats_bench.csv`.
fn table_file(name: &str) -> PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nats_bench.csv");
    std::fs::write(&path, text(&rows())).unwrap();
    path
}

fn parse(text: &str) -> Result<Nb201Table, String> {
    Nb201Table::parse(text, Path::new("t.csv")).map_err(|e| e.to_string())
}

/// `rarts lookup` with no table from the environment.
fn lookup() -> Command {
    let mut c = bin();
    c.arg("lookup").env_remove("RARTS_NB201_TABLE");
    c
}

/// A short NB201 search into `out` (no table from the environment).
fn nb201_search(out: &Path, epochs: usize, steps: usize) -> Command {
    let mut c = bin();
    c.args(["search", "--space", "nb201", "--c", "4", "--cells-per-stage", "1", "--batch", "8", "--seed", "5"]);
    c.args(["--epochs", &epochs.to_string(), "--steps-per-epoch", &steps.to_string()]);
    c.args(["--eval-images", "0", "--quiet", "--out"]).arg(out);
    c.env_remove("RARTS_NB201_TABLE");
    c
}

/// The number after `"key":` in `json` (searched from `from`, the first
/// match of which must exist).
fn num_after(json: &str, from: &str, key: &str) -> f64 {
    let rest = &json[json.find(from).unwrap_or_else(|| panic!("no {from} in {json}"))..];
    let v = rest.split(&format!("\"{key}\":")).nth(1).unwrap_or_else(|| panic!("no {key} after {from} in {json}"));
    v[..v.find([',', '}']).unwrap()].parse().unwrap()
}

/// The string after `"key":"` in `json`.
fn str_after<'a>(json: &'a str, key: &str) -> &'a str {
    let v = json.split(&format!("\"{key}\":\"")).nth(1).unwrap_or_else(|| panic!("no {key} in {json}"));
    &v[..v.find('"').unwrap()]
}

/// The real rows keep their accuracies to the last bit, the made-up ones
/// theirs; `index` and `cell_at` are inverses over the whole space.
#[test]
fn the_real_rows_keep_their_exact_accuracies() {
    let t = parse(&text(&rows())).unwrap();
    for (arch, want) in REAL {
        assert_eq!(t.get(&Nb201Cell::parse(arch).unwrap()), want, "{arch}");
    }
    let acc = accuracies();
    for i in (0..CELLS).step_by(101) {
        assert_eq!(t.get(&cell_at(i)), acc[i], "cell {i}");
    }
    for i in 0..CELLS {
        assert_eq!(index(&cell_at(i)), i);
    }
    assert_eq!(cell_at(0).to_arch_str(), "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
    // Windows line ends and a byte-order mark are read as well.
    let crlf = format!("\u{feff}{}", text(&rows()).replace('\n', "\r\n"));
    let t = parse(&crlf).unwrap();
    assert_eq!(t.get(&Nb201Cell::parse(ALL_SKIP).unwrap()), REAL[1].1);
}

/// A malformed table is refused with the line at fault: a wrong header, a
/// missing row (how many, and one of them named), a row given twice (both
/// lines), a row of four fields, a bad number, an accuracy over 100, an
/// unknown op.
#[test]
fn malformed_tables_are_errors_naming_the_line() {
    let good = rows();
    let has = |r: Result<Nb201Table, String>, needles: &[&str]| {
        let e = r.map(|_| ()).expect_err("the table was accepted");
        for n in needles {
            assert!(e.contains(n), "{e:?} lacks {n:?}");
        }
    };

    let wrong_header = text(&good).replacen("CIFAR10TestAccuracy200Epochs", "CIFAR10", 1);
    has(parse(&wrong_header), &[":1:", HEADER]);
    has(parse(""), &[":1:", HEADER]);

    let mut missing = good.clone();
    missing.remove(777);
    has(parse(&text(&missing)), &["1 of the 15625", &cell_at(777).to_arch_str()]);
    let mut missing3 = good.clone();
    missing3.truncate(CELLS - 3);
    has(parse(&text(&missing3)), &["3 of the 15625", &cell_at(CELLS - 3).to_arch_str()]);

    // Cell 5 (line 7) again at the end (line 15627).
    let mut twice = good.clone();
    twice.push(good[5].clone());
    has(parse(&text(&twice)), &[":15627:", "line 7", &cell_at(5).to_arch_str()]);

    let bad_row = |i: usize, row: String| {
        let mut r = good.clone();
        r[i] = row;
        parse(&text(&r))
    };
    let arch = |i: usize| cell_at(i).to_arch_str();
    has(bad_row(10, format!("1,2,{},x", arch(10))), &[":12:", "4 comma-separated"]);
    has(bad_row(11, format!("1,abc,3,{},x", arch(11))), &[":13:", "abc"]);
    has(bad_row(12, format!("150,2,3,{},x", arch(12))), &[":14:", "150"]);
    has(bad_row(13, format!("1,2,-0.5,{},x", arch(13))), &[":15:", "-0.5"]);
    let unknown = arch(14).replacen("none~0", "conv_5x5~0", 1);
    assert!(unknown.contains("conv_5x5"));
    has(bad_row(14, format!("1,2,3,{unknown},x")), &[":16:", "conv_5x5"]);
}

/// Through the binary, a bad table's error names the file and the line,
/// and a missing file is named too.
#[test]
fn a_bad_table_given_to_lookup_names_the_file() {
    let dir = tmp("nb201-bad-table");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.csv");
    let shown = file.display().to_string();

    std::fs::write(&file, "arch,acc\n").unwrap();
    let o = lookup().arg("--nb201-table").arg(&file).arg(ALL_SKIP).output().unwrap();
    fails_with(&o, &["--nb201-table", &format!("{shown}:1:"), HEADER]);

    let mut r = rows();
    r[20] = format!("1,150,3,{},x", cell_at(20).to_arch_str());
    std::fs::write(&file, text(&r)).unwrap();
    let o = lookup().arg("--nb201-table").arg(&file).arg(ALL_SKIP).output().unwrap();
    fails_with(&o, &[&format!("{shown}:22:"), "150"]);

    let absent = dir.join("absent.csv");
    let o = lookup().arg("--nb201-table").arg(&absent).arg(ALL_SKIP).output().unwrap();
    fails_with(&o, &[&absent.display().to_string()]);
}

/// Rank is 1 + the cells strictly better, so tied cells share one;
/// percentile is the share of cells strictly worse.
#[test]
fn rank_counts_strictly_better_cells_and_ties_share_it() {
    let t = parse(&text(&rows())).unwrap();
    let acc = accuracies();
    let brute = |k: usize, v: f64| {
        let better = acc.iter().filter(|a| a[k] > v).count();
        let worse = acc.iter().filter(|a| a[k] < v).count();
        (1 + better, 100.0 * worse as f64 / CELLS as f64)
    };
    let check = |cell: &Nb201Cell| {
        let a = t.get(cell);
        for (k, st) in t.standing(cell).iter().enumerate() {
            let (rank, pct) = brute(k, a[k]);
            assert_eq!(st.rank, rank, "{} data set {k}", cell.to_arch_str());
            assert!(
                (st.percentile - pct).abs() < 1e-9,
                "{} data set {k}: {} vs {pct}",
                cell.to_arch_str(),
                st.percentile
            );
        }
    };
    for (arch, _) in REAL {
        check(&Nb201Cell::parse(arch).unwrap());
    }
    for i in (0..CELLS).step_by(397) {
        check(&cell_at(i));
    }

    // The real best is first on CIFAR-10 (the made-up values stop at 90),
    // with every other cell below it.
    let best = t.standing(&Nb201Cell::parse(BEST).unwrap());
    assert_eq!(best[0].rank, 1);
    assert!((best[0].percentile - 100.0 * (CELLS - 1) as f64 / CELLS as f64).abs() < 1e-9);
    // The lowest made-up CIFAR-10 value (cell 0's) is last, with nothing below.
    let last = t.standing(&cell_at(0));
    assert_eq!((last[0].rank, last[0].percentile), (CELLS, 0.0));

    // Ties: cells 10, 60 and 15,610 all hold 10 on CIFAR-100.
    let tied: Vec<_> = [10, 60, 15_610].iter().map(|&i| t.standing(&cell_at(i))[1]).collect();
    assert!(tied.iter().all(|s| *s == tied[0]), "{tied:?}");
    let better = acc.iter().filter(|a| a[1] > 10.0).count();
    let equal = acc.iter().filter(|a| a[1] == 10.0).count();
    assert!(equal > 300, "the tie is built in: {equal} cells at 10");
    assert_eq!(tied[0].rank, 1 + better);
    // The next value down ranks after all of the tied cells.
    assert_eq!(t.standing(&cell_at(9))[1].rank, 1 + better + equal);
}

/// `rarts lookup ARCH` prints each data set's accuracy, rank and
/// percentile, as text and as JSON, with the table from the flag or from
/// $RARTS_NB201_TABLE (the flag winning over the variable).
#[test]
fn lookup_prints_accuracy_rank_and_percentile() {
    let file = table_file("nb201-lookup");
    let t = Nb201Table::load(&file).unwrap();
    let cell = Nb201Cell::parse(ALL_SKIP).unwrap();
    let st = t.standing(&cell);

    let text = ok(&lookup().arg("--nb201-table").arg(&file).arg(ALL_SKIP).output().unwrap());
    assert!(text.contains(ALL_SKIP), "{text}");
    let line = |name: &str| {
        text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}: {text}"))
    };
    for (k, (name, acc)) in
        [("CIFAR-10", "54.30 %"), ("CIFAR-100", "15.61 %"), ("ImageNet16-120", "16.32 %")].iter().enumerate()
    {
        let l = line(name);
        assert!(l.contains(acc), "{l}");
        assert!(l.contains(&format!("{} / 15625", st[k].rank)), "{l}");
        assert!(l.contains(&format!("{:.2} %", st[k].percentile)), "{l}");
    }

    let json = ok(&lookup().arg("--nb201-table").arg(&file).args(["--json", ALL_SKIP]).output().unwrap());
    assert_eq!(str_after(&json, "arch"), ALL_SKIP);
    for (k, key) in ["cifar10", "cifar100", "imagenet16"].iter().enumerate() {
        let obj = format!("\"{key}\":{{");
        assert!((num_after(&json, &obj, "accuracy") - REAL[1].1[k]).abs() < 1e-4, "{json}");
        assert_eq!(num_after(&json, &obj, "rank"), st[k].rank as f64, "{json}");
        assert!((num_after(&json, &obj, "percentile") - st[k].percentile).abs() < 1e-3, "{json}");
    }

    // The same from the environment, and the flag before the environment.
    let mut c = bin();
    c.args(["lookup", "--json", ALL_SKIP]).env("RARTS_NB201_TABLE", &file);
    assert_eq!(ok(&c.output().unwrap()), json);
    let mut c = bin();
    c.args(["lookup", "--json", ALL_SKIP]).arg("--nb201-table").arg(&file);
    c.env("RARTS_NB201_TABLE", file.with_file_name("absent.csv"));
    assert_eq!(ok(&c.output().unwrap()), json);
}

/// Without a table `rarts lookup` says how to give one; a cell that is not
/// an arch string (an unknown op, or neither a string nor a file) is named.
#[test]
fn lookup_without_a_table_or_of_a_bad_cell_is_a_clear_error() {
    fails_with(&lookup().arg(ALL_SKIP).output().unwrap(), &["--nb201-table", "RARTS_NB201_TABLE"]);
    let mut c = lookup();
    c.env("RARTS_NB201_TABLE", "");
    fails_with(&c.arg(ALL_SKIP).output().unwrap(), &["--nb201-table"]);

    let file = table_file("nb201-lookup-bad-cell");
    let bad = ALL_SKIP.replacen("skip_connect~0", "conv_5x5~0", 1);
    let o = lookup().arg("--nb201-table").arg(&file).arg(&bad).output().unwrap();
    fails_with(&o, &["conv_5x5", "unknown op"]);
    let o = lookup().arg("--nb201-table").arg(&file).arg("no-such-cell").output().unwrap();
    fails_with(&o, &["no-such-cell"]);
}

/// `rarts lookup DIR` on a finished NB201 search gives the cell of its
/// genotype.txt.
#[test]
fn lookup_of_a_search_folder_gives_its_cell() {
    let out = tmp("nb201-lookup-search");
    ok(&nb201_search(&out, 1, 2).output().unwrap());
    let arch = std::fs::read_to_string(out.join("genotype.txt")).unwrap().trim().to_string();
    let file = table_file("nb201-lookup-search-table");
    let json = ok(&lookup().arg("--nb201-table").arg(&file).arg("--json").arg(&out).output().unwrap());
    assert_eq!(str_after(&json, "arch"), arch);
    let acc = Nb201Table::load(&file).unwrap().get(&Nb201Cell::parse(&arch).unwrap());
    assert!((num_after(&json, "\"cifar10\":{", "accuracy") - acc[0]).abs() < 1e-4, "{json}");
    // genotype.txt itself names the same cell.
    let text = ok(&lookup().arg("--nb201-table").arg(&file).arg(out.join("genotype.txt")).output().unwrap());
    assert!(text.contains(&arch), "{text}");
}

/// The bench values of `line` match the table's for its logged arch.
fn check_bench_line(t: &Nb201Table, line: &str) {
    let arch = str_after(line, "arch");
    let acc = t.get(&Nb201Cell::parse(arch).unwrap());
    for (k, key) in ["cifar10", "cifar100", "imagenet16"].iter().enumerate() {
        let got = num_after(line, "\"bench\":{", key);
        assert!((got - acc[k]).abs() < 1e-4, "{key}: logged {got}, table {}: {line}", acc[k]);
    }
}

/// A search given the table logs each epoch's cell and its accuracies from
/// the table, and keeps the table's reference numbers in bench.json.
#[test]
fn a_search_with_the_table_logs_each_epochs_cell_and_its_accuracies() {
    let file = table_file("nb201-search-table");
    let t = Nb201Table::load(&file).unwrap();
    let out = tmp("nb201-search-bench");
    ok(&nb201_search(&out, 2, 3).arg("--nb201-table").arg(&file).output().unwrap());
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    for l in &lines {
        assert!(l.contains("\"arch\":\"") && l.contains("\"bench\":{"), "{l}");
        check_bench_line(&t, l);
    }
    let bench = std::fs::read_to_string(out.join("bench.json")).unwrap();
    assert!(bench.contains("\"best\""), "{bench}");
    // The best on CIFAR-10 is the real best cell's 94.37.
    assert!((num_after(&bench, "\"cifar10\":{", "best") - REAL[2].1[0]).abs() < 1e-4, "{bench}");
    assert_eq!(str_after(&bench, "best_arch"), BEST);
    // The search's cell at the end is the last epoch's.
    let arch = std::fs::read_to_string(out.join("genotype.txt")).unwrap();
    assert_eq!(str_after(lines[1], "arch"), arch.trim());
}

/// The table is a judge, not a setting: a search stopped without one
/// resumes with one, and the epochs after the resume are judged.
#[test]
fn a_resumed_search_may_gain_a_table() {
    let file = table_file("nb201-resume-table");
    let out = tmp("nb201-resume");
    // --epochs is among the settings --resume compares, so the first run is
    // the same two-epoch search, killed once its first checkpoint exists.
    // Enough steps that the second epoch is still running when it is killed.
    let steps = 40;
    kill_after_first_checkpoint(nb201_search(&out, 2, steps), &out);
    assert!(!out.join("genotype.txt").exists(), "the search ended before it was killed");
    assert!(!out.join("bench.json").exists());

    let mut c = nb201_search(&out, 2, steps);
    c.arg("--resume").arg("--nb201-table").arg(&file);
    let o = c.output().unwrap();
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming from"), "not resumed");
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(!lines[0].contains("\"bench\""), "the first epoch ran without a table: {}", lines[0]);
    assert!(lines[1].contains("\"bench\":{"), "{}", lines[1]);
    check_bench_line(&Nb201Table::load(&file).unwrap(), lines[1]);
    assert!(out.join("bench.json").exists());
}

/// `--nb201-table` judges NB201 cells only: a DARTS search refuses it.
#[test]
fn the_table_is_refused_outside_nb201() {
    let file = table_file("nb201-darts-table");
    let out = tmp("nb201-darts");
    let mut c = small_search(&out, "rarts", 1, 1);
    c.arg("--nb201-table").arg(&file);
    fails_with(&c.output().unwrap(), &["--nb201-table", "--space nb201"]);
    assert!(!out.join("log.jsonl").exists());
}

/// The NB201 comparison judged by a table, without retraining: per method
/// the three accuracies, the reference rows (the whole table's mean ± std,
/// median, best, and DARTS' published result), each cell's accuracies;
/// bench.json beside; no training folder.
#[test]
fn compare_judged_by_the_table_lists_accuracies_and_references() {
    let table = table_file("compare-table");
    let out = tmp("compare-table-out");
    let mut c = bin();
    c.args(["compare", "--space", "nb201", "--preset", "smoke", "--no-retrain", "--nb201-table"]).arg(&table);
    ok(&c.arg("--out").arg(&out).env_remove("RARTS_NB201_TABLE").output().unwrap());
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("| method | CIFAR-10 (%) | CIFAR-100 (%) | ImageNet16-120 (%) | per seed (CIFAR-10) |"),
        "{md}"
    );
    assert!(!md.contains("retrained test accuracy"), "{md}");
    for row in [
        "| random cell, expected (the whole table: mean ± std) |",
        "| the table's median cell |",
        "| the table's best cell (per data set) | 94.37 |",
        "| DARTS 1st and 2nd order, published | 54.30 ± 0.00 | 15.61 ± 0.00 | 16.32 ± 0.00 |",
        "No retraining: the table is the judge.",
    ] {
        assert!(md.contains(row), "{row} missing: {md}");
    }
    let t = Nb201Table::load(&table).unwrap();
    // Every cell line carries the table's accuracies of its cell.
    let cells: Vec<&str> = md.lines().filter(|l| l.starts_with("- ") && l.contains("seed")).collect();
    assert_eq!(cells.len(), 8, "{md}");
    for l in cells {
        let arch = l.split('`').nth(1).unwrap();
        let a = t.get(&Nb201Cell::parse(arch).unwrap());
        assert!(l.contains(&format!("CIFAR-10 {:.2} %", a[0])), "{l}");
    }
    assert!(out.join("bench.json").exists());
    assert!(std::fs::read_dir(&out).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with("train-")));
}

/// A comparison without retraining needs a judge: no table is an error
/// naming --nb201-table; --no-retrain outside NB201 is refused.
#[test]
fn compare_without_retraining_needs_a_table() {
    let out = tmp("compare-no-judge");
    let mut c = bin();
    c.args(["compare", "--space", "nb201", "--preset", "smoke", "--no-retrain", "--out"]).arg(&out);
    fails_with(&c.env_remove("RARTS_NB201_TABLE").output().unwrap(), &["--nb201-table", "retraining"]);
    let mut c = bin();
    c.args(["compare", "--space", "darts", "--preset", "smoke", "--no-retrain", "--out"]).arg(&out);
    fails_with(&c.output().unwrap(), &["--no-retrain", "nb201"]);
}

/// A comparison run again with other settings that shape its jobs is
/// refused, listing what differs, and its folder is left as it was; a
/// search's folder is refused as a comparison's --out.
#[test]
fn compare_again_with_other_settings_is_refused() {
    let out = tmp("compare-other");
    let mut c = bin();
    c.args(["compare", "--space", "nb201", "--preset", "smoke", "--out"]).arg(&out);
    ok(&c.env_remove("RARTS_NB201_TABLE").output().unwrap());
    let before = std::fs::read_to_string(out.join("results.md")).unwrap();
    let mut c = bin();
    c.args(["compare", "--space", "nb201", "--preset", "smoke", "--data", "synthetic:64:16", "--out"]).arg(&out);
    fails_with(
        &c.env_remove("RARTS_NB201_TABLE").output().unwrap(),
        &["other settings", "search --data: embedded then"],
    );
    assert_eq!(std::fs::read_to_string(out.join("results.md")).unwrap(), before);
    // The same settings again: every job is skipped, the same table.
    let mut c = bin();
    c.args(["compare", "--space", "nb201", "--preset", "smoke", "--out"]).arg(&out);
    ok(&c.env_remove("RARTS_NB201_TABLE").output().unwrap());

    let search = tmp("compare-onto-search");
    ok(&nb201_search(&search, 1, 1).output().unwrap());
    let mut c = bin();
    c.args(["compare", "--space", "nb201", "--preset", "smoke", "--out"]).arg(&search);
    fails_with(&c.env_remove("RARTS_NB201_TABLE").output().unwrap(), &["checkpoint.bin", "comparison"]);
}
