"""A soak of our own (issue 16): a generated graph under seeded random faults, with invariants.

    python bench/soak.py --duration 1800 --warmup 300 --seed 16

Runs a real supervisor on a generated graph of bench/children/soak_child.py services for
`warmup + duration` seconds while injecting, at random (seeded) moments and targets:
SIGKILL of children and of grandchildren, SIGSTOP freezes, output floods, memory hogs, valid
and invalid reloads, start/stop/restart storms, malformed HTTP, and one SIGKILL of the
supervisor itself (half way through the warm-up, so the measured run has one supervisor),
and, run as root, a full log disk: logs/ is a small tmpfs of its own, filled to the last
byte for a few seconds at a time.

Invariants checked all along:
- every service is running again within RECOVERY seconds of going down (storms excepted
  until they end);
- no two live copies of one (service, instance) (rolling restarts get ROLL_GRACE);
- checkpoint generations never go back;
- no child or supervisor log file over max_bytes;
- every invalid reload answers 422 and changes nothing; the API answers after malformed HTTP;
- a SIGKILLed supervisor starts again at once, and the final stop is clean with nothing left;
- supervisor RSS and fd count, sampled every SAMPLE seconds after the warm-up: the RSS slope
  (least squares, MiB/min) at most 0.1 and the end RSS within 10 % of the warm-up's, checked
  for runs of 10 minutes or more (shorter ones report them); the fd count in the same quiet
  state (base graph, all running) at the end of the warm-up and of the run may not grow.

Prints a table of faults and violations; --json writes the whole report. Exit 0 when no
invariant was violated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START = ROOT / "start_system.py"  # --tree runs another checkout's supervisor (a before/after)
CHILD = ROOT / "bench" / "children" / "soak_child.py"
PY = sys.executable

KEY = "soak-key-0123456789abcdef"
MAX_BYTES = 1_000_000
RECOVERY = 60.0      # seconds a service may stay down (a busy 2-core machine)
ROLL_GRACE = 30.0    # seconds two copies may overlap in a rolling restart
SAMPLE = 5.0         # seconds between RSS/fd samples
API_UP = 60.0        # seconds a (re)started supervisor has to answer
STUBBORN = "s1"      # ignores SIGTERM and holds a listen port: the leftover of issue 16 item 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t seconds, value) in value per minute."""
    if len(points) < 2:
        return 0.0
    mt = statistics.fmean(t for t, _ in points)
    mv = statistics.fmean(v for _, v in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return 60.0 * sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


# --------------------------------------------------------------------------- the graph

def base_services(rand: random.Random, count: int, soak_id: str, port: int) -> dict[str, Any]:
    env = {"PYTHONPATH": str(ROOT / "src"), "SOAK_ID": soak_id}
    services: dict[str, Any] = {}
    for i in range(count):
        name = f"s{i}"
        svc: dict[str, Any] = {
            "command": [PY, str(CHILD)], "env": dict(env),
            "readiness": {"notify": True},
            "restart": {"policy": "always", "backoff": {"initial": "200ms", "max": "2s"},
                        "max_restarts": 10000, "window": "60s"},
            "stop": {"timeout": "3s"},
            "limits": {"max_memory": "80MB"},
        }
        if i % 2 == 0:
            svc["heartbeat"] = {"timeout": "3s", "hard_timeout": "6s"}
        if i % 3 == 0:
            svc["checkpoint"] = {"keep": 3}
        if name == STUBBORN:
            svc["env"]["SOAK_STUBBORN"] = "1"
            svc["listen"] = [{"port": port, "host": "127.0.0.1", "name": "http"}]
        if i == 2:
            svc["instances"] = 2
        if i:
            deps = rand.sample([f"s{j}" for j in range(i)], k=min(i, rand.randrange(0, 3)))
            svc["depends_on"] = {d: {"condition": rand.choice(["started", "healthy"])} for d in deps}
        services[name] = svc
    return services


def extra_service(soak_id: str) -> dict[str, Any]:
    return {"command": [PY, str(CHILD)], "readiness": {"notify": True},
            "env": {"PYTHONPATH": str(ROOT / "src"), "SOAK_ID": soak_id},
            "restart": {"policy": "always", "backoff": {"initial": "200ms", "max": "2s"}},
            "stop": {"timeout": "3s"}}


@dataclass
class Violation:
    at: float
    kind: str
    detail: str


@dataclass
class Report:
    seed: int
    duration: float
    warmup: float
    faults: Counter = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "duration": self.duration, "warmup": self.warmup,
                "faults": dict(self.faults), "figures": self.figures,
                "violations": [v.__dict__ for v in self.violations]}

    def table(self) -> str:
        lines = [f"soak: seed {self.seed}, warm-up {self.warmup:g} s, run {self.duration:g} s",
                 "", f"{'fault':<22}{'count':>7}"]
        lines += [f"{k:<22}{v:>7}" for k, v in sorted(self.faults.items())]
        lines += [f"{'total':<22}{sum(self.faults.values()):>7}", ""]
        lines += [f"{k:<28}{v}" for k, v in self.figures.items()]
        lines += ["", f"violations: {len(self.violations)}"]
        by_kind = Counter(v.kind for v in self.violations)
        lines += [f"  {k:<26}{n}" for k, n in sorted(by_kind.items())]
        lines += [f"  t={v.at:8.1f}s {v.kind}: {v.detail}" for v in self.violations[:40]]
        return "\n".join(lines)


