"""Fills over the bus: the bot's publish to the backend's SQLite commit (issue 18).

Runs a real nats-server (services/nats/launch.py, JetStream, store on disk), the real backend
(``python -m backend`` with NATS_URL: its durable pull consumer commits each batch, then acks)
and a publisher that drives the bot's own BusDeliverer at a fixed rate
(bench/children/bus_publisher.py). Latency per fill = the ledger row's ``received_at`` (taken
just before its batch's transaction) minus the wall time the fill entered the bot's outbox.
CPU = each process's utime+stime over the run, as a share of one core.

    python bench/bus_latency.py                        # 1,000 fills/s for 30 s
    python bench/bus_latency.py --ramp 2000,4000,8000  # then: the largest sustained rate
    python bench/bus_latency.py --steps 1000,1500,2000 # each 30 s on a fresh pipeline: the
                                                       # largest rate with no growing lag
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bus import PY, Broker, http_ok, stop, wait

from _common import ROOT, cpu_seconds, free_port, pct

SUSTAINED_P99 = 0.100   # seconds: a rate is "sustained" while p99 stays under this ...
SUSTAINED_SHARE = 0.95  # ... and the publisher made its fills on time (made/elapsed >= 95 %)
SAMPLE_EVERY = 1.0      # seconds between samples of the consumer's lag (--steps)


class Pipeline:
    """nats-server and the backend, fresh, in a temporary directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.broker = Broker(tmp / "nats", tmp / "nats.log")
        self.nats, self.url = self.broker.proc, self.broker.url
        self.http = free_port()
        self.db = tmp / "backend" / "backend.sqlite3"
        self.backend = subprocess.Popen(
            [PY, "-m", "backend"], cwd=ROOT / "services" / "backend",
            env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "LOG_LEVEL": "warning",
                 "CHECKPOINT_DIR": str(tmp / "backend"), "NATS_URL": self.url,
                 "PYTHON_PORT": str(self.http)},
            stdout=open(tmp / "backend.log", "wb"), stderr=subprocess.STDOUT)
        wait(lambda: http_ok(f"http://127.0.0.1:{self.http}/health"), 60, "backend")

    def _ledger(self):  # type: ignore[no-untyped-def]
        return sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)

    def rows(self, tag: str) -> list[tuple[float, float]]:
        with self._ledger() as db:
            return [(float(f), r) for f, r in db.execute(
                "SELECT filled_at, received_at FROM trades WHERE fill_id LIKE ?", (f"{tag}-%",))]

    def lag(self) -> int:
        """Fills the broker holds that the ledger does not have yet (the consumer's lag)."""
        stored = self.broker.stream_messages("FILLS")
        with self._ledger() as db:
            return stored - int(db.execute("SELECT COUNT(*) FROM trades").fetchone()[0])

    def close(self) -> None:
        stop([self.nats, self.backend])


