"""Load test of `yoloxkit serve` on 127.0.0.1: micro-batching on (max-batch 8) vs off (max-batch 1).

Starts two servers itself (loopback only, free ports), posts ../shared/images/dog.jpg at
concurrency 1, 4 and 16 for a bounded time and request count, and prints throughput, p50/p99
latency and errors, with the on/off throughput ratio measured in the same run. Then sends 1,000
bad uploads to one server and reports its RSS before and after.

    .venv/bin/python benchmarks/bench_serve.py [--model yolox-nano] [--seconds 12] [--max-requests 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOG = REPO.parent / "shared" / "images" / "dog.jpg"
HOST = "127.0.0.1"  # the only address this benchmark ever talks to


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """A `yoloxkit serve` subprocess bound to 127.0.0.1."""

    def __init__(self, model: str, max_batch: int, extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.max_batch = max_batch
        cmd = [sys.executable, "-m", "yoloxkit", "serve", "--model", model, "--host", HOST, "--port", str(self.port),
               "--max-batch", str(max_batch), "--log-level", "warning", *(extra or [])]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = f"http://{HOST}:{self.port}"
        deadline = time.time() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.2)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def load(url: str, data: bytes, concurrency: int, seconds: float, max_requests: int) -> dict:
    """Closed-loop load: ``concurrency`` clients each post, wait for the answer, post again."""
    latencies: list[float] = []
    errors: list[str] = []
    batch_sizes: list[int] = []
    lock = threading.Lock()
    issued = [0]
    stop_at = time.perf_counter() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while time.perf_counter() < stop_at:
                with lock:
                    if issued[0] >= max_requests:
                        return
                    issued[0] += 1
                start = time.perf_counter()
                try:
                    response = http.post("/v1/detect", files={"file": ("dog.jpg", data, "image/jpeg")})
                    ok = response.status_code == 200 and any(
                        d["name"] == "dog" for d in response.json()["detections"])
                    note = "" if ok else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    ok, note = False, type(exc).__name__
                elapsed = time.perf_counter() - start
                with lock:
                    if ok:
                        latencies.append(elapsed)
                        batch_sizes.append(response.json()["timing"]["batch_size"])
                    else:
                        errors.append(note)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return {"latencies": latencies, "errors": errors, "batch_sizes": batch_sizes, "wall": wall, "cpu": 0.0}


def summarise(runs: list[dict]) -> dict:
    """Pool alternating runs of one setting: throughput over their summed time, pooled latencies."""
    latencies = [x for r in runs for x in r["latencies"]]
    errors = [x for r in runs for x in r["errors"]]
    batch_sizes = [x for r in runs for x in r["batch_sizes"]]
    lat_ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies) + len(errors),
        "ok": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "throughput": len(latencies) / sum(r["wall"] for r in runs),
        "p50": float(np.percentile(lat_ms, 50)) if len(lat_ms) else float("nan"),
        "p99": float(np.percentile(lat_ms, 99)) if len(lat_ms) else float("nan"),
        "mean_batch": statistics.fmean(batch_sizes) if batch_sizes else float("nan"),
        "cpu_ms": 1000 * sum(r["cpu"] for r in runs) / max(1, len(latencies)),
    }


def bad_uploads(url: str, count: int) -> dict[int, int]:
    """Send ``count`` bad uploads of five kinds; return the status histogram."""
    import struct
    import zlib

    jpeg = DOG.read_bytes()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))
    kinds = [
        ({"file": ("a.txt", b"not an image " * 100, "text/plain")}, {}),
        ({"file": ("cut.jpg", jpeg[: len(jpeg) // 2], "image/jpeg")}, {}),
        ({"file": ("bomb.png", bomb, "image/png")}, {}),
        ({"file": ("big.jpg", b"\xff" * (1_200_000), "image/jpeg")}, {}),
        ({"file": ("dog.jpg", jpeg, "image/jpeg")}, {"classes": "unicorn"}),
    ]
    histogram: dict[int, int] = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(count):
            files, params = kinds[i % len(kinds)]
            status = http.post("/v1/detect", files=files, params=params).status_code
            histogram[status] = histogram.get(status, 0) + 1
    return dict(sorted(histogram.items()))


def direct_throughput(model: str, data: bytes, seconds: float) -> dict[int, float]:
    """Images/s of ``Detector.predict_arrays`` alone (no HTTP), batch 1 vs 8, alternating twice."""
    import cv2

    import yoloxkit

    detector = yoloxkit.Detector(model)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    totals = {1: [0, 0.0], 8: [0, 0.0]}
    for batch in (1, 8):
        detector.predict_arrays([image] * batch)  # warm-up
    for batch in (1, 8, 1, 8):
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            detector.predict_arrays([image] * batch)
            totals[batch][0] += batch
        totals[batch][1] += time.perf_counter() - start
    return {batch: done / elapsed for batch, (done, elapsed) in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="yolox-nano")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each load run")
    parser.add_argument("--max-requests", type=int, default=1000, help="cap on requests of each load run")
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternating off/on runs per concurrency (pooled), to share any drift in machine load")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--bad-uploads", type=int, default=1000)
    args = parser.parse_args()
    data = DOG.read_bytes()

    import torch

    import yoloxkit

    print(f"# bench_serve: {args.model}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, yoloxkit {yoloxkit.__version__}, python {platform.python_version()}; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    direct = direct_throughput(args.model, data, 3.0)
    print(f"# Detector alone (no HTTP, this process): batch 1 {direct[1]:.1f} img/s, batch 8 {direct[8]:.1f} img/s "
          f"({direct[8] / direct[1]:.2f}x)")
    servers = {"off": Server(args.model, 1), "on": Server(args.model, 8)}
    results: dict[tuple[str, int], dict] = {}
    try:
        for concurrency in args.concurrency:
            runs: dict[str, list[dict]] = {"off": [], "on": []}
            for mode in ("off", "on"):
                load(servers[mode].url, data, concurrency, 1.5, 50)  # warm-up
            for _ in range(args.repeats):
                for mode in ("off", "on"):
                    cpu_before = servers[mode].cpu_seconds()
                    run = load(servers[mode].url, data, concurrency, args.seconds, args.max_requests)
                    run["cpu"] = servers[mode].cpu_seconds() - cpu_before
                    runs[mode].append(run)
            for mode in ("off", "on"):
                results[(mode, concurrency)] = summarise(runs[mode])
        print(f"# load average after the load runs: {os.getloadavg()[0]:.1f}")
        print()
        print("| concurrency | batching | requests | errors | throughput (req/s) | p50 (ms) | p99 (ms) | mean batch |"
              " server CPU ms/request | on/off throughput |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for concurrency in args.concurrency:
            for mode in ("off", "on"):
                r = results[(mode, concurrency)]
                ratio = results[("on", concurrency)]["throughput"] / results[("off", concurrency)]["throughput"]
                label = "on (max-batch 8)" if mode == "on" else "off (max-batch 1)"
                print(f"| {concurrency} | {label} | {r['requests']} | {r['errors']} | {r['throughput']:.1f} | "
                      f"{r['p50']:.0f} | {r['p99']:.0f} | {r['mean_batch']:.2f} | {r['cpu_ms']:.0f} | "
                      f"{f'{ratio:.2f}x' if mode == 'on' else ''} |")
                if r["error_kinds"]:
                    print(f"|   | errors: {', '.join(r['error_kinds'])} | | | | | | | | |")
        servers["off"].stop()
        server = Server(args.model, 8, ["--max-upload-mb", "1"])
        servers["bad"] = server
        load(server.url, data, 4, 1.5, 50)  # warm the allocator with good and bad requests first
        bad_uploads(server.url, 50)
        before = server.rss_mib()
        histogram = bad_uploads(server.url, args.bad_uploads)
        after = server.rss_mib()
        healthy = httpx.get(server.url + "/healthz", timeout=5).status_code
        print()
        print(f"RSS before {args.bad_uploads} bad uploads: {before:.0f} MiB; after: {after:.0f} MiB "
              f"({after - before:+.0f} MiB); statuses {histogram}; /healthz afterwards: {healthy}")
    finally:
        for server in servers.values():
            if server.proc.poll() is None:
                server.stop()


if __name__ == "__main__":
    main()
