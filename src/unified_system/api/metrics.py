"""SPEC §7 metrics. Gauges are read from the published snapshot at scrape time (a custom
collector); counters and the probe histogram are prometheus_client metrics fed by the owner's
hooks, in a private registry with the supervisor's own process metrics."""

from __future__ import annotations

import time
from typing import Any

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from unified_system.api.exposition import header, num, render
from unified_system.api.live import ALIVE_STATES, LiveStats
from unified_system.core.policy import EXIT_REASONS
from unified_system.core.ports import Facade
from unified_system.core.states import State

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
STATES = tuple(s.value for s in State)
PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# `_created` samples double the exposition for nothing an operator of this tool reads.
prometheus_client.disable_created_metrics()


# (name, type, help) of the per-service series, in exposition order.
SERIES = (
    ("unified_service_up", "gauge", "1 when a process of the service is alive (starting or running)"),
    ("unified_service_ready", "gauge", "1 when the service is ready"),
    ("unified_service_state", "gauge", "1 for the service's current state, 0 for the others"),
    ("unified_service_uptime_seconds", "gauge", "seconds since the current process started"),
    ("unified_service_memory_rss_bytes", "gauge", "RSS of the whole process tree of every instance"),
    ("unified_service_cpu_seconds_total", "counter", "user+system CPU seconds of the live process tree"),
    ("unified_service_heartbeat_age_seconds", "gauge", "seconds since the last heartbeat"),
    ("unified_service_circuit_open", "gauge", "1 when the restart circuit is open"),
    ("unified_service_memory_limit_bytes", "gauge", "limits.max_memory, for services that set it"),
)


class SnapshotCollector:
    """Per-service gauges from one snapshot per scrape, written straight to text: with 100
    services these are ~2,000 lines, too many to build as Sample objects within budget."""

    def __init__(self, owner: Facade, live: LiveStats) -> None:
        self.owner = owner
        self.live = live

    def render(self, out: list[str]) -> None:
        snapshot = self.owner.snapshot()
        figures = self.live.figures(snapshot)
        now = time.time()
        lines: dict[str, list[str]] = {name: [] for name, _t, _h in SERIES}
        up, ready, state, uptime, rss, cpu, beat, circuit, limit = lines.values()
        services = self.owner.config().services
        for svc in snapshot:
            name, current = svc["name"], svc["state"]   # names are [A-Za-z0-9_.-]: no escaping
            alive = current in ALIVE_STATES
            fig = figures.get(name) if alive else None
            started = svc.get("started_at")
            up.append(f'unified_service_up{{service="{name}"}} '
                      f'{1 if current in ("starting", "running") else 0}\n')
            ready.append(f'unified_service_ready{{service="{name}"}} {1 if svc.get("ready") else 0}\n')
            state.extend(f'unified_service_state{{service="{name}",state="{s}"}} '
                         f'{1 if s == current else 0}\n' for s in STATES)
            uptime.append(f'unified_service_uptime_seconds{{service="{name}"}} '
                          f'{num(max(0.0, now - started) if started and alive else 0.0)}\n')
            rss.append(f'unified_service_memory_rss_bytes{{service="{name}"}} '
                       f'{fig.rss_bytes if fig else 0}\n')
            cpu.append(f'unified_service_cpu_seconds_total{{service="{name}"}} '
                       f'{num(fig.cpu_seconds if fig else 0.0)}\n')
            if alive and svc.get("heartbeat_at") is not None:
                beat.append(f'unified_service_heartbeat_age_seconds{{service="{name}"}} '
                            f'{num(max(0.0, now - svc["heartbeat_at"]))}\n')
            circuit.append(f'unified_service_circuit_open{{service="{name}"}} '
                           f'{1 if svc.get("circuit") == "open" else 0}\n')
            spec = services.get(name)
            limits = spec.limits if spec is not None else None   # None where none is set
            if limits is not None and limits.max_memory:          # alert rules compare RSS to it
                limit.append(f'unified_service_memory_limit_bytes{{service="{name}"}} '
                             f'{limits.max_memory}\n')
        for name, kind, doc in SERIES:
            header(out, name, kind, doc)
            out.extend(lines[name])