def run(pipe: Pipeline, rate: float, seconds: float) -> dict:
    tag = f"r{int(rate)}-{time.time_ns()}"
    before = {name: cpu_seconds(p.pid) for name, p in (("nats-server", pipe.nats), ("backend", pipe.backend))}
    started = time.monotonic()
    publisher = subprocess.Popen([PY, str(ROOT / "bench" / "children" / "bus_publisher.py"),
                                  pipe.url, str(rate), str(seconds), tag], stdout=subprocess.PIPE)
    cpu_pub = 0.0
    lags: list[int] = []
    sampled = time.monotonic()
    while publisher.poll() is None:   # the publisher's CPU, read while it lives
        try:
            cpu_pub = cpu_seconds(publisher.pid)
        except (OSError, ValueError, IndexError):
            pass
        if time.monotonic() - sampled >= SAMPLE_EVERY:
            sampled = time.monotonic()
            lags.append(pipe.lag())
        time.sleep(0.2)
    report = json.loads(publisher.stdout.read().decode().strip().splitlines()[-1])  # type: ignore[union-attr]
    wait(lambda: len(pipe.rows(tag)) >= report["made"], 120, "the backend to commit every fill")
    wall = time.monotonic() - started
    cpu = {name: cpu_seconds(p.pid) - before[name]
           for name, p in (("nats-server", pipe.nats), ("backend", pipe.backend))}
    cpu["publisher"] = cpu_pub
    latencies = sorted(r - f for f, r in pipe.rows(tag))
    return {"rate": rate, "seconds": seconds, "made": report["made"], "acked": report["acked"],
            "committed": len(latencies), "lost": report["made"] - len(latencies),
            "make_rate": report["made"] / report["make_seconds"],
            "p50_ms": pct(latencies, 50) * 1000, "p99_ms": pct(latencies, 99) * 1000,
            "max_ms": latencies[-1] * 1000,
            "cpu_pct": {k: round(100 * v / wall, 1) for k, v in cpu.items()},
            # The publisher's backlog: how long after its last fill its outbox was empty.
            "drain_after_s": round(report["drain_seconds"] - report["make_seconds"], 3),
            "lag": lags, "holds": holds(report, rate, lags)}


def holds(report: dict, rate: float, lags: list[int]) -> bool:
    """The pipeline keeps up at ``rate``: the fills were made on schedule, the publisher's
    outbox emptied within a second of the last one, and the consumer's lag did not grow (the
    median of the last third of the samples is within twice the first third's, or 50 fills)."""
    if report["made"] / report["make_seconds"] < SUSTAINED_SHARE * rate:
        return False
    if report["drain_seconds"] - report["make_seconds"] > 1.0:
        return False
    third = max(1, len(lags) // 3)
    return bool(lags) and statistics.median(lags[-third:]) <= max(2 * statistics.median(lags[:third]), 50)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="fills per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--ramp", default="", help="then these rates, comma-separated, 10 s each")
    parser.add_argument("--steps", default="",
                        help="only these rates, comma-separated, --seconds each, each on a fresh "
                             "pipeline: the largest that holds (no growing lag)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.steps:
        return steps([float(r) for r in args.steps.split(",") if r], args.seconds)
    with tempfile.TemporaryDirectory(prefix="bus-bench-") as tmp:
        pipe = Pipeline(Path(tmp))
        try:
            results = [run(pipe, args.rate, args.seconds)]
            print(json.dumps(results[-1]), flush=True)
            for rate in [float(r) for r in args.ramp.split(",") if r]:
                results.append(run(pipe, rate, 10.0))
                print(json.dumps(results[-1]), flush=True)
        finally:
            pipe.close()
    sustained = [r["rate"] for r in results if r["lost"] == 0 and r["p99_ms"] <= SUSTAINED_P99 * 1000
                 and r["make_rate"] >= SUSTAINED_SHARE * r["rate"]]
    print(f"largest sustained rate (p99 <= {SUSTAINED_P99 * 1000:.0f} ms, no loss): "
          f"{max(sustained) if sustained else 'none'} fills/s", flush=True)
    return 0


def steps(rates: list[float], seconds: float) -> int:
    """Each rate on a fresh pipeline (an earlier step's backlog or WAL must not weigh on it)."""
    held: list[dict] = []
    for rate in rates:
        with tempfile.TemporaryDirectory(prefix="bus-bench-") as tmp:
            pipe = Pipeline(Path(tmp))
            try:
                result = run(pipe, rate, seconds)
            finally:
                pipe.close()
        result["load"] = round(os.getloadavg()[0], 1)
        print(json.dumps(result), flush=True)
        if result["holds"] and result["lost"] == 0:
            held.append(result)
    best = max(held, key=lambda r: r["rate"]) if held else None
    said = (f"{best['rate']:.0f} fills/s, p50 {best['p50_ms']:.1f} ms, p99 {best['p99_ms']:.1f} ms"
            if best else "none")
    print(f"largest rate held for {seconds:.0f} s (no growing lag, no loss): {said}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
