"""Prometheus text format 0.0.4, written for speed, and the few metric kinds the supervisor
keeps: labelled counters, one histogram, and its own process and interpreter figures.

prometheus_client's generate_latest validates and escapes every label name of every sample
(~10 µs a line); with 100 services that is most of a 20 ms budget. Our label names are fixed
identifiers, so only label values are escaped, and only when they need it. prometheus_client
itself is not imported: it and the modules it pulls in (wsgiref, http.server, gzip...) with a
lock and a value object per series were ~2 MB of the resident supervisor (issue 20), for
counters that are dict entries here.
"""

from __future__ import annotations

import bisect
import gc
import math
import os
import resource
import sys
from collections.abc import Sequence

from unified_system.proc.procfs import PAGE, TICKS, boot_time

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "ironpython": "IronPython",
                    "jython": "Jython"}


def python_info() -> tuple[str, str, tuple[str, str, str]]:
    """What platform.python_implementation(), python_version() and python_version_tuple()
    return (prometheus_client's python_info), from sys: `platform` is 0.14 MB resident."""
    version = sys.version.split()[0]
    parts = version.split(".")
    if len(parts) == 2:
        parts.append("0")
    name = sys.implementation.name
    return _IMPLEMENTATIONS.get(name, name), version, (parts[0], parts[1], parts[2])


def num(value: float) -> str:
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(value)


def label_value(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def header(out: list[str], name: str, kind: str, doc: str) -> None:
    doc = doc.replace("\\", r"\\").replace("\n", r"\n")
    out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{k}="{label_value(v)}"' for k, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


class CounterFamily:
    """Counters by label values (`name_total`), in the order their series were defined."""

    def __init__(self, name: str, doc: str, labelnames: Sequence[str]) -> None:
        self.name, self.doc, self.labelnames = name, doc, tuple(labelnames)
        self.series: dict[tuple[str, ...], float] = {}

    def define(self, *values: str) -> None:
        self.series.setdefault(values, 0.0)

    def inc(self, *values: str) -> None:
        self.series[values] = self.series.get(values, 0.0) + 1.0

    def remove(self, *values: str) -> None:
        self.series.pop(values, None)

    def render(self, out: list[str]) -> None:
        name = self.name + "_total"
        header(out, name, "counter", self.doc)
        # list(): one C call under the GIL, so the owner adding a series mid-scrape is harmless
        for values, value in list(self.series.items()):
            out.append(f"{name}{_labels(self.labelnames, values)} {num(value)}\n")


class HistogramFamily:
    """A histogram by label values: per series, a count per bucket (the last is +Inf) and
    the sum; rendered cumulative, as the format wants."""

    def __init__(self, name: str, doc: str, labelnames: Sequence[str], buckets: Sequence[float]
                 ) -> None:
        self.name, self.doc, self.labelnames = name, doc, tuple(labelnames)
        self.bounds = tuple(float(b) for b in buckets)
        self.series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *values: str) -> None:
        counts, total = self.series.get(values) or self.series.setdefault(
            values, ([0] * (len(self.bounds) + 1), [0.0]))
        counts[bisect.bisect_left(self.bounds, value)] += 1   # le: a value on a bound is in it
        total[0] += value

    def remove(self, *values: str) -> None:
        self.series.pop(values, None)

    def render(self, out: list[str]) -> None:
        header(out, self.name, "histogram", self.doc)
        les = [f'le="{num(b)}"' for b in self.bounds] + ['le="+Inf"']
        for values, (counts, total) in list(self.series.items()):   # as in CounterFamily
            running = 0
            for le, count in zip(les, counts, strict=True):
                running += count
                out.append(f"{self.name}_bucket{_labels(self.labelnames, values, le)} {running}\n")
            labels = _labels(self.labelnames, values)
            out.append(f"{self.name}_count{labels} {running}\n{self.name}_sum{labels} {num(total[0])}\n")


def render_process(out: list[str]) -> None:
    """The supervisor's own process_* and python_* series, named as prometheus_client's
    ProcessCollector, PlatformCollector and GCCollector name them."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fields, fds = [], 0
    if len(fields) > 22:
        figures = (
            ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
             float(fields[20])),
            ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
             float(fields[21]) * PAGE),
            ("process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.",
             float(fields[19]) / TICKS + boot_time()),
            ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
             (float(fields[11]) + float(fields[12])) / TICKS),
            ("process_open_fds", "gauge", "Number of open file descriptors.", float(fds)),
        )
        for name, kind, doc, value in figures:
            header(out, name, kind, doc)
            out.append(f"{name} {num(value)}\n")
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY:
        header(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.")
        out.append(f"process_max_fds {num(soft)}\n")
    implementation, version, (major, minor, patch) = python_info()
    header(out, "python_info", "gauge", "Python platform information")
    out.append(f'python_info{{implementation="{implementation}",major="{major}",'
               f'minor="{minor}",patchlevel="{patch}",version="{version}"}} 1.0\n')
    stats = gc.get_stats()
    for name, key, doc in (
            ("python_gc_objects_collected_total", "collected", "Objects collected during gc"),
            ("python_gc_objects_uncollectable_total", "uncollectable",
             "Uncollectable objects found during GC"),
            ("python_gc_collections_total", "collections",
             "Number of times this generation was collected")):
        header(out, name, "counter", doc)
        out.extend(f'{name}{{generation="{gen}"}} {num(stat[key])}\n' for gen, stat in enumerate(stats))
