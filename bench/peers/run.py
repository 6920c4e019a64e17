"""unified-system side by side with PM2, supervisord, circus and honcho, in one run.

    bash bench/peers/install.sh            # once: peers into bench/.peers (gitignored)
    python bench/peers/run.py [--children 100] [--kills 30] [--idle-seconds 30]
                              [--flood-seconds 10] [--start-rounds 3] [--spawners 3]
                              [--only pm2,supervisord] [--write-results] [--json out.json]

Prints a Markdown table (one row per workload, one column per supervisor, and
"unified-system vs best peer"); --write-results also replaces the section between
<!-- peers:start --> and <!-- peers:end --> in bench/RESULTS.md (created when missing).
A peer that is not installed gets "not installed" in its column; unified-system always runs.
Workloads run one after another, each on every supervisor in turn, so load drifts hit all alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads as W  # noqa: E402
from common import ROOT, become_subreaper, kill_descendants  # noqa: E402
from peer_circus import Circus  # noqa: E402
from peer_honcho import Honcho  # noqa: E402
from peer_pm2 import PM2  # noqa: E402
from peer_supervisord import Supervisord  # noqa: E402
from peer_unified import Unified  # noqa: E402

SUPERVISORS = [Unified, PM2, Supervisord, Circus, Honcho]
US = Unified.name
START_MARK, END_MARK = "<!-- peers:start -->", "<!-- peers:end -->"


class Cell:
    def __init__(self, text: str, value: float | None = None) -> None:
        self.text, self.value = text, value


# (key, label, better: "low" | "high" | "count")
ROWS = [
    ("crash_tuned", "Crash → restart, tuned (median ms)", "low"),
    ("crash_default", "Crash → restart, defaults (median ms; restarted/kills)", "low"),
    ("start", "Start {n} children (median ms of {r} launches)", "low"),
    ("idle_cpu", "Idle CPU with {n} children (% of one core, {idle:.0f} s)", "low"),
    ("idle_rss", "Idle RSS with {n} children (MB)", "low"),
    ("flood_rate", "Log flood: child output captured (MB/s)", "high"),
    ("flood_cpu", "Log flood: supervisor CPU (% of one core)", "low"),
    ("left_tuned", "Left behind after stop, tuned (grandchildren alive / programs; stop s)", "count"),
    ("left_default", "Left behind after stop, defaults (grandchildren alive / programs; stop s)", "count"),
]


def ms(x: float) -> str:
    return f"{x * 1000:.1f}" if x < 1 else f"{x * 1000:.0f}"


def measure(key: str, cls, args) -> list[tuple[str, Cell]]:
    """Run the workload behind row `key` (and its sibling rows) on one supervisor."""
    if key.startswith("crash"):
        tuned = key == "crash_tuned"
        kills = args.kills if tuned else min(args.kills, 6)
        r = W.crash(cls, tuned, kills, settle=0.05 if tuned else 1.5, timeout=5.0 if tuned else 20.0)
        lat = r["latencies"]
        if not lat:
            return [(key, Cell(f"no restart in {'5' if tuned else '20'} s"))]
        text = f"{ms(W.median(lat))} (n={len(lat)})" if tuned else f"{ms(W.median(lat))} (first {ms(lat[0])})"
        if len(lat) < kills:
            text += f"; {len(lat)}/{r['kills']}, then no restart"
        elif not tuned:
            text += f"; {len(lat)}/{kills}"
        return [(key, Cell(text, W.median(lat) * 1000))]
    if key == "start":
        r = W.start_idle(cls, args.children, args.start_rounds, args.idle_seconds)
        if r["procs"] > 1:  # several processes share pages: PSS sums them without double counting
            memory = Cell(f"{r['pss'] / 1e6:.1f} PSS, {r['procs']} procs (RSS sum {r['rss'] / 1e6:.0f})",
                          r["pss"] / 1e6)
        else:
            memory = Cell(f"{r['rss'] / 1e6:.1f}", r["rss"] / 1e6)
        return [("start", Cell(f"{ms(W.median(r['starts']))}", W.median(r["starts"]) * 1000)),
                ("idle_cpu", Cell(f"{100 * r['cpu']:.2f}", 100 * r["cpu"])),
                ("idle_rss", memory)]
    if key == "flood_rate":
        r = W.flood(cls, args.flood_seconds)
        if r["payload_rate"] is None:
            return [("flood_rate", Cell("error: log rotated in the window")),
                    ("flood_cpu", Cell(f"{100 * r['cpu']:.0f}", 100 * r["cpu"]))]
        rate = r["payload_rate"]
        text = f"{rate / 1e6:.1f}"
        if abs(r["file_rate"] - rate) > 0.05 * max(rate, 1):
            text += f" (file {r['file_rate'] / 1e6:.1f})"
        return [("flood_rate", Cell(text, rate / 1e6)),
                ("flood_cpu", Cell(f"{100 * r['cpu']:.0f}", 100 * r["cpu"]))]
    if key.startswith("left"):
        r = W.leftovers(cls, key == "left_tuned", args.spawners)
        text = f"{r['survivors']}/{r['spawners']}; {r['stop_seconds']:.1f} s"
        if r["note"]:
            text = f"{r['survivors']}/{r['spawners']}; {r['note']}"
        return [(key, Cell(text, r["survivors"]))]
    raise KeyError(key)


WORKLOADS = ["crash_tuned", "crash_default", "start", "flood_rate", "left_tuned", "left_default"]


def run_all(args, classes) -> dict[str, dict[str, Cell]]:
    table: dict[str, dict[str, Cell]] = {key: {} for key, _, _ in ROWS}
    for cls in classes:
        if (why := cls.missing()) is not None:
            for key in table:
                table[key][cls.name] = Cell(why.split(" (")[0])
    chosen = {w.strip() for w in args.workloads.split(",")}
    for workload in WORKLOADS:
        if not any(workload.startswith(c[:4]) for c in chosen):
            continue
        for cls in classes:
            if cls.name in table[workload]:
                continue
            print(f"[peers] {workload}: {cls.name} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                for key, cell in measure(workload, cls, args):
                    table[key][cls.name] = cell
            except W.NotApplicable as exc:
                for key in siblings(workload):
                    table[key][cls.name] = Cell(f"N/A ({exc})")
            except Exception as exc:  # noqa: BLE001 - one peer failing must not stop the others
                traceback.print_exc()
                for key in siblings(workload):
                    table[key][cls.name] = Cell(f"error: {type(exc).__name__}")
            finally:
                kill_descendants()
            print(f"[peers]   {time.monotonic() - t0:.1f} s: "
                  f"{table[workload][cls.name].text}", file=sys.stderr, flush=True)
    return table


def siblings(workload: str) -> list[str]:
    return {"start": ["start", "idle_cpu", "idle_rss"], "flood_rate": ["flood_rate", "flood_cpu"]}.get(
        workload, [workload])


def versus(row: dict[str, Cell], better: str) -> str:
    us = row.get(US)
    peers = {n: c for n, c in row.items() if n != US and c.value is not None}
    if us is None or us.value is None or not peers:
        return "–"
    pick = max if better == "high" else min
    best = pick(peers, key=lambda n: peers[n].value)
    b = peers[best].value
    if better == "count":
        return f"{us.value:.0f} vs {b:.0f} ({best})"
    if b == 0:
        return f"{us.value:.2f} vs 0 ({best})"
    return f"{us.value / b:.2f}× {best}"


def render(table, args, classes, load_start, load_end, started: datetime) -> str:
    names = [c.name for c in classes]
    fmt = {"n": args.children, "r": args.start_rounds, "idle": args.idle_seconds}
    lines = ["| Workload | " + " | ".join(names) + " | unified-system vs best peer |",
             "|---|" + "---:|" * len(names) + "---|"]
    for key, label, better in ROWS:
        row = table[key]
        cells = [row.get(n, Cell("–")).text for n in names]
        lines.append(f"| {label.format(**fmt)} | " + " | ".join(cells) + f" | {versus(row, better)} |")
    versions = ", ".join(f"{c.name} {c.version() or '?'}" for c in classes if c.missing() is None)
    command = "python bench/peers/run.py " + shlex.join(sys.argv[1:])
    head = [
        f"Date: {started:%Y-%m-%d %H:%M} UTC. Machine: {os.cpu_count()} CPUs (nproc {nproc()}), "
        f"{cpu_model()}, Linux {platform.release()}; load average at start {load_start}, at end {load_end}.",
        f"Versions: {versions}; Python {platform.python_version()}, Node {node_version()}.",
        f"Command: `{command}`",
        "",
        "Ratio column: unified-system's value divided by the best peer's (lower is better, except "
        "MB/s); for leftovers, the counts side by side. Tuned = each supervisor's most favourable "
        "settings, defaults = its out-of-the-box behaviour (see bench/peers/peer_*.py).",
        "",
    ]
    return "\n".join(head + lines) + "\n"


def nproc() -> str:
    return subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "none"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def write_results(path: Path, section: str) -> None:
    block = f"{START_MARK}\n{section}{END_MARK}\n"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if START_MARK in text and END_MARK in text:
        before, rest = text.split(START_MARK, 1)
        after = rest.split(END_MARK, 1)[1].lstrip("\n")
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    parser.add_argument("--start-rounds", type=int, default=3)
    parser.add_argument("--spawners", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated peers to include (unified-system always runs)")
    parser.add_argument("--workloads", default="crash,start,flood,leftovers",
                        help="comma-separated subset of: crash, start (with idle), flood, leftovers")
    parser.add_argument("--write-results", action="store_true", help="update the peers section of --results")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--json", type=Path, help="also write the cells as JSON here")
    args = parser.parse_args()
    wanted = {n.strip().lower() for n in args.only.split(",") if n.strip()}
    classes = [c for c in SUPERVISORS if c is Unified or not wanted or c.name.lower() in wanted]

    become_subreaper()  # daemons and abandoned grandchildren re-parent to us: we kill them at the end
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started, load_start = datetime.now(UTC), loadavg()
    try:
        table = run_all(args, classes)
    finally:
        kill_descendants()
    section = render(table, args, classes, load_start, loadavg(), started)
    print(section)
    if args.write_results:
        write_results(args.results, section)
        print(f"updated {args.results}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({k: {n: {"text": c.text, "value": c.value} for n, c in row.items()}
                                         for k, row in table.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
