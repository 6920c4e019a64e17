"""SPEC §7 metrics. Gauges are read from the published snapshot at scrape time (a custom
collector); counters and the probe histogram are plain families (api/exposition.py) fed by
the owner's hooks, rendered with the supervisor's own process metrics."""

from __future__ import annotations

import time

from unified_system.api.exposition import (
    CONTENT_TYPE,
    CounterFamily,
    HistogramFamily,
    header,
    num,
    render_process,
)
from unified_system.api.live import ALIVE_STATES, LiveStats
from unified_system.core.policy import EXIT_REASONS
from unified_system.core.ports import Facade
from unified_system.core.states import State

__all__ = ["CONTENT_TYPE", "Metrics"]
STATES = tuple(s.value for s in State)
PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

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
        # Hooks bump the generation (owner thread only); a scrape re-renders the counters and
        # histogram only when it moved, since writing 100 services' buckets costs milliseconds.
        self._generation = 0
        self._cached: tuple[int, list[str]] = (-1, [])
        self.snapshot = SnapshotCollector(owner, self.live)
        self._restarts = CounterFamily("unified_service_restarts", "restarts by reason",
                                       ["service", "reason"])
        self._freezes = CounterFamily("unified_service_freezes", "freezes detected, soft or hard",
                                      ["service", "kind"])
        self._reloads = CounterFamily("unified_config_reloads", "config reloads by result",
                                      ["result"])
        self._probes = HistogramFamily("unified_probe_duration_seconds", "probe attempt duration",
                                       ["service", "probe"], PROBE_BUCKETS)
        self._families: tuple[CounterFamily | HistogramFamily, ...] = (
            self._restarts, self._freezes, self._reloads, self._probes)
        for name in owner.config().services:
            self.define(name)
        for result in ("success", "failure"):
            self._reloads.define(result)

    def define(self, service: str) -> None:
        """A service was defined (at start or by a reload): its counters start at 0 for every
        label value. Created only at the first event, a series' first sample is already 1, and
        Prometheus' increase() and rate() cannot see that first step (2 restarts read 1.04)."""
        for kind in ("soft", "hard"):
            self._freezes.define(service, kind)
        for reason in EXIT_REASONS:
            self._restarts.define(service, reason)
        self._generation += 1

    def restart(self, service: str, reason: str) -> None:
        """A process of `service` was restarted for `reason` (SPEC §4 reasons)."""
        self._restarts.inc(service, reason)
        self._generation += 1

    def probe(self, service: str, kind: str, duration: float) -> None:
        """One probe attempt finished."""
        self._probes.observe(duration, service, kind)
        self.last_probe[service] = duration   # for the history's probe latency column
        self._generation += 1

    def freeze(self, service: str, kind: str) -> None:
        """A soft or hard freeze was detected."""
        self._freezes.inc(service, kind)
        self._generation += 1

    def forget(self, service: str) -> None:
        """A reload removed the service: its series leave the exposition."""
        self.last_probe.pop(service, None)
        for family in (self._restarts, self._freezes, self._probes):
            for values in [v for v in family.series if v[0] == service]:
                family.remove(*values)
        self._generation += 1

    def reload(self, result: str) -> None:
        """A config reload finished: success | failure."""
        self._reloads.inc(result)
        self._generation += 1

    def exposition(self) -> bytes:
        out: list[str] = []
        self.snapshot.render(out)
        generation, counters = self._cached
        if generation != self._generation:
            generation, counters = self._generation, []
            for family in self._families:
                family.render(counters)
            self._cached = (generation, counters)   # a hook during collect moved it: re-render next time
        out.extend(counters)
        render_process(out)
        return "".join(out).encode()
