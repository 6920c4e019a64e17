"""Plumbing shared by the peer adapters: /proc reads, the adapter interface, and cleanup.

Every supervisor is a real process tree. The runner makes itself a child subreaper, so a
daemon that detaches (PM2's God daemon) or a grandchild a supervisor leaves behind is
re-parented to the runner, where the final sweep (kill_descendants) finds and kills it.
"""

from __future__ import annotations

import compileall
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
# This machine sets PYTHONDONTWRITEBYTECODE=1: without this, unified-system (run from the
# checkout) would compile its modules on every start, which no installed peer does.
compileall.compile_dir(str(ROOT / "src"), quiet=1)
PEERS_DIR = Path(os.environ.get("PEERS_DIR", ROOT / "bench" / ".peers"))
VENV_BIN = PEERS_DIR / "venv" / "bin"
SLEEP = shutil.which("sleep") or "/bin/sleep"
FLOOD = Path(__file__).resolve().parent / "children" / "flood.py"
SPAWNER = Path(__file__).resolve().parent / "children" / "spawner.py"
POLL = 0.0005  # seconds between /proc polls: ~0.5 ms resolution without burning a core


SHELLS = {"sh", "dash", "bash"}


@dataclass
class Program:
    name: str
    argv: list[str]

    def is_me(self, pid: int) -> bool:
        """pid has exec'd this program (or a shell running it, as honcho does): not a forked
        supervisor before its exec, nor a wrapper such as setpriv that has yet to exec it."""
        args = cmdline(pid).split(" ")
        exe = os.path.basename(args[0])
        if exe in SHELLS:
            return len(args) > 2 and args[1] == "-c" and self.argv[-1] in " ".join(args[2:])
        return exe == os.path.basename(self.argv[0]) and args[1:len(self.argv)] == self.argv[1:]


# --------------------------------------------------------------------------- /proc
def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out.extend(int(p) for p in fh.read().split())
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        pass
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def alive(pid: int) -> bool:
    """The pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def split_tree(root: int, program: Program) -> tuple[list[int], list[int]]:
    """(programs, overhead) under root: the topmost descendants running `program` are programs;
    root and every other process outside a program's subtree are the supervisor's own (honcho
    runs one helper process per program; a forked-but-not-exec'd child counts too)."""
    programs, overhead, stack = [], [root], children(root)
    while stack:
        pid = stack.pop()
        if program.is_me(pid):
            programs.append(pid)
        elif alive(pid):
            overhead.append(pid)
            stack.extend(children(pid))
    return programs, overhead


# --------------------------------------------------------------------------- cleanup
OURS: set[int] = set()  # children we started with Popen: their Popen objects reap them


def become_subreaper() -> None:
    """Orphans below us re-parent to us instead of init; a thread reaps them as init would
    (a zombie would look alive to PM2's kill check and to our own counts)."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

    def loop() -> None:
        while True:
            reap_zombies()
            time.sleep(0.01)

    threading.Thread(target=loop, name="reaper", daemon=True).start()


def kill_descendants() -> None:
    """SIGKILL every descendant of this process (and its process group), then reap them."""
    me = psutil.Process()
    procs = me.children(recursive=True)
    for proc in procs:
        try:
            pgid = os.getpgid(proc.pid)
            if pgid != os.getpgid(0):
                os.killpg(pgid, signal.SIGKILL)
            proc.kill()
        except (psutil.Error, ProcessLookupError, PermissionError):
            pass
    psutil.wait_procs(procs, timeout=5)
    reap_zombies()


def reap_zombies() -> None:
    """Reap zombie children that are orphans adopted from below (not ones a Popen owns)."""
    for pid in children(os.getpid()):
        if pid in OURS or alive(pid):
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


# --------------------------------------------------------------------------- adapter
class Adapter:
    """One supervisor on one generated config, in its own temp dir. Subclasses fill in the rest."""

    name = "?"
    restarts = True  # False: it does not restart a crashed child (honcho)

    def __init__(self, tuned: bool) -> None:
        self.tuned = tuned
        self.dir = Path(tempfile.mkdtemp(prefix=f"peers-{self.name.split('-')[0]}-"))
        self.proc: subprocess.Popen | None = None  # the launch command
        self.down = False
        self.note: str | None = None  # something the table should say (honcho hanging on stop)

    @classmethod
    def missing(cls) -> str | None:
        """Why this supervisor cannot run here, or None."""
        return None

    @classmethod
    def version(cls) -> str:
        return ""

    def configure(self, programs: list[Program]) -> None:
        raise NotImplementedError

    def launch(self) -> None:
        """Start the supervisor (or its daemon) without waiting for it."""
        raise NotImplementedError

    def daemon_pid(self) -> int | None:
        """The process whose descendants are the programs; None until it exists."""
        return self.proc.pid if self.proc else None

    def log_path(self, name: str) -> Path:
        raise NotImplementedError

    def stop_program(self, name: str) -> None:
        """The supervisor's command to stop one program; returns when it reports it stopped."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Graceful stop of the supervisor and everything it runs."""
        raise NotImplementedError

    def graceful(self) -> None:
        """shutdown(), once."""
        if self.proc is not None and not self.down:
            self.down = True
            self.shutdown()

    def failed(self) -> str | None:
        if self.proc is not None and self.proc.poll() not in (None, 0):
            return f"{self.name} exited with {self.proc.returncode}"
        return None

    def close(self) -> None:
        try:
            self.graceful()
        except Exception as exc:  # noqa: BLE001 - cleanup must go on
            print(f"[{self.name}] shutdown failed: {exc}", file=sys.stderr)
        finally:
            kill_descendants()
            shutil.rmtree(self.dir, ignore_errors=True)

    # helpers for subclasses
    def spawn(self, argv: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, start_new_session=True, cwd=self.dir, **kwargs)
        OURS.add(proc.pid)
        return proc

    def run(self, argv: list[str], timeout: float = 60.0, **kwargs) -> str:
        """Run a control command (pm2, supervisorctl, circusctl, CLI); its stdout, or raise."""
        proc = self.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            OURS.discard(proc.pid)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])}... exited {proc.returncode}: {err.strip()[-300:]}")
        return out

    def wait_exit(self, timeout: float = 30.0) -> None:
        if self.proc is not None:
            self.proc.wait(timeout)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
