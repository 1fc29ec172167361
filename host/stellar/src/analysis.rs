//! Turns a finished sub-experiment's rows into everything a reader needs to trust them: cold
//! labels (written back into `latencies.csv`), statistics with confidence intervals, schedule
//! fidelity, plots, `analysis.json`, and at the end of a run one `report.html`.
//!
//! It reads only what a run leaves on disk (`plan.json` and each `latencies.csv`), so `stellar
//! report RUN_DIR` rebuilds exactly what `stellar run` wrote, and a run that crashed half-way
//! can still be analysed.
//!
//! Memory stays small at any run length: `latencies.csv` is read in one streaming pass into
//! 40-byte [`CompactRow`]s (all statistics use every sample, exactly), the labels are written
//! back in a second streaming pass, and the plots draw an evenly spaced sample of at most
//! [`PLOT_ROWS_MAX`] rows (their title says so).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use stellar_config::{Plan, SubExperimentPlan};
use stellar_results::cold::{SignalAgreement, label_rows_with};
use stellar_results::fidelity::{FidelityConfig, FidelityReport, IatModel, check_rows};
use stellar_results::labels::{StartLabelSummary, StartThresholds};
use stellar_results::plot::{AllPlots, PlotInput, write_all_plots};
use stellar_results::report::{PlotRef, ReportInput, Section, Table, write_report};
use stellar_results::uncertainty::{GroupStats, PercentileEstimate, grouped_latency_stats};
use stellar_results::{CompactRow, LatencyWriter, SubExperimentSummary, for_each_latency};

/// File name of the run's report.
pub const REPORT_HTML: &str = "report.html";
/// File name of the machine-readable analysis (per sub-experiment and per run).
pub const ANALYSIS_JSON: &str = "analysis.json";

/// Everything computed for one sub-experiment.
#[derive(Debug, Clone, Serialize)]
pub struct SubAnalysis {
    pub slug: String,
    pub title: String,
    #[serde(skip)]
    pub summary: SubExperimentSummary,
    /// All / cold / warm / per burst size, with bootstrap CIs (seeded by the plan's seed).
    pub statistics: Vec<GroupStats>,
    pub cold_labels: SignalAgreement,
    /// Requests per start label, and where the label disagrees with other signals.
    pub start_labels: StartLabelSummary,
    /// `None` when the sub-experiment sent nothing or its IAT model is unknown.
    pub fidelity: Option<FidelityReport>,
    /// Plain-English problems found, for the report's top.
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub plots: Option<AllPlots>,
}

/// The whole run's analysis (`analysis.json` at the run's root; `stellar run --json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunAnalysis {
    pub run_dir: PathBuf,
    pub seed: u64,
    pub provider: String,
    pub sub_experiments: Vec<SubAnalysis>,
}

/// Most rows a plot draws; larger sub-experiments are plotted from every k-th row.
pub const PLOT_ROWS_MAX: usize = 50_000;

/// Labels, analyses and plots the rows of `sub` in `dir`'s `latencies.csv`, writing into
/// `dir`: `latencies.csv` is rewritten with the labels (atomically), plus `statistics.csv`,
/// the plots and `analysis.json`.
pub fn analyse_sub_experiment(
    plan: &Plan,
    sub: &SubExperimentPlan,
    dir: &Path,
) -> anyhow::Result<SubAnalysis> {
    let csv = dir.join(stellar_results::LATENCIES_CSV);
    let compact = stellar_results::read_compact(&csv)?;
    let mut rows = compact.rows;
    let threshold = sub.cold_threshold_ms as f64;
    let starts = StartThresholds {
        prewarm_gap_ms: plan.settings.prewarm_gap_ms as f64,
        queued_gap_ms: plan.settings.queued_gap_ms as f64,
    };
    let cold_labels = label_rows_with(&mut rows, threshold, &starts);
    let start_labels = StartLabelSummary::of_rows(&rows, starts, threshold);
    rewrite_latencies(&csv, &rows)?;

    let title = sub_title(sub);
    let summary = stellar_results::write_sub_experiment_outputs(dir, &title, &rows)
        .with_context(|| format!("writing statistics of {}", sub.slug))?;
    let summary = SubExperimentSummary {
        slug: if compact.sub_experiment.is_empty() {
            summary.slug
        } else {
            compact.sub_experiment
        },
        ..summary
    };
    let plots = plot_sample(&title, &rows, |title, rows| {
        write_all_plots(dir, &PlotInput::new(title, rows))
    })
    .with_context(|| format!("drawing plots of {}", sub.slug))?;
    let statistics = grouped_latency_stats(&rows, plan.seed);

    let mut warnings = compact.segments.notes();
    let fidelity = if rows.is_empty() {
        None
    } else {
        let model = IatModel::from_stellar(sub.iat_type.name(), sub.iat_seconds)?;
        let report = check_rows(&rows, &model, &FidelityConfig::default())?;
        warnings.extend(report.warnings.iter().cloned());
        Some(report)
    };
    if cold_labels.function_provider_disagree > 0 {
        warnings.push(format!(
            "the function and the provider disagreed about {} of {} cold/warm labels",
            cold_labels.function_provider_disagree, cold_labels.function_provider_compared
        ));
    }
    if start_labels.provider_disagree > 0 {
        warnings.push(format!(
            "the start label disagreed with the provider's own label on {} of {} requests",
            start_labels.provider_disagree, start_labels.provider_compared
        ));
    }
    if summary.errors > 0 {
        warnings.push(format!(
            "{} of {} requests failed (see the Error Kind column)",
            summary.errors, summary.requests
        ));
    }
    let analysis = SubAnalysis {
        slug: sub.slug.clone(),
        title: sub.title.clone(),
        summary,
        statistics,
        cold_labels,
        start_labels,
        fidelity,
        warnings,
        plots: Some(plots),
    };
    write_json(&dir.join(ANALYSIS_JSON), &analysis)?;
    Ok(analysis)
}

