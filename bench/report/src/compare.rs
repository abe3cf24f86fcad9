//! The report of `cargo xtask compare`: ouro against `Rc`, gcmodule,
//! bacon_rajan_cc, dumpster, rust-gc and CPython's `gc`.
//!
//! `ouro-bench all` runs every library and workload in a process of its
//! own and prints one JSON document; this turns that document into
//! `docs/benchmarks.md` (tables with the machine, the versions and the
//! date) and `docs/benchmarks.svg` (a log-scale bar chart, one group per
//! workload), or, with `--json`, prints it with the machine in front.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;

use crate::{Result, write_string};

/// One library on one workload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub(crate) library: String,
    pub(crate) workload: String,
    /// `ok`, `leak`, `n/a`, `crash`, `timeout` or `wrong`.
    pub(crate) status: String,
    pub(crate) median_ns: Option<f64>,
    pub(crate) rss_kib: Option<f64>,
    pub(crate) note: String,
}

/// What `ouro-bench all` printed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub(crate) runs: usize,
    pub(crate) clock: String,
    pub(crate) python: String,
    pub(crate) libraries: Vec<String>,
    pub(crate) threaded_libraries: Vec<String>,
    /// `(name, description)` in table order.
    pub(crate) workloads: Vec<(String, String)>,
    pub(crate) cells: Vec<Cell>,
}

/// Where and with what the numbers were taken.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) memory: String,
    pub(crate) rustc: String,
    pub(crate) date: String,
    /// `(crate, version)` from bench/Cargo.lock.
    pub(crate) versions: Vec<(String, String)>,
}

