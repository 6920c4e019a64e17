"""Improvement suggestions drawn from the crash, probe and freeze history.

The history is built from the owner's events (a bounded deque per service), never from
owner state; the rules are pure functions of (history, snapshot, config, now).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from unified_system.proc.crashdumps import dumps_of
from unified_system.proc.logfile import tail

HISTORY = 200                 # events kept per service
QUICK_CRASH = 5.0             # a crash this soon after a start looks like a config error
REPEAT = 3                    # this many of the same failure makes a pattern
ERRORISH = re.compile(r"error|exception|traceback|fatal|not found|denied|refused|invalid",
                      re.IGNORECASE)
END_STATES = {"backoff", "pending", "exited", "fatal", "stopped"}


class History:
    def __init__(self, size: int = HISTORY) -> None:
        self.size = size
        self._events: dict[str, deque] = {}
        self._lock = threading.Lock()

    def on_event(self, event: dict[str, Any]) -> None:
        """Owner listener: append to a bounded deque."""
        name = event.get("service")
        if not name:
            return
        q = self._events.get(name)
        if q is None:
            with self._lock:
                q = self._events.setdefault(name, deque(maxlen=self.size))
        q.append(dict(event))

    def events(self, name: str) -> list[dict[str, Any]]:
        q = self._events.get(name)
        return list(q) if q else []   # list(deque) is atomic enough under the GIL for appends


def exits(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ends of a process, each with how long it had lived (None when its start was not seen)."""
    out, started = [], None
    for ev in events:
        if ev.get("type") != "state":
            continue
        if ev.get("state") == "starting":
            started = ev.get("at")
        elif ev.get("previous") in ("starting", "running", "stopping") and ev.get("state") in END_STATES:
            lived = ev["at"] - started if started is not None else None
            out.append({"reason": ev.get("reason"), "at": ev.get("at"), "lived": lived})
            started = None
    return out


def last_error_line(log: Path, scrub: Callable[[str], str]) -> str | None:
    lines = [ln for ln in tail(log, 200) if ln.strip()]
    hits = [ln for ln in lines if ERRORISH.search(ln)]
    picked = hits or lines
    return scrub(picked[-1])[:500] if picked else None   # cut after: a cut secret matches nowhere


def latest_dump(directory: Path, name: str) -> str | None:
    dumps = dumps_of(directory, name)  # the stamp in the name sorts them by time
    return str(dumps[-1]) if dumps else None


def suggest(history: History, snapshot: tuple, services: Mapping[str, Any], log_dir: Path,
            peak_rss: Mapping[str, int], scrub: Callable[[str], str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for svc in snapshot:
        name = svc["name"]
        spec = services.get(name)
        if spec is None:
            continue
        events = history.events(name)
        ends = exits(events)

        def add(rule: str, message: str, service: str = name, **evidence: Any) -> None:
            out.append({"rule": rule, "service": service, "message": message, "evidence": evidence})

        limit = spec.limits.max_memory if spec.limits is not None else None
        memory_ends = [e for e in ends if e["reason"] == "memory"]
        last = svc.get("last_exit") or {}
        near = limit and peak_rss.get(name, 0) >= 0.8 * limit
        if limit and (len(memory_ends) >= 2 or (last.get("signal") == "SIGKILL" and near)):
            add("memory_limit", f"{name} keeps hitting its memory limit ({limit} bytes): raise "
                "limits.max_memory, or find the leak", max_memory=limit,
                memory_restarts=len(memory_ends), peak_rss_bytes=peak_rss.get(name),
                last_exit=last or None)

        quick = [e for e in ends if e["reason"] == "crash" and e["lived"] is not None
                 and e["lived"] < QUICK_CRASH]
        crashes = [e for e in ends if e["reason"] == "crash"]
        if len(quick) >= REPEAT and len(quick) == len(crashes):
            add("crash_on_start", f"{name} crashes within {QUICK_CRASH:g}s of every start: "
                "probably a configuration error (command, cwd, env, a missing dependency)",
                crashes=len(quick), lived_seconds=[round(e["lived"], 3) for e in quick[-5:]],
                last_error=last_error_line(log_dir / f"{name}.log", scrub))

        for kind in ("readiness", "liveness", "startup"):
            fails = [e for e in events if e.get("type") == "probe" and e.get("probe") == kind
                     and e.get("ok") is False]
            restarts = [e for e in ends if e["reason"] == "liveness"] if kind != "readiness" else []
            if len(fails) >= REPEAT or len(restarts) >= 2:
                probe = getattr(spec, kind)
                add(f"{kind}_failing", f"the {kind} probe of {name} keeps failing: check the "
                    "endpoint it probes, or raise its timeout / failure_threshold",
                    failures=len(fails), restarts=len(restarts),
                    last_detail=scrub(str(fails[-1].get("detail"))) if fails else None,
                    timeout=getattr(probe, "timeout", None), period=getattr(probe, "period", None))

        soft = [e for e in events if e.get("type") == "freeze" and e.get("kind") == "soft"]
        if len(soft) >= 2:
            hb = spec.heartbeat
            add("soft_freezes", f"{name} misses its heartbeat again and again: raise "
                "heartbeat.timeout, or find what stalls its loop", soft_freezes=len(soft),
                timeout=hb.timeout if hb else None)

        if svc.get("circuit") == "open":
            add("circuit_open", f"{name} crashed too often and its circuit is open: look at its "
                "last crash, fix it, then `start` it", last_exit=last or None,
                last_error=last_error_line(log_dir / f"{name}.log", scrub),
                crash_dump=latest_dump(log_dir.parent / "crashes", name))
    return out
