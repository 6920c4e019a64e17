"""Smoke run of bench/peers/run.py with tiny counts: every row comes out, unified-system's
column is always filled, each installed peer's column is filled, and nothing is left running.

Peers come from `bash bench/peers/install.sh`; one that is not installed is skipped by name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness import wait_until

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "bench" / "peers" / "run.py"
PEERS = ["PM2", "supervisord", "circus", "honcho"]
ROWS = ["crash_tuned", "crash_default", "start", "idle_cpu", "idle_rss", "flood_rate", "flood_cpu",
        "left_tuned", "left_default"]
LABELS = ["Crash → restart, tuned", "Crash → restart, defaults", "Start 5 children", "Idle CPU",
          "Idle RSS", "Log flood: child output", "Log flood: supervisor CPU",
          "Left behind after stop, tuned", "Left behind after stop, defaults"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("peers")
    results = tmp / "RESULTS.md"
    results.write_text("# Results\n\nkept\n\n<!-- peers:start -->\nold table\n<!-- peers:end -->\n\ntail\n")
    before = _descendants()
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--children", "5", "--kills", "3", "--idle-seconds", "2",
         "--flood-seconds", "2", "--start-rounds", "1", "--spawners", "1",
         "--json", str(tmp / "cells.json"), "--write-results", "--results", str(results)],
        capture_output=True, text=True, timeout=840, cwd=ROOT)
    leaked = {p: " ".join(psutil.Process(p).cmdline())[:200] for p in _descendants() - before
              if psutil.pid_exists(p)}
    for pid in leaked:  # do not let one failure take the rest of the session down with it
        psutil.Process(pid).kill()
    return {"proc": proc, "cells": json.loads((tmp / "cells.json").read_text()) if proc.returncode == 0 else {},
            "results": results.read_text(), "leaked": leaked}


def test_runner_prints_every_row_and_unified_system_runs(smoke):
    proc = smoke["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    assert "| Workload | unified-system |" in table and "unified-system vs best peer" in table
    assert "load average at start" in table and "Command: `python bench/peers/run.py" in table
    for label in LABELS:
        assert label in table, f"row {label!r} missing:\n{table}"
    for key in ROWS:
        cell = smoke["cells"][key]["unified-system"]
        assert cell["value"] is not None, f"unified-system {key}: {cell['text']}"


def test_nothing_left_running(smoke):
    assert not smoke["leaked"], f"the runner left processes behind: {smoke['leaked']}"


def test_write_results_replaces_only_the_marked_section(smoke):
    text = smoke["results"]
    assert text.count("<!-- peers:start -->") == 1 and text.count("<!-- peers:end -->") == 1
    assert "old table" not in text and "| Workload |" in text
    assert text.startswith("# Results\n\nkept\n") and text.rstrip().endswith("tail")


@pytest.mark.parametrize("peer", PEERS)
def test_peer_column(smoke, peer):
    assert smoke["proc"].returncode == 0, smoke["proc"].stderr[-3000:]
    cells = {key: smoke["cells"][key][peer] for key in ROWS}
    if any(c["text"].startswith("not installed") for c in cells.values()):
        pytest.skip(f"{peer} is not installed (run `bash bench/peers/install.sh`): {cells['start']['text']}")
    errors = {k: c["text"] for k, c in cells.items() if c["text"].startswith("error")}
    assert not errors, f"{peer}: {errors}\n{smoke['proc'].stderr[-3000:]}"
    for key in ("start", "idle_rss", "flood_rate", "left_tuned", "left_default"):
        assert cells[key]["value"] is not None, f"{peer} {key}: {cells[key]['text']}"


def test_runner_cleans_up_after_itself_on_sigterm(tmp_path):
    """Interrupted mid-run, the runner still kills every supervisor and child it started."""
    before = _descendants()
    proc = subprocess.Popen([sys.executable, str(RUNNER), "--children", "5", "--workloads", "start",
                             "--idle-seconds", "30", "--start-rounds", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    def sleepers() -> int:
        kids = psutil.Process(proc.pid).children(recursive=True)
        return sum("sleep" in " ".join(k.cmdline()) for k in kids if _safe(k))

    try:
        wait_until(lambda: sleepers() >= 5, 60, "the first supervisor's children", seen=sleepers)
        proc.terminate()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    leaked = _descendants() - before
    assert not leaked, {p: " ".join(psutil.Process(p).cmdline()) for p in leaked if psutil.pid_exists(p)}


def _safe(proc: psutil.Process) -> bool:
    try:
        proc.cmdline()
        return True
    except psutil.Error:
        return False