/// Re-analyses every sub-experiment of the run in `run_dir` from its files and rewrites the
/// report (`stellar report`).
pub fn analyse_run_dir(run_dir: &Path) -> anyhow::Result<RunAnalysis> {
    let plan = read_plan(run_dir)?;
    let mut subs = Vec::new();
    for sub in &plan.sub_experiments {
        let dir = run_dir.join(&sub.slug);
        let csv = dir.join(stellar_results::LATENCIES_CSV);
        if !csv.is_file() {
            tracing::warn!(sub_experiment = %sub.slug, "no latencies.csv: the run did not reach it");
            continue;
        }
        subs.push(analyse_sub_experiment(&plan, sub, &dir)?);
    }
    finish_run(&plan, run_dir, subs)
}

/// Writes the run-level `analysis.json` and `report.html`.
pub fn finish_run(
    plan: &Plan,
    run_dir: &Path,
    sub_experiments: Vec<SubAnalysis>,
) -> anyhow::Result<RunAnalysis> {
    finish_run_with(plan, run_dir, sub_experiments, Vec::new(), Vec::new())
}

/// [`finish_run`] with warnings and sections the caller adds to `report.html` (a merged
/// sharded run: whether it is partial, and its shards).
pub fn finish_run_with(
    plan: &Plan,
    run_dir: &Path,
    sub_experiments: Vec<SubAnalysis>,
    extra_warnings: Vec<String>,
    extra_sections: Vec<Section>,
) -> anyhow::Result<RunAnalysis> {
    let analysis = RunAnalysis {
        run_dir: run_dir.to_owned(),
        seed: plan.seed,
        provider: provider_name(plan),
        sub_experiments,
    };
    write_json(&run_dir.join(ANALYSIS_JSON), &analysis)?;
    let mut input = report_input(plan, run_dir, &analysis)?;
    input.warnings.splice(0..0, extra_warnings);
    input.sections.splice(0..0, extra_sections);
    if let Some(section) = crate::chain::transfers::report_section(plan, run_dir)? {
        input.sections.push(section);
    }
    write_report(&input, &run_dir.join(REPORT_HTML))?;
    Ok(analysis)
}

