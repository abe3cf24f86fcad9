//! Criterion results as tables: reads
//! `target/criterion/<group>/<function>[/<param>]/new/estimates.json` and
//! prints, per group, each function's time and its ratio to the group's
//! baseline (the function named `ouro*`, else the fastest one).

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::SystemTime;

use serde_json::Value as Json;

use crate::{Result, write_number, write_string};

/// One measured benchmark.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measurement {
    pub(crate) group: String,
    pub(crate) function: String,
    /// The input parameter (`BenchmarkId::new("ouro", 64)` gives `"64"`).
    pub(crate) param: Option<String>,
    pub(crate) median_ns: f64,
    pub(crate) mean_ns: f64,
}

/// A group's rows, sorted, with each row's ratio to the baseline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupTable {
    pub(crate) group: String,
    pub(crate) baseline: String,
    /// `(measurement, median / baseline median for the same param)`.
    pub(crate) rows: Vec<(Measurement, Option<f64>)>,
}

/// Reads every benchmark under `criterion_dir`. With `since`, only those
/// whose estimates were written at or after that time (this run's).
pub(crate) fn collect(criterion_dir: &Path, since: Option<SystemTime>) -> Result<Vec<Measurement>> {
    let mut found = Vec::new();
    if criterion_dir.is_dir() {
        walk(criterion_dir, criterion_dir, since, &mut found)?;
    }
    Ok(found)
}

fn walk(
    root: &Path,
    dir: &Path,
    since: Option<SystemTime>,
    found: &mut Vec<Measurement>,
) -> Result<()> {
    let estimates = dir.join("new").join("estimates.json");
    if estimates.is_file() {
        let fresh = match since {
            None => true,
            Some(since) => fs::metadata(&estimates)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since),
        };
        if fresh {
            found.push(read_measurement(root, dir)?);
        }
    }
    let mut entries = fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.path())
        .collect::<Vec<_>>();
    entries.sort();
    for sub in entries {
        let name = sub.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // Criterion's own bookkeeping, not benchmarks.
        if matches!(name, "new" | "base" | "change" | "report") || name.starts_with('.') {
            continue;
        }
        walk(root, &sub, since, found)?;
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Json> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// One benchmark directory (the one holding `new/`).
fn read_measurement(root: &Path, dir: &Path) -> Result<Measurement> {
    let estimates_path = dir.join("new").join("estimates.json");
    let estimates = read_json(&estimates_path)?;
    let point = |field: &str| {
        estimates
            .pointer(&format!("/{field}/point_estimate"))
            .and_then(Json::as_f64)
            .ok_or_else(|| format!("{}: no {field}.point_estimate", estimates_path.display()))
    };
    let (median_ns, mean_ns) = (point("median")?, point("mean")?);

    // Criterion writes the real ids to benchmark.json (directory names are
    // sanitised); fall back to the path when it is absent.
    let relative: Vec<String> = dir
        .strip_prefix(root)
        .unwrap_or(dir)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let (mut group, mut function, mut param) = ids_from_path(&relative);
    if let Ok(meta) = read_json(&dir.join("new").join("benchmark.json")) {
        let text = |key: &str| meta.get(key).and_then(Json::as_str).map(str::to_owned);
        if let Some(g) = text("group_id") {
            group = g;
        }
        match (text("function_id"), text("value_str")) {
            (Some(f), value) => {
                function = f;
                param = value;
            }
            // `BenchmarkId::from_parameter`: the parameter names the row.
            (None, Some(value)) => {
                function = value;
                param = None;
            }
            (None, None) => {}
        }
    }
    Ok(Measurement {
        group,
        function,
        param,
        median_ns,
        mean_ns,
    })
}

/// `[group]`, `[group, function]` or `[group, function, param...]`.
fn ids_from_path(parts: &[String]) -> (String, String, Option<String>) {
    match parts {
        [] => (String::new(), String::new(), None),
        [only] => (only.clone(), only.clone(), None),
        [group, function] => (group.clone(), function.clone(), None),
        [group, function, rest @ ..] => (group.clone(), function.clone(), Some(rest.join("/"))),
    }
}

/// Groups measurements, picks each group's baseline and sorts the rows (by
/// parameter, numerically where it is a number, then by median time).
pub(crate) fn tables(measurements: &[Measurement]) -> Vec<GroupTable> {
    let mut groups: Vec<&str> = measurements.iter().map(|m| m.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    groups
        .into_iter()
        .map(|group| {
            let mut rows: Vec<Measurement> = measurements
                .iter()
                .filter(|m| m.group == group)
                .cloned()
                .collect();
            rows.sort_by(|a, b| {
                compare_params(&a.param, &b.param).then(a.median_ns.total_cmp(&b.median_ns))
            });
            let baseline = baseline_function(&rows);
            let rows = rows
                .iter()
                .map(|m| {
                    let base = rows
                        .iter()
                        .find(|b| b.function == baseline && b.param == m.param);
                    let ratio = base
                        .map(|b| m.median_ns / b.median_ns)
                        .filter(|r| r.is_finite());
                    (m.clone(), ratio)
                })
                .collect();
            GroupTable {
                group: group.to_owned(),
                baseline,
                rows,
            }
        })
        .collect()
}

/// The first function (by name) starting with `ouro`, else the fastest.
fn baseline_function(rows: &[Measurement]) -> String {
    let mut ouro: Vec<&str> = rows
        .iter()
        .map(|m| m.function.as_str())
        .filter(|f| f.starts_with("ouro"))
        .collect();
    ouro.sort_unstable();
    if let Some(first) = ouro.first() {
        return (*first).to_owned();
    }
    rows.iter()
        .min_by(|a, b| a.median_ns.total_cmp(&b.median_ns))
        .map(|m| m.function.clone())
        .unwrap_or_default()
}

fn compare_params(a: &Option<String>, b: &Option<String>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        },
        _ => a.cmp(b),
    }
}