class Soak:
    def __init__(self, workdir: Path, seed: int, duration: float, warmup: float,
                 services: int = 10, fault_every: float = 3.0, log: Any = None,
                 tree: Path = ROOT) -> None:
        self.dir = workdir
        self.start = tree / "start_system.py"
        self.rand = random.Random(seed)
        self.report = Report(seed, duration, warmup)
        self.duration, self.warmup, self.fault_every = duration, warmup, fault_every
        self.soak_id = f"soak-{os.getpid()}-{seed}"
        self.state = workdir / "state"
        self.config_path = workdir / "services.yaml"
        self.api_port = free_port()
        self.base = base_services(self.rand, services, self.soak_id, free_port())
        self.extras: dict[str, Any] = {}
        self.generation = 0
        self.proc: subprocess.Popen | None = None
        self.t0 = time.monotonic()
        self.down_since: dict[str, float] = {}
        self.exempt_until: dict[str, float] = {}
        self.dups: dict[tuple[str, str], tuple[frozenset[int], float]] = {}
        self.checkpoints: dict[str, int] = {}
        self.samples: list[tuple[float, float, int, int]] = []   # (t, rss MiB, fds, threads)
        self.stderr = open(workdir / "supervisor.stderr", "ab")
        self.say = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.services: list[dict[str, Any]] = []
        self.logs_mounted = False            # logs/ on a tmpfs of its own: the disk can fill
        self.filler: Path | None = None
        self.filler_until = 0.0

    # ----------------------------------------------------------------- plumbing
    def now(self) -> float:
        return time.monotonic() - self.t0

    def violate(self, kind: str, detail: str) -> None:
        self.report.violations.append(Violation(round(self.now(), 1), kind, detail))
        self.say(f"VIOLATION {kind}: {detail}")

    def config(self, invalid: str | None = None) -> dict[str, Any]:
        services = {**self.base, **self.extras}
        cfg: dict[str, Any] = {"version": 1, "supervisor": {
            "host": "127.0.0.1", "port": self.api_port, "api_key": KEY,
            "state_dir": str(self.state), "shutdown_timeout": "60s",
            "log": {"level": "INFO", "format": "json", "max_bytes": MAX_BYTES, "backups": 2}},
            "services": json.loads(json.dumps(services))}
        if invalid == "unknown_key":
            cfg["services"]["s0"]["bogus_key"] = 1
        elif invalid == "cycle":
            cfg["services"]["s0"]["depends_on"] = {"s3": {"condition": "started"}}
            cfg["services"]["s3"]["depends_on"] = {"s0": {"condition": "started"}}
        elif invalid == "bad_duration":
            cfg["services"]["s0"]["stop"] = {"timeout": "ten seconds"}
        elif invalid == "missing_program":
            cfg["services"]["s0"]["command"] = ["/nonexistent/soak-program"]
        elif invalid == "yaml":
            return {"__text__": "services: [unclosed\n  - {"}
        return cfg

    def write_config(self, invalid: str | None = None) -> None:
        cfg = self.config(invalid)
        text = cfg["__text__"] if "__text__" in cfg else json.dumps(cfg, indent=1)  # JSON is YAML
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    def api(self, method: str, path: str, timeout: float = 15.0) -> tuple[int, Any]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", method=method,
                                     headers={"X-API-Key": KEY},
                                     data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read() or b"null")
            except ValueError:
                body = None
            return exc.code, body
        except (OSError, ValueError) as exc:
            return 0, str(exc)

    # ----------------------------------------------------------------- supervisor
    def start_supervisor(self) -> bool:
        self.proc = subprocess.Popen([PY, str(self.start), "run", "-c", str(self.config_path)],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr,
                                     cwd=self.dir, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + API_UP
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.api("GET", "/health", timeout=2.0)[0] in (200, 503):
                return True
            time.sleep(0.2)  # polling an outside process's readiness, with a deadline
        return False

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def sample(self) -> None:
        pid = self.pid()
        try:
            with open(f"/proc/{pid}/status") as fh:
                status = dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
            rss = int(status["VmRSS"].split()[0]) / 1024
            threads = int(status["Threads"])
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, KeyError, ValueError):
            return
        self.samples.append((self.now(), rss, fds, threads))

    def memory_map(self) -> dict[str, int]:
        """Where the supervisor's memory is, from /proc/PID/smaps: the main heap (brk), the
        other anonymous mappings (thread stacks, and the malloc arenas of other threads:
        64 MiB reservations), in KiB of RSS, and how many such mappings there are."""
        out = {"heap_kib": 0, "anon_kib": 0, "anon_maps": 0, "arena_like_maps": 0}
        try:
            with open(f"/proc/{self.pid()}/smaps") as fh:
                text = fh.read()
        except OSError:
            return out
        name, size = "", 0
        for line in text.splitlines():
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                name, size = (head[5] if len(head) > 5 else ""), (hi - lo) >> 10
            elif line.startswith("Rss:"):
                rss = int(head[1])
                if name == "[heap]":
                    out["heap_kib"] += rss
                elif name == "":
                    out["anon_kib"] += rss
                    out["anon_maps"] += 1
                    out["arena_like_maps"] += size >= 1024 and rss > 0 and size % 1024 == 0 and size <= 65536
        return out

    # ----------------------------------------------------------------- invariants
    def poll_services(self) -> None:
        code, body = self.api("GET", "/api/services", timeout=10.0)
        if code != 200 or not isinstance(body, list):
            return
        self.services = body
        now = self.now()
        wanted = {*self.base, *self.extras}
        for svc in body:
            name = svc["name"]
            if name not in wanted:
                continue
            if svc["state"] == "running":
                self.down_since.pop(name, None)
                continue
            since = self.down_since.setdefault(name, now)
            if now - since > RECOVERY and now > self.exempt_until.get(name, 0):
                self.violate("no_recovery", f"{name} {svc['state']} for {now - since:.0f} s")
                self.down_since[name] = now   # once per episode

    def check_duplicates(self) -> None:
        copies: dict[tuple[str, str], set[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if fields[0] in ("Z", "X") or int(fields[3]) != pid:
                    continue   # a zombie, or not the leader of its own session (a service is)
                with open(f"/proc/{pid}/environ", "rb") as fh:
                    env = dict(kv.split(b"=", 1) for kv in fh.read().split(b"\0") if b"=" in kv)
            except (OSError, ValueError, IndexError):
                continue
            if env.get(b"SOAK_ID", b"").decode() != self.soak_id:
                continue
            key = (env.get(b"UNIFIED_SERVICE", b"?").decode(), env.get(b"UNIFIED_INSTANCE", b"?").decode())
            copies.setdefault(key, set()).add(pid)
        now = self.now()
        for key, pids in copies.items():
            if len(pids) < 2:
                self.dups.pop(key, None)
                continue
            spec = self.base.get(key[0], {})
            rolling = bool(spec.get("listen")) or spec.get("instances", 1) > 1
            seen = frozenset(pids)
            first = self.dups.setdefault(key, (seen, now))
            if first[0] != seen:
                self.dups[key] = first = (seen, now)
            if not rolling or now - first[1] > ROLL_GRACE:
                self.violate("duplicate", f"{key[0]}[{key[1]}] has {len(pids)} live copies: {sorted(pids)}")
                self.dups[key] = (seen, now + 3600)   # once per episode
        for key in [k for k in self.dups if k not in copies]:
            del self.dups[key]

    def check_checkpoints(self) -> None:
        for name in self.base:
            found = [int(p.name[11:23]) for p in (self.state / "checkpoints" / name).glob("checkpoint-*.json")]
            if not found:
                continue
            newest = max(found)
            if newest < self.checkpoints.get(name, 0):
                self.violate("checkpoint_back", f"{name}: generation {newest} after {self.checkpoints[name]}")
            self.checkpoints[name] = max(newest, self.checkpoints.get(name, 0))

    def check_logs(self) -> None:
        for path in (self.state / "logs").glob("[!.]*"):   # not the disk-full filler
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size > MAX_BYTES:
                self.violate("log_over_limit", f"{path.name}: {size} bytes > {MAX_BYTES}")

    # ----------------------------------------------------------------- faults
    def live_pid(self, names: list[str]) -> tuple[str, int] | None:
        choices = [(s["name"], inst["pid"]) for s in self.services if s["name"] in names
                   for inst in s.get("instances") or () if inst.get("pid")]
        return self.rand.choice(choices) if choices else None

    def fault(self, kind: str) -> None:
        self.report.faults[kind] += 1
        names = list(self.base)
        if kind in ("kill_child", "freeze", "flood", "hog"):
            pool = [n for n in names if "heartbeat" in self.base[n]] if kind == "freeze" else names
            target = self.live_pid(pool)
            if target is None:
                return
            sig = {"kill_child": signal.SIGKILL, "freeze": signal.SIGSTOP, "flood": signal.SIGUSR1,
                   "hog": signal.SIGUSR2}[kind]
            try:
                os.kill(target[1], sig)
            except ProcessLookupError:
                pass
        elif kind == "kill_grandchild":
            target = self.live_pid(names)
            if target is None:
                return
            for kid in _children(target[1]):
                try:
                    os.kill(kid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        elif kind == "reload_valid":
            self.reload_valid()
        elif kind == "reload_invalid":
            self.reload_invalid()
        elif kind == "storm":
            self.storm()
        elif kind == "malformed_http":
            self.malformed_http()
        elif kind == "disk_full":
            self.fill_disk()

    def mount_logs(self) -> None:
        """logs/ on a tmpfs of its own (root only), so that a fault can fill it."""
        logs = self.state / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m,mode=0750", "soak-logs", str(logs)],
                              capture_output=True, text=True)
        self.logs_mounted = done.returncode == 0
        if not self.logs_mounted:
            self.say(f"no full-disk faults: cannot mount a tmpfs ({done.stderr.strip()})")

    def fill_disk(self) -> None:
        """Take every free byte of the log disk for 2-8 s: children keep writing meanwhile."""
        if not self.logs_mounted or self.filler is not None:
            return
        self.filler = self.state / "logs" / ".filler"
        with open(self.filler, "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 1_048_576)
                    fh.flush()
            except OSError:   # ENOSPC: the disk is full
                pass
        self.filler_until = self.now() + self.rand.uniform(2.0, 8.0)

    def release_disk(self, force: bool = False) -> None:
        if self.filler is not None and (force or self.now() >= self.filler_until):
            self.filler.unlink(missing_ok=True)
            self.filler = None

    def unmount_logs(self) -> None:
        if self.logs_mounted:
            self.release_disk(force=True)
            subprocess.run(["umount", "-l", str(self.state / "logs")], capture_output=True)
            self.logs_mounted = False

    def reload_valid(self) -> None:
        choice = self.rand.random()
        if choice < 0.4 and len(self.extras) < 2:
            self.extras[f"x{self.generation}"] = extra_service(self.soak_id)
        elif choice < 0.8 and self.extras:
            del self.extras[self.rand.choice(sorted(self.extras))]
        else:
            self.generation += 1
            name = self.rand.choice([n for n in self.base if n != STUBBORN])
            self.base[name]["env"]["SOAK_GENERATION"] = str(self.generation)
            self.exempt_until[name] = self.now() + RECOVERY
        self.generation += 1
        self.write_config()
        code, body = self.api("POST", "/api/reload", timeout=120.0)
        if code == 409:
            return   # a reload still in progress: not a failure
        if code != 200:
            self.violate("reload_failed", f"valid reload answered {code}: {str(body)[:200]}")

    def reload_invalid(self) -> None:
        before = sorted(s["name"] for s in self.services)
        self.write_config(self.rand.choice(["unknown_key", "cycle", "bad_duration", "missing_program", "yaml"]))
        code, body = self.api("POST", "/api/reload", timeout=60.0)
        self.write_config()
        if code == 409:
            return
        if code != 422:
            self.violate("invalid_reload", f"answered {code}, not 422: {str(body)[:200]}")
        status, now_listed = self.api("GET", "/api/services")
        if status == 200 and sorted(s["name"] for s in now_listed) != before:
            self.violate("invalid_reload", f"services changed: {before} -> {now_listed}")

    def storm(self) -> None:
        # A stop also stops the dependents (as systemd's Requires= does) and a start brings
        # back only the one named: the storm ends with a start of every service.
        for name in self.base:
            self.exempt_until[name] = self.now() + 3600
        for _ in range(12):
            name = self.rand.choice(list(self.base))
            action = self.rand.choice(["start", "stop", "restart"])
            code, body = self.api("POST", f"/api/services/{name}/{action}", timeout=30.0)
            if code not in (200, 202, 409):
                self.violate("storm", f"{action} {name} answered {code}: {str(body)[:200]}")
        for name in self.base:
            self.api("POST", f"/api/services/{name}/start", timeout=30.0)
            self.exempt_until[name] = self.now() + RECOVERY
            self.down_since.pop(name, None)

    def malformed_http(self) -> None:
        shapes = [
            b"\x00\xff\xfe garbage \x01\r\n\r\n",
            b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /api/reload HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode()
            + b"\r\nContent-Length: 99999999999999999999999\r\n\r\n{",
            b"GET /health HTTP/1.1\r\n" + b"X-Flood: y\r\n" * 5000 + b"\r\n",
            b"GET /health HTTP/1.1\r\nHost:",
            b"POST /api/services/s0/restart HTTP/1.1\r\nHost: x\r\nX-API-Key: wrong'\"$(x)\r\n"
            b"Content-Length: 0\r\n\r\n",
            b"GET /api/services/..%2f..%2fetc%2fpasswd/logs?lines=-99999999999 HTTP/1.1\r\n"
            b"X-API-Key: " + KEY.encode() + b"\r\n\r\n",
        ]
        data = self.rand.choice(shapes)
        try:
            with socket.create_connection(("127.0.0.1", self.api_port), timeout=5) as sock:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
        except OSError:
            pass
        if self.api("GET", "/health", timeout=15.0)[0] not in (200, 503):
            self.violate("api_down", f"no answer after malformed request {data[:40]!r}")

    def kill_supervisor(self) -> None:
        self.report.faults["kill_supervisor"] += 1
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        started = time.monotonic()
        if not self.start_supervisor():
            code = self.proc.poll() if self.proc is not None else None
            self.violate("restart_refused", f"the supervisor did not start again after SIGKILL "
                                            f"(exit {code}; see supervisor.stderr)")
            if code is not None:   # go on with the soak: try again once the leftovers are gone
                time.sleep(10)     # not a sync point: a last attempt after the stop timeouts
                self.start_supervisor()
        self.report.figures["restart_after_sigkill_s"] = round(time.monotonic() - started, 2)

    # ----------------------------------------------------------------- the run
    def quiet(self, label: str) -> None:
        """Back to the base graph, every service running: the state fd counts compare in."""
        if self.extras:
            self.extras.clear()
            self.write_config()
            self.api("POST", "/api/reload", timeout=120.0)
        deadline = time.monotonic() + 2 * RECOVERY
        while time.monotonic() < deadline:
            self.poll_services()
            if self.services and all(s["state"] == "running" for s in self.services):
                break
            time.sleep(1.0)  # polling an outside process, with a deadline
        code, snap = self.api("GET", "/api/services")
        listed = {s["name"] for s in snap} if code == 200 else set()
        if listed != set(self.base):
            self.violate("quiet", f"{label}: services listed {sorted(listed)}")
        time.sleep(3.0)  # let closes queued to the I/O thread and worker run: not a sync point
        self.sample()
        pid = self.pid()
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            threads = len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            fds = threads = -1
        code, text = 0, ""
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{self.api_port}/metrics",
                                         headers={"X-API-Key": KEY})
            with urllib.request.urlopen(req, timeout=15) as resp:
                code, text = resp.status, resp.read().decode()
        except OSError:
            pass
        series = sum(1 for line in text.splitlines() if line.startswith("unified_service"))
        self.report.figures[f"{label}_fds"] = fds
        self.report.figures[f"{label}_threads"] = threads
        self.report.figures[f"{label}_series"] = series if code == 200 else None
        self.report.figures[f"{label}_rss_mib"] = round(self.samples[-1][1], 1) if self.samples else None
        for key, value in self.memory_map().items():
            self.report.figures[f"{label}_{key}"] = value
        if code == 200:   # a series of a service no longer configured: leaked
            known = set(self.base) | set(self.extras)
            stale = sorted({line.split('service="', 1)[1].split('"', 1)[0] for line in text.splitlines()
                            if 'service="' in line and not line.startswith("#")} - known)
            if stale:
                self.violate("stale_series", f"{label}: /metrics still has series of {stale}")

    def run(self) -> Report:
        self.state.mkdir(parents=True, exist_ok=True)
        self.mount_logs()
        self.write_config()
        if not self.start_supervisor():
            self.violate("start", "the supervisor did not start")
            self.stop()
            return self.report
        kinds = (["kill_child"] * 4 + ["kill_grandchild"] * 2 + ["freeze"] * 2 + ["flood"] * 2
                 + ["hog"] * 1 + ["reload_valid"] * 2 + ["reload_invalid"] * 2 + ["storm"] * 1
                 + ["malformed_http"] * 2 + ["disk_full"] * 1)
        kill_at = self.warmup / 2 if self.warmup > 0 else self.duration / 2
        killed = False
        end_warm, end = self.warmup, self.warmup + self.duration
        warm_done = False
        next_fault = self.now() + self.fault_every
        next_sample = next_check = 0.0
        while self.now() < end:
            now = self.now()
            if not killed and now >= kill_at:
                killed = True
                self.kill_supervisor()
                continue
            if not warm_done and now >= end_warm:
                warm_done = True
                self.quiet("warm")
                self.samples.clear()
                self.sample()
                continue
            if now >= next_fault:
                self.fault(self.rand.choice(kinds))
                next_fault = self.now() + self.rand.uniform(0.5, 1.5) * self.fault_every
            self.release_disk()
            self.poll_services()
            self.check_duplicates()
            if now >= next_check:
                self.check_checkpoints()
                self.check_logs()
                next_check = now + 2.0
            if now >= next_sample and warm_done:
                self.sample()
                next_sample = now + SAMPLE
            if self.proc is not None and self.proc.poll() is not None:
                self.violate("supervisor_died", f"exit {self.proc.returncode}")
                if not self.start_supervisor():
                    break
            time.sleep(0.5)  # the monitor's pace, not a synchronisation
        self.finish()
        return self.report

    def finish(self) -> None:
        self.release_disk(force=True)
        self.quiet("end")
        self.check_logs()
        self.check_checkpoints()
        fig = self.report.figures
        measured = [(t, rss) for t, rss, _f, _th in self.samples]
        if measured:
            fig["rss_slope_mib_per_min"] = round(slope(measured), 3)
            fig["fd_slope_per_min"] = round(slope([(t, f) for t, _r, f, _th in self.samples]), 3)
            fig["rss_samples"] = len(measured)
            warm = fig.get("warm_rss_mib") or measured[0][1]
            fig["rss_end_vs_warm"] = round(measured[-1][1] / warm, 3) if warm else None
            if self.duration >= 600:
                if fig["rss_slope_mib_per_min"] > 0.1:
                    self.violate("rss_slope", f"{fig['rss_slope_mib_per_min']} MiB/min > 0.1")
                if fig["rss_end_vs_warm"] and fig["rss_end_vs_warm"] > 1.10:
                    self.violate("rss_end", f"end RSS {measured[-1][1]:.1f} MiB > 110 % of warm-up {warm:.1f}")
        if fig.get("warm_fds", -1) >= 0 and fig.get("end_fds", -1) > fig["warm_fds"]:
            self.violate("fd_growth", f"fds {fig['warm_fds']} -> {fig['end_fds']} in the same quiet state")
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
                self.violate("final_stop", "the supervisor did not stop within 120 s")
            if code != 0:
                self.violate("final_stop", f"exit {code}")
        left = self.leftovers()
        if left:
            self.violate("orphans", f"processes left after the stop: {[_describe(p) for p in left]}")
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.unmount_logs()
        self.stderr.close()

    def leftovers(self) -> list[int]:
        left = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/environ", "rb") as fh:
                        if b"SOAK_ID=" + self.soak_id.encode() + b"\0" in fh.read():
                            left.append(int(entry))
                except OSError:
                    pass
        return left


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")[-80:]
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return f"{pid} ({fields[0]}, ppid {fields[1]}, pgid {fields[2]}): {cmd}"
    except OSError:
        return f"{pid} (gone)"


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids.extend(map(int, fh.read().split()))
    except OSError:
        pass
    return kids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds measured after the warm-up")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of faults before measuring")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--fault-every", type=float, default=3.0, help="mean seconds between faults")
    parser.add_argument("--dir", help="work directory (default: a fresh temporary one, removed after)")
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--tree", default=str(ROOT), help="the checkout whose supervisor runs")
    args = parser.parse_args(argv)
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        soak = Soak(workdir, args.seed, args.duration, args.warmup, args.services, args.fault_every,
                    tree=Path(args.tree).resolve())
        report = soak.run()
    finally:
        if not args.dir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=1))
    return 1 if report.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
