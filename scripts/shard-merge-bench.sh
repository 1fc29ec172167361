#!/usr/bin/env bash
# Measures `stellar merge` on synthetic shards: SHARDS x ROWS_PER_SHARD rows (default 4 x 250 000)
# of a prepared run against an external URL (nothing is deployed or sent). Prints the merge's
# wall time and peak memory (GNU time's maximum resident set size).
#
#   scripts/shard-merge-bench.sh [STELLAR_BINARY] [SHARDS] [ROWS_PER_SHARD]
set -euo pipefail
stellar=${1:-target/debug/stellar}
shards=${2:-4}
per_shard=${3:-250000}
total=$((shards * per_shard))
burst=1000
bursts=$(((total + burst - 1) / burst))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/exp.json" <<JSON
{"Provider": "http://127.0.0.1:9/", "Stellar": {"Seed": 1},
 "SubExperiments": [{"Title": "bench", "Bursts": $bursts, "BurstSizes": [$burst],
   "IATSeconds": 1, "IATType": "deterministic", "DesiredServiceTimes": ["1ms"]}]}
JSON
"$stellar" prepare "$work/exp.json" -o "$work/run" >/dev/null
python3 - "$work/run" "$shards" <<'PY'
import csv, json, os, random, sys
run, n = sys.argv[1], int(sys.argv[2])
plan = json.load(open(os.path.join(run, "plan.json")))
sub = plan["sub_experiments"][0]
header = ("Request ID,Host,Sent At,Received At,Client Latency (ms),Burst ID,Sub-experiment,"
          "Endpoint,Burst Size,Request Index,Planned Send (ms),Actual Send (ms),Send Lag (ms),"
          "Connect (ms),Time To Headers (ms),HTTP Status,Error Kind,Error,Instance ID,Cold,"
          "Function Spin (ms),Invocations On Instance,Provider Init (ms),Response Bytes,"
          "Provider Cold,Cold Label,Cold Source,Cold Kind,Retry After (s),Segment,Ready Gap (ms),"
          "In Flight At Receipt,First In Flight,Process Nonce,Platform Instance,Boot ID,"
          "Boot Time (unix s),Init Type,Provider Label,Start Label,Label Signal").split(",")
rng = random.Random(1)
writers, files = [], []
for i in range(n):
    d = os.path.join(run, "shards", str(i), sub["slug"])
    os.makedirs(d)
    f = open(os.path.join(d, "latencies.csv"), "w", newline="")
    w = csv.writer(f, lineterminator="\n")
    w.writerow(header)
    files.append(f); writers.append(w)
counts = [0] * n
first = 0
for b in sorted(sub["bursts"], key=lambda b: b["burst_id"]):
    for r in range(b["size"]):
        shard = (r + b["burst_id"]) % n
        lat = 5 + rng.expovariate(0.5)
        planned = b["offset_ms"]
        actual = planned + rng.random()
        row = [f"req-{first + r}", "127.0.0.1", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.010Z",
               f"{lat:.3f}", b["burst_id"], sub["slug"], b["endpoint"], b["size"], first + r,
               f"{planned:.3f}", f"{actual:.3f}", f"{actual - planned:.3f}", "0.100", f"{lat - 0.1:.3f}",
               200, "", "", f"inst-{r}", "", "", "", "", 2, "", "", "", "", "", 0]
        writers[shard].writerow(row + [""] * (len(header) - len(row)))
        counts[shard] += 1
    first += b["size"]
for f in files:
    f.close()
hash_ = plan["prepared"]["plan_sha256"]
planned = [counts[i] for i in range(n)]
for i in range(n):
    rec = {"schema": "stellar-shard/1", "shard": {"index": i, "count": n}, "plan_sha256": hash_,
           "run_id": plan["prepared"]["run_id"], "host": f"synthetic-{i}", "client": None, "pid": 0,
           "start_at": "2026-01-01T00:00:00.000Z", "start_at_unix_ms": 0.0, "grace_ms": 2000.0,
           "ready_before_start_ms": 1.0, "clock_at_start": None, "clock_at_end": None,
           "clock_error": None, "max_clock_error_ms": 5.0, "forced": False, "clock_refusal": None,
           "outcome": "complete", "planned_requests": [planned[i]], "sent_requests": [planned[i]]}
    json.dump(rec, open(os.path.join(run, "shards", str(i), "shard.json"), "w"))
print(f"{n} shards, rows per shard: {counts}")
PY
du -sh "$work/run/shards" | awk '{print "shard CSVs: " $1}'
/usr/bin/time -f "merge: %e s wall, %M KiB peak RSS" "$stellar" --verbose merge "$work/run" 2>&1 >/dev/null | grep -E "merge:|shards read|analysed"