fn strings(value: Option<&Json>) -> Vec<String> {
    value
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

impl Report {
    pub(crate) fn parse(text: &str) -> Result<Report> {
        let doc: Json =
            serde_json::from_str(text).map_err(|e| format!("ouro-bench output: {e}"))?;
        let text_of = |v: &Json, key: &str| {
            v.get(key)
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let workloads = doc
            .get("workloads")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|w| (text_of(w, "name"), text_of(w, "description")))
            .collect();
        let cells = doc
            .get("results")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|r| Cell {
                library: text_of(r, "library"),
                workload: text_of(r, "workload"),
                status: text_of(r, "status"),
                median_ns: r.get("median_ns").and_then(Json::as_f64),
                rss_kib: r.get("rss_kib").and_then(Json::as_f64),
                note: text_of(r, "note"),
            })
            .collect();
        Ok(Report {
            runs: doc.get("runs").and_then(Json::as_f64).unwrap_or(0.0) as usize,
            clock: text_of(&doc, "clock"),
            python: text_of(&doc, "python"),
            libraries: strings(doc.get("libraries")),
            threaded_libraries: strings(doc.get("threaded_libraries")),
            workloads,
            cells,
        })
    }

    fn cell(&self, library: &str, workload: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.library == library && c.workload == workload)
    }

    /// The libraries measured on `workload`, in table order.
    fn libraries_of(&self, workload: &str) -> Vec<&str> {
        self.libraries
            .iter()
            .chain(&self.threaded_libraries)
            .filter(|l| self.cell(l, workload).is_some())
            .map(String::as_str)
            .collect()
    }

    fn is_threaded(&self, workload: &str) -> bool {
        self.threaded_libraries
            .iter()
            .any(|l| self.cell(l, workload).is_some())
    }

    /// The column the ratios of `workload`'s row are taken against: `ouro`,
    /// `ouro_sync` on the threaded rows.
    fn reference(&self, workload: &str) -> &'static str {
        if self.is_threaded(workload) {
            "ouro_sync"
        } else {
            "ouro"
        }
    }

    /// `(workload, fastest library, its time / ouro's)` wherever a library
    /// other than ouro has the lowest time (`ouro_sync` on the threaded
    /// rows). Rc and Arc are the floors and are left out (they free no
    /// cycles and pay for no collector).
    pub(crate) fn ouro_not_fastest(&self) -> Vec<(String, String, f64)> {
        let mut out = Vec::new();
        for (workload, _) in &self.workloads {
            let (reference, libraries) = if self.is_threaded(workload) {
                ("ouro_sync", &self.threaded_libraries)
            } else {
                ("ouro", &self.libraries)
            };
            let Some(ouro) = self.cell(reference, workload).and_then(ok_time) else {
                continue;
            };
            let best = libraries
                .iter()
                .filter(|l| !l.starts_with("ouro") && *l != "rc" && *l != "arc")
                .filter_map(|l| Some((l, self.cell(l, workload).and_then(ok_time)?)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((library, t)) = best
                && t < ouro
            {
                out.push((workload.clone(), library.clone(), t / ouro));
            }
        }
        out
    }
}

fn ok_time(cell: &Cell) -> Option<f64> {
    (cell.status == "ok").then_some(cell.median_ns).flatten()
}

/// `1.23 ms`, `456 µs`, `2.5 s`: three significant digits.
pub(crate) fn format_ns(ns: f64) -> String {
    let (value, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {unit}")
}

/// A table cell: the time and its ratio to `baseline`, or why there is none.
fn time_cell(cell: Option<&Cell>, baseline: Option<f64>) -> String {
    let Some(cell) = cell else {
        return String::new();
    };
    match (cell.status.as_str(), cell.median_ns) {
        ("ok", Some(ns)) => match baseline {
            Some(base) if base > 0.0 && ns / base < 0.01 => {
                format!("{} (<0.01×)", format_ns(ns))
            }
            Some(base) if base > 0.0 => format!("{} ({:.2}×)", format_ns(ns), ns / base),
            _ => format_ns(ns),
        },
        ("leak", _) => format!("**leaks** ({})", cell.note),
        ("n/a", _) => format!("n/a ({})", cell.note),
        (status, _) => format!("**{status}** ({})", cell.note),
    }
}

fn rss_cell(cell: Option<&Cell>) -> String {
    match cell {
        Some(cell) if cell.status == "ok" || cell.status == "leak" => match cell.rss_kib {
            Some(kib) => {
                let mib = format!("{:.1} MiB", kib / 1024.0);
                if cell.status == "leak" {
                    format!("{mib} (leaks)")
                } else {
                    mib
                }
            }
            None => String::new(),
        },
        Some(cell) => cell.status.clone(),
        None => String::new(),
    }
}

/// How each library is driven (kept in step with bench/src/libs.rs).
const ADAPTERS: &str = "\
- **ouro**: `ouro::Gc` + `RefCell`, `#[derive(Trace)]` (`#[trace(skip)]` on the drop counter); `gc::collect()`, and `gc::collect_generation(0)` for the young collection. Automatic collection on, default thresholds (700, 10, 10).
- **rc**: `std::rc::Rc` + `RefCell`. No collector: it is the floor for the acyclic workloads and leaks every cycle (shown as *leaks*, not as a time).
- **gcmodule** 0.3: `gcmodule::Cc` + `RefCell`, a hand-written `Trace` whose `is_type_tracked` returns `true`, as its docs require for recursive types; `collect_thread_cycles()`. It never collects on its own, has no generations, so the young collection is a full one.
- **bacon_rajan_cc** 0.4: `bacon_rajan_cc::Cc` + `RefCell`, a hand-written `Trace` (no derive in the crate); `collect_cycles()`, which scans the buffered possible roots (synchronous Bacon-Rajan). It never collects on its own.
- **dumpster** 2.1: `dumpster::unsync::Gc` + `RefCell`, `#[derive(Trace)]`; `unsync::collect()`, default collection condition.
- **gc** (rust-gc) 0.5: `gc::Gc` + `gc::GcCell`, `#[derive(Trace, Finalize)]` (`#[unsafe_ignore_trace]` on the drop counter); `force_collect()`. A tracing mark-sweep: nothing is freed before a collection, and every collection is full.
- **cpython**: `__slots__` objects with the same three links and a list of further links made on first use; `gc.collect()` and `gc.collect(0)`; the leak check looks for a `Node` left in `gc.get_objects()` (a `__del__` counter would slow every deallocation). No `clone_drop` (an INCREF/DECREF pair is lost in the interpreter's dispatch) and no threaded row.
- **ouro_sync**: `ouro::sync::Gc` + `std::sync::Mutex`, `#[derive(Trace)]`; `sync::gc::collect()`. Automatic collection on, default thresholds; the collector is concurrent (it never stops the other threads). `ouro_sync_manual` is the same with automatic collection off (`sync::gc::disable()`), collecting only where the workload does, like gcmodule_threaded.
- **arc**: `std::sync::Arc` + `Mutex`, the floor of the threaded rows: no collector, so it leaks every cycle.
- **gcmodule_threaded** 0.3: `gcmodule::ThreadedCc` in one process-wide `ThreadedObjectSpace` (feature `sync`), + `Mutex`, values reached through `ThreadedCc::borrow()` as its docs require; `collect_cycles()`, which stops every thread that touches the space. It never collects on its own.
- **dumpster_sync** 2.1: `dumpster::sync::Gc` + `Mutex`, `#[derive(Trace)]`; `sync::collect()`, default collection condition.

Every node has the same shape in every Rust library: three link slots and a `Vec` of further links, each behind the library's cell, a `u64` and a drop counter. Each workload counts the nodes it made and checks, after its last collection, that each was dropped once; a library that leaks shows *leaks* instead of a time, one that crashes (every library × workload runs in a process of its own) shows *crash* with the reason.

Reading the table:
- bacon_rajan_cc and dumpster scan only the objects whose count went down since their last collection. In `full_collect_live_1m` no count went down, so their collection has nothing to do and takes microseconds; ouro, gcmodule, rust-gc and CPython look at the whole heap.
- gcmodule, bacon_rajan_cc, dumpster and rust-gc have no generations: their `young_collect_old_1m` is their ordinary collection.
- *crash (stack overflow)* is a recursive traversal running out of the 8 MiB main-thread stack on a long chain (the 1M-node ring).
- ouro and dumpster and rust-gc collect on their own while a workload builds its heap; gcmodule and bacon_rajan_cc only when asked. `ouro_manual` and `ouro_sync_manual` show ouro under the second rule.
- gcmodule_threaded crashes now and then in `threads_dumpster_churn` (about one run in six on the machine above): a segmentation fault inside its collector (`collect_cycles` → `subtract_refs` tracing a `ThreadedCc` in a `Vec`) while the other thread still churns. Its cell shows a time when all its runs survived, *crash* otherwise; `ouro-bench run gcmodule_threaded threads_dumpster_churn` a few times reproduces it.";

/// `docs/benchmarks.md`.
pub(crate) fn markdown(report: &Report, machine: &Machine) -> String {
    let mut out = String::new();
    out.push_str("# ouro against Rust's other cycle collectors and CPython\n\n");
    let _ = writeln!(
        out,
        "Generated by `cargo xtask compare` on {}; regenerate it, do not edit it by hand.\n",
        machine.date
    );
    let _ = writeln!(
        out,
        "Machine: {} ({} cores available), {} of memory; {}; CPython {}.\n",
        machine.cpu, machine.cores, machine.memory, machine.rustc, report.python
    );
    if !machine.versions.is_empty() {
        let versions: Vec<String> = machine
            .versions
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect();
        let _ = writeln!(out, "Crates: {}.\n", versions.join(", "));
    }
    let _ = writeln!(
        out,
        "Each cell is the median of up to {} runs (no further run starts once a cell has taken 1 s), timed in {} (the cores are shared; waiting for one is no library's cost), with its ratio to ouro's time. Lower is better.\n",
        report.runs, report.clock
    );
    out.push_str("![bar chart of the table below](benchmarks.svg)\n\n");

    let single: Vec<&(String, String)> = report
        .workloads
        .iter()
        .filter(|(w, _)| !report.is_threaded(w))
        .collect();
    let threaded: Vec<&(String, String)> = report
        .workloads
        .iter()
        .filter(|(w, _)| report.is_threaded(w))
        .collect();

    out.push_str("## Time\n\n");
    table(&mut out, report, &single, &report.libraries, time_cell);
    if !threaded.is_empty() {
        out.push_str(
            "\n### Thread-safe handles\n\nRatios to `ouro_sync` (`ouro::sync::Gc`); times are the sum of every thread's CPU time.\n\n",
        );
        table(
            &mut out,
            report,
            &threaded,
            &report.threaded_libraries,
            time_cell,
        );
    }

    out.push_str("\n## Where ouro is not the fastest\n\n");
    let slower = report.ouro_not_fastest();
    if slower.is_empty() {
        out.push_str("ouro has the lowest time of the collecting libraries on every workload (Rc, which collects nothing, aside).\n");
    } else {
        for (workload, library, ratio) in &slower {
            let ratio = if *ratio < 0.01 {
                "<0.01".to_string()
            } else {
                format!("{ratio:.2}")
            };
            let _ = writeln!(out, "- `{workload}`: {library} takes {ratio}× ouro's time.");
        }
    }

    out.push_str("\n## Peak RSS\n\nVmHWM of the process that ran the workload (all its runs), including the program itself (about 2 MiB for the Rust binary, 14 MiB for the interpreter).\n\n");
    let all_libraries: Vec<String> = report
        .libraries
        .iter()
        .chain(&report.threaded_libraries)
        .cloned()
        .collect();
    let all: Vec<&(String, String)> = report.workloads.iter().collect();
    table(&mut out, report, &all, &all_libraries, |cell, _| {
        rss_cell(cell)
    });

    out.push_str("\n## Workloads\n\n");
    for (name, description) in &report.workloads {
        let _ = writeln!(out, "- `{name}`: {description}.");
    }
    out.push_str("\n## How each library is driven\n\n");
    out.push_str(ADAPTERS);
    out.push('\n');
    out
}

/// A markdown table: one row per workload, one column per library with
/// any cell in these rows.
fn table(
    out: &mut String,
    report: &Report,
    workloads: &[&(String, String)],
    libraries: &[String],
    render: impl Fn(Option<&Cell>, Option<f64>) -> String,
) {
    let columns: Vec<&String> = libraries
        .iter()
        .filter(|l| workloads.iter().any(|(w, _)| report.cell(l, w).is_some()))
        .collect();
    out.push_str("| workload |");
    for library in &columns {
        let _ = write!(out, " {library} |");
    }
    out.push_str("\n| --- |");
    for _ in &columns {
        out.push_str(" ---: |");
    }
    out.push('\n');
    for (workload, _) in workloads {
        let base = report
            .cell(report.reference(workload), workload)
            .and_then(ok_time);
        let _ = write!(out, "| `{workload}` |");
        for library in &columns {
            let _ = write!(out, " {} |", render(report.cell(library, workload), base));
        }
        out.push('\n');
    }
}

/// Colours of the bars, in library order.
const COLOURS: &[&str] = &[
    "#d62728", "#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf",
    "#e377c2", "#bcbd22",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `docs/benchmarks.svg`: one group of bars per workload, one bar per
/// library, log-scale time; a library without a time gets a label at the
/// baseline (`leak`, `crash`, ...) instead of a bar.
pub(crate) fn svg(report: &Report) -> String {
    let libraries: Vec<&String> = report
        .libraries
        .iter()
        .chain(&report.threaded_libraries)
        .collect();
    let times: Vec<f64> = report.cells.iter().filter_map(ok_time).collect();
    let (lo, hi) = times.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &t| {
        (lo.min(t), hi.max(t))
    });
    let (lo_exp, hi_exp) = if times.is_empty() {
        (6, 9)
    } else {
        let lo_exp = lo.log10().floor() as i32;
        (lo_exp, (hi.log10().ceil() as i32).max(lo_exp + 1))
    };
    let bar = 9.0;
    let gap = 14.0;
    let left = 70.0;
    let top = 60.0;
    let plot_h = 320.0;
    let label_h = 150.0;
    let groups: Vec<(&str, Vec<&str>)> = report
        .workloads
        .iter()
        .map(|(w, _)| (w.as_str(), report.libraries_of(w)))
        .collect();
    let plot_w: f64 = groups
        .iter()
        .map(|(_, libs)| libs.len() as f64 * bar + gap)
        .sum::<f64>()
        + gap;
    let width = left + plot_w + 20.0;
    let height = top + plot_h + label_h;
    let y_of = |ns: f64| {
        let frac = (ns.log10() - lo_exp as f64) / (hi_exp - lo_exp) as f64;
        top + plot_h * (1.0 - frac.clamp(0.0, 1.0))
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(
        out,
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"18\" font-size=\"14\">Time per workload (median, {}, log scale; lower is better)</text>",
        escape(&report.clock)
    );
    // Legend.
    let mut x = left;
    for (i, library) in libraries.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"30\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"39\">{}</text>",
            x + 13.0,
            escape(library)
        );
        x += 20.0 + 7.0 * library.len() as f64;
    }
    // Axis and decades.
    for exp in lo_exp..=hi_exp {
        let ns = 10f64.powi(exp);
        let y = y_of(ns);
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + plot_w,
            left - 6.0,
            y + 4.0,
            format_ns(ns)
        );
    }
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{:.1}\" stroke=\"black\"/>",
        top + plot_h
    );
    // Bars.
    let mut x = left + gap;
    for (workload, libs) in &groups {
        let group_start = x;
        for library in libs {
            let index = libraries
                .iter()
                .position(|l| l == library)
                .unwrap_or_default();
            let colour = COLOURS[index % COLOURS.len()];
            let cell = report.cell(library, workload);
            match cell.and_then(ok_time) {
                Some(ns) => {
                    let y = y_of(ns);
                    let _ = writeln!(
                        out,
                        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} {}: {}</title></rect>",
                        bar - 1.0,
                        top + plot_h - y,
                        escape(library),
                        escape(workload),
                        format_ns(ns)
                    );
                }
                None => {
                    let status = cell.map_or("", |c| c.status.as_str());
                    let _ = writeln!(
                        out,
                        "<text x=\"{:.1}\" y=\"{:.1}\" transform=\"rotate(-90 {:.1} {:.1})\" font-size=\"8\" fill=\"{colour}\">{}</text>",
                        x + bar - 2.0,
                        top + plot_h - 3.0,
                        x + bar - 2.0,
                        top + plot_h - 3.0,
                        escape(status)
                    );
                }
            }
            x += bar;
        }
        let mid = (group_start + x) / 2.0;
        let y = top + plot_h + 12.0;
        let _ = writeln!(
            out,
            "<text x=\"{mid:.1}\" y=\"{y:.1}\" text-anchor=\"end\" transform=\"rotate(-40 {mid:.1} {y:.1})\">{}</text>",
            escape(workload)
        );
        x += gap;
    }
    out.push_str("</svg>\n");
    out
}