class Metrics:
    """The owner's metric hooks (called on the owner thread: each is a dict update)."""

    def __init__(self, owner: Facade) -> None:
        self.owner = owner
        self.live = LiveStats()
        self.last_probe: dict[str, float] = {}
        self.registry = CollectorRegistry(auto_describe=False)      # fed by the owner's hooks
        self.process = CollectorRegistry(auto_describe=False)       # the supervisor itself
        ProcessCollector(registry=self.process)
        PlatformCollector(registry=self.process)
        GCCollector(registry=self.process)
        # Hooks bump the generation (owner thread only); a scrape re-renders the counters and
        # histogram only when it moved, since collecting 100 services' buckets costs ~10 ms.
        self._generation = 0
        self._cached: tuple[int, list[str]] = (-1, [])
        self.snapshot = SnapshotCollector(owner, self.live)
        r = self.registry
        self._restarts = Counter("unified_service_restarts", "restarts by reason",
                                 ["service", "reason"], registry=r)
        self._freezes = Counter("unified_service_freezes", "freezes detected, soft or hard",
                                ["service", "kind"], registry=r)
        self._reloads = Counter("unified_config_reloads", "config reloads by result",
                                ["result"], registry=r)
        self._probes = Histogram("unified_probe_duration_seconds", "probe attempt duration",
                                 ["service", "probe"], buckets=PROBE_BUCKETS, registry=r)
        # The label sets each service has, so a removed service's series can all go.
        self._series: dict[str, set[tuple[Any, tuple[str, str]]]] = {}
        for name in owner.config().services:
            self.define(name)
        for result in ("success", "failure"):
            self._reloads.labels(result)

    def define(self, service: str) -> None:
        """A service was defined (at start or by a reload): its counters start at 0 for every
        label value. Created only at the first event, a series' first sample is already 1, and
        Prometheus' increase() and rate() cannot see that first step (2 restarts read 1.04)."""
        for kind in ("soft", "hard"):
            self._labelled(self._freezes, service, kind)
        for reason in EXIT_REASONS:
            self._labelled(self._restarts, service, reason)
        self._generation += 1

    def restart(self, service: str, reason: str) -> None:
        """A process of `service` was restarted for `reason` (SPEC §4 reasons)."""
        self._labelled(self._restarts, service, reason).inc()
        self._generation += 1

    def probe(self, service: str, kind: str, duration: float) -> None:
        """One probe attempt finished."""
        self._labelled(self._probes, service, kind).observe(duration)
        self.last_probe[service] = duration   # for the history's probe latency column
        self._generation += 1

    def freeze(self, service: str, kind: str) -> None:
        """A soft or hard freeze was detected."""
        self._labelled(self._freezes, service, kind).inc()
        self._generation += 1

    def _labelled(self, metric: Any, service: str, other: str) -> Any:
        self._series.setdefault(service, set()).add((metric, (service, other)))
        return metric.labels(service, other)

    def forget(self, service: str) -> None:
        """A reload removed the service: its series leave the exposition."""
        self.last_probe.pop(service, None)
        for metric, labels in self._series.pop(service, ()):
            try:
                metric.remove(*labels)
            except KeyError:
                pass
        self._generation += 1

    def reload(self, result: str) -> None:
        """A config reload finished: success | failure."""
        self._reloads.labels(result).inc()
        self._generation += 1

    def exposition(self) -> bytes:
        out: list[str] = []
        self.snapshot.render(out)
        generation, counters = self._cached
        if generation != self._generation:
            generation, counters = self._generation, []
            render(self.registry.collect(), counters)
            self._cached = (generation, counters)   # a hook during collect moved it: re-render next time
        out.extend(counters)
        render(self.process.collect(), out)
        return "".join(out).encode()
