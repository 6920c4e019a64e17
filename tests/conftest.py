"""Suite-wide fixtures: every test must leave no process of its own behind."""

from __future__ import annotations

import ctypes
import os
import signal
import time

import psutil
import pytest

PR_SET_CHILD_SUBREAPER = 36


def pytest_configure(config):
    # A bug in an owner handler fails the test instead of being logged and survived.
    os.environ["UNIFIED_STRICT"] = "1"
    # Orphaned grandchildren re-parent to pytest instead of init, so the leak check sees them.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # Run in the background of a non-interactive shell, we inherit SIGINT and SIGQUIT
    # ignored, and so would every child: a `logs -f` would never see the SIGINT a test
    # sends. A handler here becomes the default disposition in children after exec.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) is signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def _reap_orphan_zombies() -> None:
    for proc in psutil.Process(os.getpid()).children():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(proc.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            pass


def _descendants() -> dict[int, str]:
    out: dict[int, str] = {}
    for proc in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                out[proc.pid] = " ".join(proc.cmdline())[:200]
        except psutil.Error:
            pass
    return out


@pytest.fixture(autouse=True)
def no_leaked_processes():
    """Fail a test that leaves a child process running after it ends."""
    before = set(_descendants())
    yield
    deadline = time.monotonic() + 5.0
    leaked = {p: c for p, c in _descendants().items() if p not in before}
    while leaked and time.monotonic() < deadline:
        procs = []
        for p in leaked:
            try:
                procs.append(psutil.Process(p))
            except psutil.NoSuchProcess:   # exited between the listing and here
                pass
        psutil.wait_procs(procs, timeout=0.2)
        leaked = {p: c for p, c in _descendants().items() if p not in before}
    for pid in leaked:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass
    _reap_orphan_zombies()
    assert not leaked, f"test left processes behind: {leaked}"
