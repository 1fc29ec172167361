//! Turns the driver's chain replies into `data-transfers.csv` rows, and the rows into the
//! run's transfer plot and report section.
//!
//! Everything in a reply is hostile input: a malformed or incomplete chain report becomes an
//! error row saying what was wrong, never a panic, and every finished request gets at least
//! one row.

use std::path::Path;

use stellar_config::Plan;
use stellar_measure::MeasurementResponse;
use stellar_measure::chain::{ChainHop, ChainReport, Transfer};
use stellar_results::transfers::{
    METHOD_ROUND_TRIP, METHOD_UPLOAD_DOWNLOAD, TRANSFERS_CSV, TransferRow, TransferWriter,
    read_transfers, transfer_points,
};
use tokio::sync::mpsc;

use crate::drive::TappedReply;

/// Writes a sub-experiment's `data-transfers.csv` from the tapped replies until the driver
/// drops its sender.
pub async fn sink(
    path: &Path,
    append: bool,
    mut replies: mpsc::UnboundedReceiver<TappedReply>,
) -> anyhow::Result<u64> {
    let mut writer = if append {
        TransferWriter::append(path)?
    } else {
        TransferWriter::create(path)?
    };
    let mut written = 0;
    while let Some(reply) = replies.recv().await {
        for row in rows_of(&reply) {
            writer.write(&row)?;
            written += 1;
        }
    }
    Ok(written)
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The rows of one request: one per hop, or one error row.
pub fn rows_of(reply: &TappedReply) -> Vec<TransferRow> {
    let row = &reply.row;
    let base = TransferRow {
        request_id: row.request_id.clone(),
        sub_experiment: row.sub_experiment.clone(),
        endpoint: row.endpoint,
        request_index: row.request_index,
        hop: None,
        from_instance: String::new(),
        to_instance: String::new(),
        transfer: String::new(),
        payload_bytes: 0,
        bytes_received: None,
        hash_ok: None,
        transfer_ms: None,
        transfer_method: String::new(),
        send_ms: None,
        receive_ms: None,
        wall_transfer_ms: None,
        wall_spans_two_clocks: None,
        receiver_cold: None,
        successor_init_ms: None,
        client_latency_ms: row.client_latency_ms,
        error: String::new(),
    };
    let fail = |error: String| {
        vec![TransferRow {
            error,
            ..base.clone()
        }]
    };
    if !row.is_ok() {
        return fail(if row.error.is_empty() {
            format!("request failed ({})", row.error_kind)
        } else {
            row.error.clone()
        });
    }
    let report = match serde_json::from_slice::<MeasurementResponse>(&reply.body) {
        Ok(MeasurementResponse {
            chain: Some(report),
            ..
        }) => report,
        Ok(_) => return fail("the reply carries no chain report".into()),
        Err(e) => return fail(format!("the reply is not a chain reply: {e}")),
    };
    if let Err(problem) = check_report(&report) {
        return fail(problem);
    }
    let base = TransferRow {
        transfer: report.transfer.as_str().to_owned(),
        payload_bytes: report.payload_length_bytes,
        ..base
    };
    report
        .hops
        .windows(2)
        .map(|pair| hop_row(&base, report.transfer, &pair[0], &pair[1]))
        .collect()
}

/// Hops must be 0..N in order, every sender with a send record and every receiver with a
/// receive record.
fn check_report(report: &ChainReport) -> Result<(), String> {
    if report.hops.len() != report.length as usize || report.length < 2 {
        return Err(format!(
            "the chain report has {} hop records for a chain of {}",
            report.hops.len(),
            report.length
        ));
    }
    for (i, hop) in report.hops.iter().enumerate() {
        let last = i + 1 == report.hops.len();
        if hop.hop as usize != i || hop.send.is_some() == last || hop.receive.is_some() != (i > 0) {
            return Err(format!("hop record {i} of the chain report is malformed"));
        }
    }
    Ok(())
}

fn hop_row(base: &TransferRow, transfer: Transfer, from: &ChainHop, to: &ChainHop) -> TransferRow {
    let (Some(send), Some(receive)) = (&from.send, &to.receive) else {
        return base.clone();
    };
    let transfer_ms = match transfer {
        // The receiver's handling overlaps the body's arrival: take off only what it did
        // after the last payload byte (its successors, the reply).
        Transfer::Inline => {
            ms(send.round_trip_ns) - (ms(to.handled_ns) - ms(receive.duration_ns)).max(0.0)
        }
        Transfer::S3 | Transfer::AzureBlob => ms(send.payload_sent_ns) + ms(receive.duration_ns),
    };
    let wall_ns = i128::from(receive.end_unix_ns) - i128::from(send.start_unix_ns);
    let same_clock = matches!((&from.boot_id, &to.boot_id), (Some(a), Some(b)) if a == b);
    TransferRow {
        hop: Some(from.hop),
        from_instance: from.instance_id.clone(),
        to_instance: to.instance_id.clone(),
        bytes_received: Some(receive.bytes),
        hash_ok: Some(receive.sha256_ok),
        transfer_ms: Some(transfer_ms),
        transfer_method: match transfer {
            Transfer::Inline => METHOD_ROUND_TRIP,
            Transfer::S3 | Transfer::AzureBlob => METHOD_UPLOAD_DOWNLOAD,
        }
        .to_owned(),
        send_ms: Some(ms(send.payload_sent_ns)),
        receive_ms: Some(ms(receive.duration_ns)),
        wall_transfer_ms: Some(wall_ns as f64 / 1e6),
        wall_spans_two_clocks: Some(!same_clock),
        receiver_cold: Some(to.cold),
        successor_init_ms: send.successor_init_ms,
        ..base.clone()
    }
}

/// The run's data-transfer section (plot and table) from every chain sub-experiment's
/// `data-transfers.csv`, or `None` when the run has no chain.
pub fn report_section(
    plan: &Plan,
    run_dir: &Path,
) -> anyhow::Result<Option<stellar_results::report::Section>> {
    let mut rows = Vec::new();
    let mut failed = 0;
    for sub in plan
        .sub_experiments
        .iter()
        .filter(|s| s.data_transfer_chain_length > 1)
    {
        let path = run_dir.join(&sub.slug).join(TRANSFERS_CSV);
        if path.exists() {
            let sub_rows = read_transfers(&path)?;
            failed += sub_rows.iter().filter(|r| !r.error.is_empty()).count();
            rows.extend(sub_rows);
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let points = transfer_points(&rows, plan.seed);
    let plot = stellar_results::plot::write_transfer_plot(run_dir, "Data transfers", &points)?;
    let table = stellar_results::report::Table {
        caption: "Median transfer time per hop (warm receivers, payload intact), 95 % bootstrap CI"
            .into(),
        header: [
            "transfer",
            "payload (bytes)",
            "hops",
            "median (ms)",
            "95 % CI (ms)",
        ]
        .map(String::from)
        .to_vec(),
        rows: points
            .iter()
            .map(|p| {
                vec![
                    p.transfer.clone(),
                    p.payload_bytes.to_string(),
                    p.n.to_string(),
                    format!("{:.3}", p.median_ms),
                    p.ci.map_or_else(
                        || "-".into(),
                        |c| format!("{:.3} – {:.3}", c.lower, c.upper),
                    ),
                ]
            })
            .collect(),
    };
    let hash_failures = rows.iter().filter(|r| r.hash_ok == Some(false)).count();
    let mut warnings = Vec::new();
    if hash_failures > 0 {
        warnings.push(format!(
            "{hash_failures} hops received a payload whose SHA-256 or length differed from the sender's"
        ));
    }
    Ok(Some(stellar_results::report::Section {
        heading: "Data transfers".into(),
        warnings,
        paragraphs: vec![format!(
            "Per hop of each chain request (data-transfers.csv): inline transfers are the \
             sender's round trip minus what the receiver did after the payload's last byte, \
             storage transfers the \
             sender's upload plus the receiver's download; each duration is measured on one \
             function's monotonic clock. {} of {} rows are failed requests.",
            failed,
            rows.len()
        )],
        tables: vec![table],
        plots: vec![stellar_results::report::PlotRef {
            png_path: plot.png,
            caption: plot.note.unwrap_or_else(|| {
                "Transfer time per hop against payload size (log–log), median with 95 % CI".into()
            }),
        }],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stellar_measure::chain::{ReceiveSide, SendSide};
    use stellar_results::LatencyRow;

    fn hop(i: u32, last: bool, boot: &str) -> ChainHop {
        ChainHop {
            hop: i,
            instance_id: format!("i{i}"),
            boot_id: Some(boot.into()),
            cold: false,
            received_unix_ns: 1_000,
            handled_ns: 5_000_000,
            receive: (i > 0).then(|| ReceiveSide {
                start_unix_ns: 10_000_000,
                end_unix_ns: 13_000_000,
                duration_ns: 3_000_000,
                bytes: 10,
                sha256: "x".into(),
                sha256_ok: true,
                delete_ns: None,
            }),
            send: (!last).then_some(SendSide {
                start_unix_ns: 9_000_000,
                payload_sent_ns: 2_000_000,
                round_trip_ns: 8_000_000,
                successor_init_ms: Some(1.5),
            }),
        }
    }

    fn reply(transfer: Transfer, hops: Vec<ChainHop>, length: u32) -> TappedReply {
        let mut resp: serde_json::Value = serde_json::json!({
            "RequestID": "r1", "TimestampChain": ["1"], "instance_id": "i0", "cold": false,
            "invocations_on_instance": 2, "instance_start_unix_ns": 1, "handler_received_unix_ns": 1,
            "handler_done_unix_ns": 1, "spin_ns": 0, "spin_requested_ms": 0.0, "increments": 0,
            "payload_length_bytes": 10,
            "runtime": {"provider": "local", "region": null, "memory_mb": null, "arch": "x86_64",
                        "cpu_model": null, "boot_id": null, "hostname": null, "pid": 1, "num_cpus": null}
        });
        resp["chain"] = serde_json::to_value(ChainReport {
            transfer,
            length,
            payload_length_bytes: 10,
            payload_seed: 1,
            payload_sha256: "x".into(),
            hops,
        })
        .unwrap();
        TappedReply {
            row: LatencyRow {
                request_id: "r1".into(),
                client_latency_ms: Some(20.0),
                ..LatencyRow::default()
            },
            body: serde_json::to_vec(&resp).unwrap().into(),
        }
    }

    #[test]
    fn inline_and_storage_transfer_times_come_from_durations() {
        let hops = vec![hop(0, false, "b"), hop(1, true, "b")];
        let rows = rows_of(&reply(Transfer::Inline, hops.clone(), 2));
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        // 8 ms round trip minus (5 ms handling - 3 ms spent receiving the payload).
        assert_eq!(r.transfer_ms, Some(6.0));
        assert_eq!(r.transfer_method, METHOD_ROUND_TRIP);
        assert_eq!((r.send_ms, r.receive_ms), (Some(2.0), Some(3.0)));
        assert_eq!(r.wall_transfer_ms, Some(4.0));
        assert_eq!(r.wall_spans_two_clocks, Some(false));
        assert_eq!(
            (r.from_instance.as_str(), r.to_instance.as_str()),
            ("i0", "i1")
        );
        let rows = rows_of(&reply(Transfer::S3, hops, 2));
        assert_eq!(
            rows[0].transfer_ms,
            Some(5.0),
            "upload 2 ms + download 3 ms"
        );
        let two_machines = vec![hop(0, false, "a"), hop(1, true, "b")];
        let rows = rows_of(&reply(Transfer::Inline, two_machines, 2));
        assert_eq!(rows[0].wall_spans_two_clocks, Some(true));
    }

    #[test]
    fn hostile_or_failed_replies_become_error_rows() {
        let missing_hop = rows_of(&reply(Transfer::Inline, vec![hop(0, false, "b")], 2));
        assert!(
            missing_hop[0]
                .error
                .contains("1 hop records for a chain of 2")
        );
        let out_of_order = rows_of(&reply(
            Transfer::Inline,
            vec![hop(1, false, "b"), hop(0, true, "b")],
            2,
        ));
        assert!(
            out_of_order[0].error.contains("malformed"),
            "{out_of_order:?}"
        );
        let garbage = TappedReply {
            body: bytes::Bytes::from_static(b"<html>"),
            ..reply(Transfer::Inline, vec![], 2)
        };
        assert!(rows_of(&garbage)[0].error.contains("not a chain reply"));
        let failed = TappedReply {
            row: LatencyRow {
                error_kind: "http-status".into(),
                error: "HTTP 502: chain hop 1 -> 2 (x): connecting".into(),
                ..LatencyRow::default()
            },
            body: bytes::Bytes::new(),
        };
        let rows = rows_of(&failed);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].error.contains("chain hop 1 -> 2"));
        assert_eq!(rows[0].hop, None);
    }
}
