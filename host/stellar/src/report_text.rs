//! Plain-text renderings for the terminal: the dry-run plan preview and the end-of-run summary.

use std::fmt::Write;

use stellar_config::Plan;

use crate::run::RunOutcome;

/// What `stellar run --dry-run` prints: sizes, duration, endpoints and the first bursts.
pub fn plan_preview(plan: &Plan) -> String {
    let mut s = String::new();
    let provider = match &plan.provider {
        stellar_config::ProviderKind::Named(n) => n.clone(),
        stellar_config::ProviderKind::External { url } => format!("external URL {url}"),
    };
    let _ = writeln!(
        s,
        "plan for {} (provider {provider}, seed {}, {})",
        plan.source_path.display(),
        plan.seed,
        if plan.sequential {
            "sequential"
        } else {
            "concurrent"
        }
    );
    for sub in &plan.sub_experiments {
        let _ = writeln!(
            s,
            "  {}: {} bursts, {} requests, {} endpoint(s), ~{:.1}s",
            sub.slug,
            sub.bursts.len(),
            sub.total_requests(),
            sub.parallelism,
            sub.duration_estimate().as_secs_f64()
        );
        for b in sub.bursts.iter().take(5) {
            let _ = writeln!(
                s,
                "    burst {:>4} -> endpoint {} at {:>10.1} ms: {} request(s), spin {} ms",
                b.burst_id, b.endpoint, b.offset_ms, b.size, b.spin_ms
            );
        }
        if sub.bursts.len() > 5 {
            let _ = writeln!(s, "    ... {} more bursts", sub.bursts.len() - 5);
        }
    }
    for ignored in &plan.ignored {
        let _ = writeln!(
            s,
            "  note: {} = {} is ignored: {}",
            ignored.json_path, ignored.value, ignored.reason
        );
    }
    for warning in plan.warnings() {
        let _ = writeln!(s, "  warning: {warning}");
    }
    s
}

/// The summary table printed after a run, ending with the result directory.
pub fn run_summary(outcome: &RunOutcome) -> String {
    let mut s = stellar_results::render_table(&outcome.summaries);
    for (summary, report) in outcome.summaries.iter().zip(&outcome.reports) {
        if let Some(why) = &report.stopped_early {
            let _ = writeln!(
                s,
                "warning: {}: {why}; {} of {} planned requests were sent",
                summary.slug, report.sent, report.planned
            );
        }
    }
    for sub in &outcome.analysis.sub_experiments {
        for warning in &sub.warnings {
            let _ = writeln!(s, "warning: {}: {warning}", sub.slug);
        }
        if let Some(f) = &sub.fidelity {
            let ks =
                f.ks.map_or_else(String::new, |ks| format!(", IAT KS p = {:.3}", ks.p_value));
            let _ = writeln!(
                s,
                "{}: send lag p99 {:.2} ms (max {:.2} ms){ks}; cold starts: {} natural, {} scale-out; function/provider label disagreements: {}; the latency threshold would mislabel {}",
                sub.slug,
                f.send_lag.p99_ms,
                f.send_lag.max_ms,
                sub.cold_labels.natural,
                sub.cold_labels.scale_out,
                sub.cold_labels.function_provider_disagree,
                sub.cold_labels.function_threshold_disagree
            );
        }
    }
    let _ = writeln!(
        s,
        "\nresults: {}\nreport:  {}\nwall time: {:.1}s",
        outcome.run_dir.display(),
        outcome.run_dir.join(crate::analysis::REPORT_HTML).display(),
        outcome.wall_time.as_secs_f64()
    );
    s
}
