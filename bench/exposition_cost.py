"""The resident cost of /metrics' exposition: ours (api/exposition.py) against
prometheus_client's generate_latest over the same series, each in a fresh interpreter that
first imports what the resident supervisor imports (api/server.py and what it pulls in).

    python bench/exposition_cost.py [--services 100] [--scrapes 200] [--rounds 5]

Per round and side: RSS before and after the import, after building the series and after
the scrapes (from /proc/self/status), the import's wall time, and CPU ms per scrape
(process_time over --scrapes scrapes, after one warm-up). Ours twice: as a scraper sees it
when nothing happened since the last scrape (the counters' text is cached), and with a
probe observed before each scrape (everything written again: the fair comparison). Series: per service the 9 gauges
of the snapshot (state has 7 values), restarts by 10 reasons, freezes by 2 kinds, the probe
histogram for readiness and liveness (13 buckets), plus the reload counters and the
process, platform and gc collectors. The snapshot gauges go through a custom collector with
GaugeMetricFamily on the prometheus_client side, as its documentation advises for values
read at scrape time. Our side is api/metrics.py `Metrics` with a stand-in owner (the
snapshot and config it reads); no supervisor runs.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from _resident import run_resident

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
out = {"rss_base": rss()}
started = time.perf_counter()
if SIDE.startswith("ours"):
    from unified_system.api import metrics as mod
else:
    import prometheus_client as pc
    from prometheus_client.core import GaugeMetricFamily, CounterMetricFamily
out["import_ms"] = (time.perf_counter() - started) * 1000
out["rss_import"] = rss()

from types import SimpleNamespace
from unified_system.core.policy import EXIT_REASONS
from unified_system.core.states import State
STATES = tuple(s.value for s in State)
now = time.time()
snapshot = [{"name": f"s{i:03d}", "state": "running", "ready": True, "started_at": now - 60,
             "heartbeat_at": now - 1, "circuit": "closed", "pid": None}
            for i in range(N)]
services = {s["name"]: SimpleNamespace(limits=None) for s in snapshot}
owner = SimpleNamespace(snapshot=lambda: snapshot, config=lambda: SimpleNamespace(services=services))

if SIDE.startswith("ours"):
    metrics = mod.Metrics(owner)
    for s in snapshot:
        metrics.probe(s["name"], "readiness", 0.002)
        metrics.probe(s["name"], "liveness", 0.004)
    if SIDE == "ours":   # nothing happened between scrapes: counters come from the cache
        scrape = metrics.exposition
    else:                # a probe between each two scrapes: every family is written again
        def scrape():
            metrics.probe("s000", "readiness", 0.003)
            return metrics.exposition()
else:
    registry = pc.CollectorRegistry(auto_describe=False)
    pc.ProcessCollector(registry=registry)
    pc.PlatformCollector(registry=registry)
    pc.GCCollector(registry=registry)
    pc.disable_created_metrics()
    restarts = pc.Counter("unified_service_restarts", "restarts by reason", ["service", "reason"], registry=registry)
    freezes = pc.Counter("unified_service_freezes", "freezes", ["service", "kind"], registry=registry)
    reloads = pc.Counter("unified_config_reloads", "reloads", ["result"], registry=registry)
    probes = pc.Histogram("unified_probe_duration_seconds", "probe attempt duration", ["service", "probe"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
                          registry=registry)
    for result in ("success", "failure"):
        reloads.labels(result)
    for s in snapshot:
        for reason in EXIT_REASONS:
            restarts.labels(s["name"], reason)
        for kind in ("soft", "hard"):
            freezes.labels(s["name"], kind)
        probes.labels(s["name"], "readiness").observe(0.002)
        probes.labels(s["name"], "liveness").observe(0.004)

    class Snapshot:
        def collect(self):
            t = time.time()
            fams = {n: GaugeMetricFamily(n, "h", labels=["service"]) for n in (
                "unified_service_up", "unified_service_ready", "unified_service_uptime_seconds",
                "unified_service_memory_rss_bytes", "unified_service_heartbeat_age_seconds",
                "unified_service_circuit_open")}
            state = GaugeMetricFamily("unified_service_state", "h", labels=["service", "state"])
            cpu = CounterMetricFamily("unified_service_cpu_seconds", "h", labels=["service"])
            for s in owner.snapshot():
                n = s["name"]
                fams["unified_service_up"].add_metric([n], 1)
                fams["unified_service_ready"].add_metric([n], 1 if s["ready"] else 0)
                fams["unified_service_uptime_seconds"].add_metric([n], t - s["started_at"])
                fams["unified_service_memory_rss_bytes"].add_metric([n], 0)
                fams["unified_service_heartbeat_age_seconds"].add_metric([n], t - s["heartbeat_at"])
                fams["unified_service_circuit_open"].add_metric([n], 0)
                cpu.add_metric([n], 0.0)
                for st in STATES:
                    state.add_metric([n, st], 1 if st == s["state"] else 0)
            yield from fams.values()
            yield state
            yield cpu

    registry.register(Snapshot())
    scrape = lambda: pc.generate_latest(registry)
gc.collect()
out["rss_built"] = rss()
body = scrape()
out["bytes"] = len(body)
out["lines"] = body.count(b"\n")
cpu = time.process_time()
for _ in range(SCRAPES):
    scrape()
out["cpu_ms_per_scrape"] = (time.process_time() - cpu) * 1000 / SCRAPES
gc.collect()
out["rss_scraped"] = rss()
print(json.dumps(out))
'''


def run(side: str, services: int, scrapes: int) -> dict[str, float]:
    result: dict[str, float] = run_resident(CHILD, str(ROOT / "src"), SIDE=side, N=services, SCRAPES=scrapes)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"ours": [], "ours_changing": [],
                                                  "prometheus_client": []}
    for _ in range(args.rounds):
        for side in results:   # alternated, so a load spike hits both
            results[side].append(run(side, args.services, args.scrapes))
    mb = 1e6
    print(f"{args.services} services, {args.scrapes} scrapes a round, medians of {args.rounds} rounds")
    for side, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"{side:18s} import {med['import_ms']:6.1f} ms  RSS +{(med['rss_import'] - med['rss_base']) / mb:4.1f} MB"
              f" import, +{(med['rss_built'] - med['rss_base']) / mb:4.1f} MB with the series,"
              f" +{(med['rss_scraped'] - med['rss_base']) / mb:4.1f} MB after scrapes;"
              f" {med['cpu_ms_per_scrape']:5.2f} ms CPU a scrape"
              f" ({med['lines']:.0f} lines, {med['bytes'] / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