/// Reads `plan.json` from a run directory.
pub fn read_plan(run_dir: &Path) -> anyhow::Result<Plan> {
    let path = run_dir.join("plan.json");
    let text = fs_err::read_to_string(&path)
        .with_context(|| format!("{} is not a stellar run directory", run_dir.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a stellar plan", path.display()))
}

fn provider_name(plan: &Plan) -> String {
    match &plan.provider {
        stellar_config::ProviderKind::Named(name) => name.clone(),
        stellar_config::ProviderKind::External { url } => url.clone(),
    }
}

/// The plot title of a sub-experiment (second line: its schedule).
pub fn sub_title(sub: &SubExperimentPlan) -> String {
    format!(
        "{}\nIAT ~{}s ({}), burst sizes {:?}",
        sub.title,
        sub.iat_seconds,
        sub.iat_type.name(),
        sub.burst_sizes
    )
}

/// Calls `draw` with `rows`, or with every k-th of them when there are more than
/// [`PLOT_ROWS_MAX`] (the title then gets a line saying so).
fn plot_sample<T>(
    title: &str,
    rows: &[CompactRow],
    draw: impl FnOnce(&str, &[CompactRow]) -> T,
) -> T {
    if rows.len() <= PLOT_ROWS_MAX {
        return draw(title, rows);
    }
    let step = rows.len().div_ceil(PLOT_ROWS_MAX);
    let sample: Vec<CompactRow> = rows.iter().step_by(step).copied().collect();
    let title = format!(
        "{title}\nplotted: one row in {step} of {} requests (statistics use all)",
        rows.len()
    );
    draw(&title, &sample)
}

/// Rewrites `path` with the cold labels of `labelled` (its rows, in file order), streaming it
/// row by row into a temporary file and renaming that over it, so the streamed original
/// survives any failure here.
fn rewrite_latencies(path: &Path, labelled: &[CompactRow]) -> anyhow::Result<()> {
    let tmp = path.with_extension("csv.tmp");
    let mut writer = LatencyWriter::create_buffered(&tmp)?;
    let mut labels = labelled.iter();
    for_each_latency(path, |mut row| {
        if let Some(c) = labels.next() {
            c.copy_labels_into(&mut row);
        }
        writer.write(&row)
    })?;
    writer.finish()?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    fs_err::write(path, text + "\n")?;
    Ok(())
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

fn estimate(e: &PercentileEstimate) -> String {
    match e.ci {
        Some(ci) => format!("{} [{}, {}]", ms(e.value), ms(ci.lower), ms(ci.upper)),
        None => ms(e.value),
    }
}

fn report_input(
    plan: &Plan,
    run_dir: &Path,
    analysis: &RunAnalysis,
) -> anyhow::Result<ReportInput> {
    let run_id = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let requests: u64 = analysis
        .sub_experiments
        .iter()
        .map(|s| s.summary.requests)
        .sum();
    let errors: u64 = analysis
        .sub_experiments
        .iter()
        .map(|s| s.summary.errors)
        .sum();
    let key_facts = vec![
        ("Provider".to_owned(), analysis.provider.clone()),
        ("Seed".to_owned(), plan.seed.to_string()),
        ("Requests".to_owned(), requests.to_string()),
        ("Failed".to_owned(), errors.to_string()),
        (
            "Sub-experiments".to_owned(),
            analysis.sub_experiments.len().to_string(),
        ),
        (
            "Connection".to_owned(),
            format!("{:?}", plan.settings.connection).to_lowercase(),
        ),
    ];
    let sections = analysis.sub_experiments.iter().map(sub_section).collect();
    let mut warnings = plan.warnings();
    for ignored in &plan.ignored {
        warnings.push(format!(
            "{} = {} was accepted but ignored: {}",
            ignored.json_path, ignored.value, ignored.reason
        ));
    }
    Ok(ReportInput {
        title: plan
            .source_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "stellar run".into()),
        run_id,
        created: humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(plan.created_unix_ms),
        )
        .to_string(),
        provider: analysis.provider.clone(),
        experiment_file: plan.source_path.display().to_string(),
        key_facts,
        warnings,
        sections,
        plan_json: Some(serde_json::to_string_pretty(plan)?),
    })
}

/// Requests per start label and the disagreements between signals (latency percentiles per
/// label are in the statistics table, groups `label-*`).
fn start_label_table(s: &StartLabelSummary) -> Table {
    let mut rows: Vec<Vec<String>> = s
        .counts
        .iter()
        .map(|(label, n)| vec![format!("requests labelled {label}"), n.to_string()])
        .collect();
    rows.push(vec![
        "label vs provider's own label: disagree / compared".into(),
        format!("{} / {}", s.provider_disagree, s.provider_compared),
    ]);
    for (pair, n) in &s.provider_confusion {
        rows.push(vec![format!("  {pair}"), n.to_string()]);
    }
    rows.push(vec![
        "first request of a process, not a cold start".into(),
        s.first_request_not_cold.to_string(),
    ]);
    rows.push(vec![
        "cold (queued), not the first request of its process".into(),
        s.cold_not_first_request.to_string(),
    ]);
    rows.push(vec![
        "latency threshold disagrees with the label".into(),
        s.threshold_disagree.to_string(),
    ]);
    if let Some(t) = &s.thresholds {
        rows.push(vec![
            "prewarm gap / queued gap used (ms)".into(),
            format!("{} / {}", t.prewarm_gap_ms, t.queued_gap_ms),
        ]);
    }
    if let Some(gap) = s.calibrated_prewarm_gap_ms {
        rows.push(vec![
            "prewarm gap calibrated from this run's cold starts (2 × p99, ms)".into(),
            format!("{gap:.3}"),
        ]);
    }
    Table {
        caption: "Start labels (why a request was or was not slowed by an instance start)".into(),
        header: ["measure", "count"].map(String::from).to_vec(),
        rows,
    }
}

fn sub_section(sub: &SubAnalysis) -> Section {
    let mut tables = Vec::new();
    let rows = sub
        .statistics
        .iter()
        .filter_map(|g| {
            let s = g.stats.as_ref()?;
            Some(vec![
                g.group.to_string(),
                s.n.to_string(),
                estimate(&s.p50),
                estimate(&s.p95),
                estimate(&s.p99),
                s.tmr.map_or_else(|| "-".into(), |t| format!("{t:.2}")),
                ms(s.mean),
                ms(s.max),
            ])
        })
        .collect();
    tables.push(Table {
        caption: "Client latency (ms): percentile [95% bootstrap CI]; TMR = p99 / p50".into(),
        header: ["group", "n", "p50", "p95", "p99", "TMR", "mean", "max"]
            .map(String::from)
            .to_vec(),
        rows,
    });
    let c = &sub.cold_labels;
    tables.push(Table {
        caption: "Cold-start labels".into(),
        header: ["measure", "count"].map(String::from).to_vec(),
        rows: vec![
            vec![
                "labelled by the function".into(),
                c.from_function.to_string(),
            ],
            vec![
                "labelled by the provider".into(),
                c.from_provider.to_string(),
            ],
            vec![
                "labelled by the latency threshold".into(),
                c.from_threshold.to_string(),
            ],
            vec![
                "function vs provider: disagree / compared".into(),
                format!(
                    "{} / {}",
                    c.function_provider_disagree, c.function_provider_compared
                ),
            ],
            vec![
                "function vs threshold: disagree / compared".into(),
                format!(
                    "{} / {}",
                    c.function_threshold_disagree, c.function_threshold_compared
                ),
            ],
            vec!["natural cold starts".into(), c.natural.to_string()],
            vec!["scale-out cold starts".into(), c.scale_out.to_string()],
        ],
    });
    tables.push(start_label_table(&sub.start_labels));
    let mut paragraphs = Vec::new();
    if let Some(f) = &sub.fidelity {
        let mut rows = vec![
            vec!["requests checked".into(), f.requests.to_string()],
            vec!["send lag p50 (ms)".into(), ms(f.send_lag.p50_ms)],
            vec!["send lag p99 (ms)".into(), ms(f.send_lag.p99_ms)],
            vec!["send lag max (ms)".into(), ms(f.send_lag.max_ms)],
            vec![
                format!("sent later than {} ms", f.late_tolerance_ms),
                f.late_count.to_string(),
            ],
            vec!["inter-burst gaps examined".into(), f.gaps.to_string()],
        ];
        if let Some(ks) = &f.ks {
            rows.push(vec![
                "KS statistic D (gaps vs configured IAT)".into(),
                format!("{:.4}", ks.statistic),
            ]);
            rows.push(vec!["KS p-value".into(), format!("{:.4}", ks.p_value)]);
        }
        if let Some(dev) = f.gap_max_deviation_ms {
            rows.push(vec!["largest gap deviation (ms)".into(), ms(dev)]);
        }
        rows.push(vec![
            "client saturated".into(),
            if f.saturated { "yes" } else { "no" }.into(),
        ]);
        tables.push(Table {
            caption: "Schedule fidelity (planned vs actual send times)".into(),
            header: ["check", "value"].map(String::from).to_vec(),
            rows,
        });
        if f.is_clean() {
            paragraphs.push("The schedule was met: no late sends, and the realised inter-arrival times fit the configured distribution.".into());
        }
    }
    Section {
        heading: format!("{} ({})", sub.title, sub.slug),
        warnings: sub.warnings.clone(),
        paragraphs,
        tables,
        plots: sub
            .plots
            .as_ref()
            .map(PlotRef::for_plots)
            .unwrap_or_default(),
    }
}
