"""Peak memory of a storage-transfer chain hop: runs a chain of two `stellar-measure-http`
processes on loopback that pass one payload through moto's S3 or Azurite's Blob service, and
prints each process's peak RSS (VmHWM) next to the payload size and the measured times.

  python3 measurement-fn/scripts/chain_storage_rss.py BINARY s3|azure-blob PAYLOAD_BYTES

Needs moto_server / azurite-blob on PATH and boto3 / azure-storage-blob (the README's test
command installs them). The payload is streamed, so the peak RSS should stay far below it.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ACCOUNT, KEY = "stellarrss", "c3RlbGxhci1yc3MtbWVhc3VyZW1lbnQta2V5"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def start_storage(kind):
    port = free_port()
    if kind == "s3":
        proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port)
        import boto3
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket="rss")
        env = {"STELLAR_STORAGE_ENDPOINT": endpoint, "STELLAR_STORAGE_BUCKET": "rss",
               "STELLAR_STORAGE_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing"}
    else:
        proc = subprocess.Popen(["azurite-blob", "--blobHost", "127.0.0.1", "--blobPort", str(port),
                                 "--inMemoryPersistence", "--skipApiVersionCheck", "--disableProductStyleUrl",
                                 "--disableTelemetry", "--silent"],
                                env={**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{KEY}"},
                                cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port)
        from azure.storage.blob import BlobServiceClient
        endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        BlobServiceClient(account_url=endpoint,
                          credential={"account_name": ACCOUNT, "account_key": KEY}).create_container("rss")
        env = {"STELLAR_STORAGE_ENDPOINT": endpoint, "STELLAR_STORAGE_BUCKET": "rss",
               "STELLAR_STORAGE_ACCOUNT": ACCOUNT, "STELLAR_STORAGE_KEY": KEY}
    return proc, env


def spawn_hop(binary, hop, next_url, kind, storage_env):
    env = {"PORT": "0", "STELLAR_LISTEN_ADDR": "127.0.0.1", "STELLAR_CHAIN_HOP": str(hop),
           "STELLAR_CHAIN_LENGTH": "2", "STELLAR_CHAIN_TRANSFER": kind, **storage_env}
    if next_url:
        env["STELLAR_CHAIN_NEXT_URL"] = next_url
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    ready = json.loads(proc.stdout.readline().decode().split(" ", 1)[1])
    return proc, ready["port"]


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def main():
    binary, kind, payload = sys.argv[1], sys.argv[2], int(sys.argv[3])
    storage, storage_env = start_storage(kind)
    procs = []
    try:
        last, last_port = spawn_hop(binary, 1, None, kind, storage_env)
        procs.append(last)
        first, first_port = spawn_hop(binary, 0, f"http://127.0.0.1:{last_port}/", kind, storage_env)
        procs.append(first)
        before = (peak_rss_kib(first.pid), peak_rss_kib(last.pid))
        url = f"http://127.0.0.1:{first_port}/?PayloadLengthBytes={payload}&RequestID=rss"
        with urllib.request.urlopen(url, timeout=1800) as resp:
            reply = json.loads(resp.read())
        hops = reply["chain"]["hops"]
        after = (peak_rss_kib(first.pid), peak_rss_kib(last.pid))
        print(json.dumps({
            "transfer": kind, "payload_bytes": payload,
            "hash_ok": hops[1]["receive"]["sha256_ok"],
            "upload_ms": hops[0]["send"]["payload_sent_ns"] / 1e6,
            "download_ms": hops[1]["receive"]["duration_ns"] / 1e6,
            "delete_ms": hops[1]["receive"].get("delete_ns", 0) / 1e6,
            "peak_rss_kib_before": {"sender": before[0], "receiver": before[1]},
            "peak_rss_kib_after": {"sender": after[0], "receiver": after[1]},
        }))
    finally:
        for p in procs:
            p.kill()
        storage.kill()


if __name__ == "__main__":
    main()
