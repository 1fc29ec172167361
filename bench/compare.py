#!/usr/bin/env python3
"""Client overhead of stellar beside oha, wrk and hey, against nginx on loopback.

Not a test: it prints numbers (a markdown table) for the README's Performance section.

Every tool sends the same plan to the same no-op nginx (`return 200`) on 127.0.0.1:
  paced-keepalive   RATE requests/s for DURATION s over keep-alive connections
  paced-fresh       the same with a new connection per request
  burst-500         bursts of 500 concurrent requests on fresh connections
and the table gives each tool's latency p50/p99 and stellar's ratio to it (< 1: stellar
measured less client overhead). wrk cannot pace (it is closed-loop) nor open a connection
per request, so it only appears in paced-keepalive, run with as many connections as oha and
hey use; the difference is stated in the table. stellar's own columns add what the others do
not record: send lag (actual minus planned send) and the spread of a burst's release.

Usage: bench/compare.py [--stellar target/release/stellar] [--rate 5000] [--duration 4]
                        [--scale 1000000]   (also: peak RSS of a run of that many requests)
Needs nginx (Debian `nginx-light`), and uses wrk, hey (Debian) and oha (`cargo install oha`)
when they are on PATH; a missing tool is skipped and named in the output.
"""

import argparse
import csv
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(work):
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  keepalive_requests 10000000;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ return 200 "ok"; }}
  }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("nginx did not start (see nginx-error.log)")


def run_measured(cmd):
    """Runs cmd and returns its stdout (exits on failure)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{err[-2000:]}")
    return out


def run_with_rusage(cmd):
    """Runs cmd; returns (stdout, its own peak RSS in MiB, its user+sys CPU seconds)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            sys.exit(f"{cmd[0]} failed ({code}):\n{err.read().decode()[-3000:]}")
    return out.decode(), usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 1)) - 1))
    return s[k]


def stellar_run(stellar, work, name, url, *, bursts, size, iat_s, connection):
    exp = work / f"{name}.json"
    exp.write_text(json.dumps({
        "Provider": url,
        "Stellar": {"Seed": 1, "Connection": connection, "MaxFailures": bursts * size},
        "SubExperiments": [{"Title": name, "Bursts": bursts, "BurstSizes": [size],
                            "IATSeconds": iat_s, "IATType": "deterministic",
                            "DesiredServiceTimes": ["0ms"]}],
    }))
    out_dir = work / "results"
    stdout, rss, cpu = run_with_rusage(
        [stellar, "run", str(exp), "--json", "-o", str(out_dir)])
    analysis = json.loads(stdout)
    sub = analysis["sub_experiments"][0]
    run_dir = Path(analysis["run_dir"])
    lat, lag, sends_by_burst, errors = [], [], {}, 0
    with open(run_dir / sub["slug"] / "latencies.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["Error Kind"]:
                errors += 1
                continue
            lat.append(float(row["Client Latency (ms)"]))
            lag.append(float(row["Send Lag (ms)"]))
            sends_by_burst.setdefault(row["Burst ID"], []).append(float(row["Actual Send (ms)"]))
    spreads = [max(v) - min(v) for v in sends_by_burst.values() if len(v) > 1]
    shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "n": len(lat), "errors": errors,
        "lag_p99": pct(lag, 0.99), "lag_max": max(lag) if lag else float("nan"),
        "spread_median": statistics.median(spreads) if spreads else None,
        "spread_max": max(spreads) if spreads else None,
        "rss_mib": rss, "cpu_s": cpu,
    }


def oha(url, n, *, conns, rate=None, fresh=False):
    if not shutil.which("oha"):
        return None
    cmd = ["oha", "-n", str(n), "-c", str(conns), "--no-tui", "--output-format", "json", url]
    if rate:
        cmd[1:1] = ["-q", str(rate)]
    if fresh:
        cmd.insert(1, "--disable-keepalive")
    out = run_measured(cmd)
    data = json.loads(out)
    p = data["latencyPercentiles"]
    return {"p50": p["p50"] * 1e3, "p99": p["p99"] * 1e3}