/// The civil date (UTC) of a Unix time, `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-from-civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `(name, version)` of the compared crates in a Cargo.lock.
pub(crate) fn locked_versions(lock: &str, names: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("version = ")
            && let Some(n) = name.take()
            && names.contains(&n.as_str())
        {
            out.push((n, v.trim_matches('"').to_owned()));
        }
    }
    out.sort();
    out
}

fn first_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn machine(lock: &Path) -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = first_field(&meminfo, "MemTotal")
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let rustc = Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let lock = fs::read_to_string(lock).unwrap_or_default();
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    Machine {
        cpu: first_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown CPU".into()),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory,
        rustc,
        date: utc_date(secs),
        versions: locked_versions(
            &lock,
            &["bacon_rajan_cc", "dumpster", "gc", "gcmodule", "ouro-gc"],
        ),
    }
}

/// Turns the `ouro-bench all` document at `results` into
/// `docs_dir/benchmarks.md` and `docs_dir/benchmarks.svg` and prints the
/// markdown, or, with `json`, prints the document with the machine in
/// front. `lock` is bench/Cargo.lock (the compared crates' versions).
pub(crate) fn report(results: &Path, docs_dir: &Path, lock: &Path, json: bool) -> Result<()> {
    let text = fs::read_to_string(results)
        .map_err(|e| format!("cannot read {}: {e}", results.display()))?;
    let machine = machine(lock);
    if json {
        print!("{}", with_machine(&text, &machine));
        return Ok(());
    }
    let report = Report::parse(&text)?;
    fs::create_dir_all(docs_dir)
        .map_err(|e| format!("cannot create {}: {e}", docs_dir.display()))?;
    for (name, contents) in [
        ("benchmarks.md", markdown(&report, &machine)),
        ("benchmarks.svg", svg(&report)),
    ] {
        let path = docs_dir.join(name);
        fs::write(&path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("ouro-report: wrote {}", path.display());
    }
    print!("{}", markdown(&report, &machine));
    Ok(())
}

/// The `ouro-bench all` document with a `"machine"` member in front.
pub(crate) fn with_machine(document: &str, machine: &Machine) -> String {
    let mut m = String::from("{\"machine\":{\"cpu\":");
    write_string(&mut m, &machine.cpu);
    let _ = write!(m, ",\"cores\":{},\"memory\":", machine.cores);
    write_string(&mut m, &machine.memory);
    m.push_str(",\"rustc\":");
    write_string(&mut m, &machine.rustc);
    m.push_str(",\"date\":");
    write_string(&mut m, &machine.date);
    m.push_str(",\"versions\":{");
    for (i, (name, version)) in machine.versions.iter().enumerate() {
        if i > 0 {
            m.push(',');
        }
        write_string(&mut m, name);
        m.push(':');
        write_string(&mut m, version);
    }
    m.push_str("}},");
    let body = document.trim_start().strip_prefix('{').unwrap_or(document);
    m.push_str(body);
    m
}

/// Writes the document as JSON again (used by tests to round-trip).
#[cfg(test)]
fn cell_json(cell: &Cell) -> String {
    serde_json::json!({
        "library": cell.library,
        "workload": cell.workload,
        "status": cell.status,
        "median_ns": cell.median_ns,
        "rss_kib": cell.rss_kib,
        "note": cell.note,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(library: &str, workload: &str, status: &str, ns: Option<f64>, note: &str) -> Cell {
        Cell {
            library: library.into(),
            workload: workload.into(),
            status: status.into(),
            median_ns: ns,
            rss_kib: Some(2048.0),
            note: note.into(),
        }
    }

    fn sample() -> Report {
        let cells = [
            cell("ouro", "ring_1m", "ok", Some(2e6), ""),
            cell("rc", "ring_1m", "leak", None, "freed 0 of 10 nodes"),
            cell("gc", "ring_1m", "ok", Some(1e6), ""),
            cell("ouro", "clone_drop", "ok", Some(5e3), ""),
            cell("gc", "clone_drop", "crash", None, "stack overflow"),
            cell("rc", "clone_drop", "ok", Some(4e3), ""),
            cell("arc", "threads", "ok", Some(3e7), ""),
        ];
        let text = format!(
            "{{\"runs\":3,\"clock\":\"thread CPU time\",\"python\":\"3.11.2\",\"libraries\":[\"ouro\",\"rc\",\"gc\"],\"threaded_libraries\":[\"arc\"],\"workloads\":[{{\"name\":\"clone_drop\",\"description\":\"d1\"}},{{\"name\":\"ring_1m\",\"description\":\"d2\"}},{{\"name\":\"threads\",\"description\":\"d3\"}}],\"results\":[{}]}}",
            cells.iter().map(cell_json).collect::<Vec<_>>().join(",")
        );
        Report::parse(&text).unwrap()
    }

    fn machine() -> Machine {
        Machine {
            cpu: "Test CPU".into(),
            cores: 2,
            memory: "24 GiB".into(),
            rustc: "rustc 1.95.0".into(),
            date: utc_date(0),
            versions: vec![("gc".into(), "0.5.1".into())],
        }
    }

    #[test]
    fn parses_the_document() {
        let report = sample();
        assert_eq!(report.runs, 3);
        assert_eq!(report.libraries, ["ouro", "rc", "gc"]);
        assert_eq!(report.threaded_libraries, ["arc"]);
        assert_eq!(report.workloads.len(), 3);
        assert_eq!(report.cells.len(), 7);
        assert_eq!(report.cells[1].median_ns, None);
        assert_eq!(report.cells[1].note, "freed 0 of 10 nodes");
        assert!(report.is_threaded("threads"));
        assert!(!report.is_threaded("ring_1m"));
    }

    #[test]
    fn markdown_has_ratios_leaks_and_crashes() {
        let md = markdown(&sample(), &machine());
        assert!(md.contains("| workload | ouro | rc | gc |"), "{md}");
        assert!(md.contains("| `ring_1m` | 2.00 ms (1.00×) | **leaks** (freed 0 of 10 nodes) | 1.00 ms (0.50×) |"), "{md}");
        assert!(md.contains("**crash** (stack overflow)"), "{md}");
        assert!(md.contains("| workload | arc |"), "{md}");
        assert!(
            md.contains("- `ring_1m`: gc takes 0.50× ouro's time."),
            "{md}"
        );
        assert!(md.contains("1970-01-01 00:00 UTC"));
        assert!(md.contains("Crates: gc 0.5.1."));
        assert!(md.contains("(benchmarks.svg)"));
    }

    #[test]
    fn threaded_rows_are_compared_with_ouro_sync() {
        let cells = [
            cell("ouro_sync", "threads", "ok", Some(2e7), ""),
            cell("arc", "threads", "ok", Some(1e7), ""),
            cell("dumpster_sync", "threads", "ok", Some(1e7), ""),
        ];
        let text = format!(
            "{{\"runs\":3,\"clock\":\"thread CPU time\",\"python\":\"\",\"libraries\":[\"ouro\"],\"threaded_libraries\":[\"ouro_sync\",\"arc\",\"dumpster_sync\"],\"workloads\":[{{\"name\":\"threads\",\"description\":\"d\"}}],\"results\":[{}]}}",
            cells.iter().map(cell_json).collect::<Vec<_>>().join(",")
        );
        let report = Report::parse(&text).unwrap();
        let md = markdown(&report, &machine());
        assert!(
            md.contains("| `threads` | 20.0 ms (1.00×) | 10.0 ms (0.50×) | 10.0 ms (0.50×) |"),
            "{md}"
        );
        // Arc is the floor, not a competitor.
        assert_eq!(
            report.ouro_not_fastest(),
            vec![("threads".into(), "dumpster_sync".into(), 0.5)]
        );
    }

    #[test]
    fn rc_is_not_counted_as_beating_ouro() {
        let slower = sample().ouro_not_fastest();
        assert_eq!(slower, vec![("ring_1m".into(), "gc".into(), 0.5)]);
    }

    #[test]
    fn svg_draws_log_bars_and_labels() {
        let svg = svg(&sample());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        // One bar per time, a label for the leak and the crash.
        assert_eq!(svg.matches("<title>").count(), 5);
        assert!(svg.contains(">leak</text>") && svg.contains(">crash</text>"));
        // A legend entry per library, a group label per workload.
        for name in [
            "ouro",
            "rc",
            "gc",
            "arc",
            "clone_drop",
            "ring_1m",
            "threads",
        ] {
            assert!(svg.contains(&format!(">{name}</text>")), "{name}");
        }
        // Log scale: 1 ms is half as tall as 1 s over 1 µs..1 s... here
        // decades run from 1 µs (4 µs floored) to 100 ms (30 ms ceiled).
        assert!(svg.contains(">1.00 µs</text>") && svg.contains(">100 ms</text>"));
        let height = |ns: &str| -> f64 {
            let title = format!("{ns}</title>");
            let at = svg.find(&title).unwrap();
            let rect = &svg[svg[..at].rfind("<rect").unwrap()..at];
            let h = rect.split("height=\"").nth(1).unwrap();
            h[..h.find('"').unwrap()].parse().unwrap()
        };
        // 2 ms vs 1 ms: one log10(2) of a decade apart; 5 decades = 320 px.
        let step = height("2.00 ms") - height("1.00 ms");
        assert!((step - 320.0 / 5.0 * 2f64.log10()).abs() < 0.2, "{step}");
        // Balanced tags.
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }

    #[test]
    fn formats_times_and_dates() {
        assert_eq!(format_ns(950.0), "950 ns");
        assert_eq!(format_ns(1_234.0), "1.23 µs");
        assert_eq!(format_ns(45_600_000.0), "45.6 ms");
        assert_eq!(format_ns(2.5e9), "2.50 s");
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(1_795_000_000), "2026-11-18 11:06 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn json_gains_the_machine() {
        let doc = "{\"runs\":3,\"results\":[]}\n";
        let out = with_machine(doc, &machine());
        let parsed: Json = serde_json::from_str(&out).unwrap();
        assert_eq!(
            parsed.pointer("/machine/cores").and_then(Json::as_f64),
            Some(2.0)
        );
        assert_eq!(
            parsed
                .pointer("/machine/versions/gc")
                .and_then(Json::as_str),
            Some("0.5.1")
        );
        // The document's own members follow, in their order.
        assert!(out.contains("}},\"runs\":3,\"results\":[]}"), "{out}");
        assert_eq!(parsed.get("runs").and_then(Json::as_f64), Some(3.0));
    }

    #[test]
    fn reads_locked_versions() {
        let lock = "[[package]]\nname = \"gc\"\nversion = \"0.5.1\"\n\n[[package]]\nname = \"libc\"\nversion = \"0.2.1\"\n\n[[package]]\nname = \"dumpster\"\nversion = \"2.1.0\"\n";
        assert_eq!(
            locked_versions(lock, &["gc", "dumpster"]),
            vec![
                ("dumpster".into(), "2.1.0".into()),
                ("gc".into(), "0.5.1".into())
            ]
        );
    }
}