/// A time in nanoseconds with three significant digits and a fitting unit.
pub(crate) fn format_time(ns: f64) -> String {
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// Markdown tables, one per group, columns padded for the terminal.
pub(crate) fn markdown(tables: &[GroupTable]) -> String {
    let mut out = String::new();
    for table in tables {
        let with_param = table.rows.iter().any(|(m, _)| m.param.is_some());
        let mut header = vec!["function".to_owned()];
        if with_param {
            header.push("input".to_owned());
        }
        header.extend([
            "median".to_owned(),
            "mean".to_owned(),
            format!("vs {}", table.baseline),
        ]);
        let mut lines = vec![header];
        for (m, ratio) in &table.rows {
            let mut line = vec![m.function.clone()];
            if with_param {
                line.push(m.param.clone().unwrap_or_default());
            }
            line.push(format_time(m.median_ns));
            line.push(format_time(m.mean_ns));
            line.push(ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x")));
            lines.push(line);
        }
        let columns = lines[0].len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                lines
                    .iter()
                    .map(|l| l[c].chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        // Text columns align left, numbers right.
        let numeric = |c: usize| c + 3 >= columns;
        let _ = writeln!(out, "### {}\n", table.group);
        for (i, line) in lines.iter().enumerate() {
            out.push('|');
            for (c, cell) in line.iter().enumerate() {
                let pad = widths[c] - cell.chars().count();
                if numeric(c) {
                    let _ = write!(out, " {}{} |", " ".repeat(pad), cell);
                } else {
                    let _ = write!(out, " {}{} |", cell, " ".repeat(pad));
                }
            }
            out.push('\n');
            if i == 0 {
                out.push('|');
                for (c, width) in widths.iter().enumerate() {
                    let dashes = "-".repeat(*width);
                    if numeric(c) {
                        let _ = write!(out, " {}: |", &dashes[1..]);
                    } else {
                        let _ = write!(out, " {dashes} |");
                    }
                }
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

/// The same data as JSON:
/// `{"groups": [{"group", "baseline", "benches": [{"function", "param",
/// "median_ns", "mean_ns", "ratio"}]}]}`; a missing param or ratio is `null`.
pub(crate) fn to_json(tables: &[GroupTable]) -> String {
    let mut out = String::from("{\n  \"groups\": [");
    for (gi, table) in tables.iter().enumerate() {
        out.push_str(if gi == 0 { "\n    {" } else { ",\n    {" });
        out.push_str("\"group\": ");
        write_string(&mut out, &table.group);
        out.push_str(", \"baseline\": ");
        write_string(&mut out, &table.baseline);
        out.push_str(", \"benches\": [");
        for (ri, (m, ratio)) in table.rows.iter().enumerate() {
            out.push_str(if ri == 0 { "\n      {" } else { ",\n      {" });
            out.push_str("\"function\": ");
            write_string(&mut out, &m.function);
            out.push_str(", \"param\": ");
            match &m.param {
                Some(p) => write_string(&mut out, p),
                None => out.push_str("null"),
            }
            out.push_str(", \"median_ns\": ");
            write_number(&mut out, m.median_ns);
            out.push_str(", \"mean_ns\": ");
            write_number(&mut out, m.mean_ns);
            out.push_str(", \"ratio\": ");
            write_number(&mut out, ratio.unwrap_or(f64::NAN));
            out.push('}');
        }
        out.push_str(if table.rows.is_empty() {
            "]}"
        } else {
            "\n    ]}"
        });
    }
    out.push_str(if tables.is_empty() {
        "]\n}\n"
    } else {
        "\n  ]\n}\n"
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(group: &str, function: &str, param: Option<&str>, median_ns: f64) -> Measurement {
        Measurement {
            group: group.into(),
            function: function.into(),
            param: param.map(Into::into),
            median_ns,
            mean_ns: median_ns * 1.1,
        }
    }

    #[test]
    fn baseline_is_the_ouro_function_and_rows_sort_by_time() {
        let data = [
            m("alloc", "system", None, 20.0),
            m("alloc", "ouro_pool", None, 10.0),
            m("alloc", "mimalloc", None, 5.0),
            m("clone", "rc", None, 2.0),
            m("clone", "arc", None, 8.0),
        ];
        let tables = tables(&data);
        assert_eq!(tables.len(), 2);
        let alloc = &tables[0];
        assert_eq!(alloc.group, "alloc");
        assert_eq!(alloc.baseline, "ouro_pool");
        let order: Vec<(&str, Option<f64>)> = alloc
            .rows
            .iter()
            .map(|(m, r)| (m.function.as_str(), *r))
            .collect();
        assert_eq!(
            order,
            [
                ("mimalloc", Some(0.5)),
                ("ouro_pool", Some(1.0)),
                ("system", Some(2.0))
            ]
        );
        // No ouro* function: the fastest is the baseline.
        assert_eq!(tables[1].baseline, "rc");
        assert_eq!(tables[1].rows[1].1, Some(4.0));
    }

    #[test]
    fn ratios_compare_within_the_same_input() {
        let data = [
            m("g", "ouro", Some("1024"), 100.0),
            m("g", "rc", Some("1024"), 50.0),
            m("g", "ouro", Some("64"), 10.0),
            m("g", "rc", Some("64"), 20.0),
            m("g", "rc", Some("8"), 1.0),
        ];
        let table = &tables(&data)[0];
        let rows: Vec<(&str, &str, Option<f64>)> = table
            .rows
            .iter()
            .map(|(m, r)| (m.function.as_str(), m.param.as_deref().unwrap(), *r))
            .collect();
        // Numeric inputs sort as numbers, not as text.
        assert_eq!(
            rows,
            [
                ("rc", "8", None),
                ("ouro", "64", Some(1.0)),
                ("rc", "64", Some(2.0)),
                ("rc", "1024", Some(0.5)),
                ("ouro", "1024", Some(1.0)),
            ]
        );
    }

    #[test]
    fn formats_times_with_units() {
        assert_eq!(format_time(1.234), "1.23 ns");
        assert_eq!(format_time(12.34), "12.3 ns");
        assert_eq!(format_time(123.4), "123 ns");
        assert_eq!(format_time(1_234.0), "1.23 µs");
        assert_eq!(format_time(2_500_000.0), "2.50 ms");
        assert_eq!(format_time(3.5e9), "3.50 s");
    }

    #[test]
    fn markdown_table_layout() {
        let data = [
            m("alloc", "system", None, 20.0),
            m("alloc", "ouro", None, 10.0),
        ];
        let text = markdown(&tables(&data));
        let expected = "\
### alloc

| function |  median |    mean | vs ouro |
| -------- | ------: | ------: | ------: |
| ouro     | 10.0 ns | 11.0 ns |   1.00x |
| system   | 20.0 ns | 22.0 ns |   2.00x |

";
        assert_eq!(text, expected);
    }

    #[test]
    fn markdown_shows_inputs_and_missing_ratios() {
        let data = [
            m("g", "ouro", Some("64"), 10.0),
            m("g", "rc", Some("8"), 1.0),
        ];
        let text = markdown(&tables(&data));
        assert!(text.contains("| function | input |"), "{text}");
        assert!(
            text.contains("| rc       | 8     | 1.00 ns | 1.10 ns |       - |"),
            "{text}"
        );
    }

    #[test]
    fn json_output_parses_back() {
        let data = [
            m("g\"1", "ouro", Some("64"), 10.0),
            m("g\"1", "rc", None, 5.0),
        ];
        let text = to_json(&tables(&data));
        let doc: Json = serde_json::from_str(&text).unwrap();
        let groups = doc.get("groups").and_then(Json::as_array).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].get("group").and_then(Json::as_str), Some("g\"1"));
        let benches = groups[0].get("benches").and_then(Json::as_array).unwrap();
        assert_eq!(
            benches[0].get("function").and_then(Json::as_str),
            Some("rc")
        );
        assert_eq!(benches[0].get("param"), Some(&Json::Null));
        assert_eq!(benches[0].get("ratio"), Some(&Json::Null));
        assert_eq!(benches[1].get("ratio").and_then(Json::as_f64), Some(1.0));
        assert_eq!(
            benches[1].get("median_ns").and_then(Json::as_f64),
            Some(10.0)
        );
        let empty: Json = serde_json::from_str(&to_json(&[])).unwrap();
        assert_eq!(empty.get("groups"), Some(&Json::Array(vec![])));
    }

    #[test]
    fn reads_a_criterion_directory() {
        let root =
            std::env::temp_dir().join(format!("ouro-report-criterion-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let write = |rel: &str, text: &str| {
            let path = root.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        let estimates = |median: f64| {
            format!(
                r#"{{"mean":{{"point_estimate":{}}},"median":{{"point_estimate":{median}}},"slope":null}}"#,
                median + 1.0
            )
        };
        // With benchmark.json (the real ids) and without (ids from the path).
        write("alloc/ouro_pool/64/new/estimates.json", &estimates(10.0));
        write(
            "alloc/ouro_pool/64/new/benchmark.json",
            r#"{"group_id":"alloc","function_id":"ouro_pool","value_str":"64","full_id":"alloc/ouro_pool/64"}"#,
        );
        write("alloc/ouro_pool/64/base/estimates.json", &estimates(99.0));
        write("alloc/system/64/new/estimates.json", &estimates(30.0));
        write("alloc/report/index.html", "");
        write("lonely/new/estimates.json", &estimates(7.0));
        write("sizes/128/new/estimates.json", &estimates(3.0));
        write(
            "sizes/128/new/benchmark.json",
            r#"{"group_id":"sizes","function_id":null,"value_str":"128"}"#,
        );

        let mut found = collect(&root, None).unwrap();
        found.sort_by(|a, b| a.group.cmp(&b.group).then(a.function.cmp(&b.function)));
        let short: Vec<(&str, &str, Option<&str>, f64, f64)> = found
            .iter()
            .map(|m| {
                (
                    m.group.as_str(),
                    m.function.as_str(),
                    m.param.as_deref(),
                    m.median_ns,
                    m.mean_ns,
                )
            })
            .collect();
        assert_eq!(
            short,
            [
                ("alloc", "ouro_pool", Some("64"), 10.0, 11.0),
                ("alloc", "system", Some("64"), 30.0, 31.0),
                ("lonely", "lonely", None, 7.0, 8.0),
                ("sizes", "128", None, 3.0, 4.0),
            ]
        );
        // Nothing was written after a time in the future.
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(collect(&root, Some(later)).unwrap().is_empty());
        assert!(collect(&root.join("missing"), None).unwrap().is_empty());

        write("broken/new/estimates.json", r#"{"mean":{}}"#);
        assert!(collect(&root, None).is_err());
        fs::remove_dir_all(&root).unwrap();
    }
}