def hey(url, n, *, conns, rate=None, fresh=False):
    if not shutil.which("hey"):
        return None
    cmd = ["hey", "-n", str(n), "-c", str(conns)]
    if rate:
        cmd += ["-q", str(max(1, rate // conns))]
    if fresh:
        cmd.append("-disable-keepalive")
    out = run_measured(cmd + [url])
    found = dict(re.findall(r"(\d+)%% in ([\d.]+) secs".replace("%%", "%"), out))
    return {"p50": float(found["50"]) * 1e3, "p99": float(found["99"]) * 1e3}


def wrk(url, duration, *, conns):
    if not shutil.which("wrk"):
        return None
    out = run_measured(["wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--latency", url])
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def grab(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * unit[m.group(2)]
    return {"p50": grab(50), "p99": grab(99)}


def fmt(v):
    return "–" if v is None or v != v else f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stellar", default="target/release/stellar")
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--bursts", type=int, default=5, help="bursts of 500 (1 s apart)")
    ap.add_argument("--scale", type=int, default=0,
                    help="also run this many requests (bursts of 250, 50 ms apart) for peak RSS")
    ap.add_argument("--tools", default="oha,wrk,hey",
                    help="comma-separated tools to compare with ('' for stellar alone)")
    ap.add_argument("--burst-modes", default="fresh,preconnect",
                    help="connection modes of the burst-500 plan")
    ap.add_argument("--paced", default="keepalive,fresh", help="paced plans to run")
    args = ap.parse_args()
    stellar = str(Path(args.stellar).resolve())
    if not shutil.which("nginx"):
        sys.exit("nginx is not installed (apt-get install nginx-light)")
    tools = [t for t in args.tools.split(",") if t]
    missing = [t for t in tools if not shutil.which(t)]
    work = Path(tempfile.mkdtemp(prefix="stellar-bench-"))
    nginx, port = start_nginx(work)
    url = f"http://127.0.0.1:{port}/"
    n = int(args.rate * args.duration)
    conns = 50
    rows = []
    try:
        paced = [p for p in (("paced-keepalive", "reuse", False), ("paced-fresh", "fresh", True))
                 if p[0].removeprefix("paced-") in args.paced.split(",")]
        for plan, connection, fresh in paced:
            s = stellar_run(stellar, work, plan, url, bursts=n, size=1,
                            iat_s=1.0 / args.rate, connection=connection)
            others = {}
            if "oha" in tools:
                others["oha"] = oha(url, n, conns=conns, rate=args.rate, fresh=fresh)
            if "hey" in tools:
                others["hey"] = hey(url, n, conns=conns, rate=args.rate, fresh=fresh)
            if "wrk" in tools and not fresh:
                others["wrk (closed loop)"] = wrk(url, args.duration, conns=conns)
            rows.append((plan, s, others))
        for connection in args.burst_modes.split(","):
            s = stellar_run(stellar, work, f"burst-500-{connection}", url, bursts=args.bursts,
                            size=500, iat_s=1.0, connection=connection)
            others = {}
            if connection == "fresh":
                if "oha" in tools:
                    others["oha"] = oha(url, 500, conns=500, fresh=True)
                if "hey" in tools:
                    others["hey"] = hey(url, 500, conns=500, fresh=True)
            rows.append((f"burst-500 ({connection})", s, others))
        scale = None
        if args.scale:
            size = 250
            scale = stellar_run(stellar, work, "scale", url, bursts=args.scale // size,
                                size=size, iat_s=0.05, connection="reuse")
    finally:
        nginx.terminate()
        nginx.wait()

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    print(f"Measured {now} on {platform.node()}: {os.cpu_count()} CPUs ({cpu}), "
          f"{platform.system()} {platform.release()}; nginx on loopback; "
          f"paced plans {args.rate} requests/s for {args.duration} s, {conns} connections "
          f"for oha/hey/wrk.\n")
    print("| plan | stellar p50 / p99 (ms) | send lag p99 / max (ms) | burst release median / max (ms) "
          "| tool | tool p50 / p99 (ms) | stellar ÷ tool p50 | p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for plan, s, others in rows:
        spread = (f"{fmt(s['spread_median'])} / {fmt(s['spread_max'])}"
                  if s["spread_median"] is not None else "–")
        head = (f"| {plan} | {fmt(s['p50'])} / {fmt(s['p99'])} | "
                f"{fmt(s['lag_p99'])} / {fmt(s['lag_max'])} | {spread}")
        if not others:
            print(f"{head} | – | – | – | – |")
        for tool, t in others.items():
            if t is None:
                print(f"{head} | {tool} (not installed) | – | – | – |")
                continue
            print(f"{head} | {tool} | {fmt(t['p50'])} / {fmt(t['p99'])} | "
                  f"{s['p50'] / t['p50']:.2f} | {s['p99'] / t['p99']:.2f} |")
        if s["errors"]:
            print(f"<!-- {plan}: stellar recorded {s['errors']} failed requests -->")
    if scale:
        print(f"\nstellar, {args.scale} requests (bursts of 250, 50 ms apart, keep-alive): "
              f"peak RSS {scale['rss_mib']:.1f} MiB, CPU {scale['cpu_s']:.1f} s, "
              f"{scale['n']} successful, send lag p99 {fmt(scale['lag_p99'])} ms.")
    if missing:
        print(f"\nNot installed, skipped: {', '.join(missing)}.")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
