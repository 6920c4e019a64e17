"""The one OS seam: spawning, signalling and reaping all go through ProcessSeam."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from unified_system.core.policy import ExitStatus
from unified_system.proc.iothread import IOThread, Sink


@dataclass(frozen=True)
class Spawned:
    pid: int
    pgid: int


PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
# util-linux's setpriv sets the parent-death signal and execs the program. Going through it
# keeps Popen on vfork; a preexec_fn would force a full fork, measured at +6 ms per spawn.
SETPRIV = shutil.which("setpriv")


def _die_with(parent: int, signum: int) -> Callable[[], None]:
    """Fallback without setpriv, run between fork and exec: `signum` when the supervisor dies."""

    def preexec() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return preexec


class SpawnError(Exception):
    """The program could not be executed at all (missing, not executable, bad cwd)."""


class ProcessSeam:
    def __init__(self, parent_death_signal: int | None = signal.SIGTERM) -> None:
        self._pdeathsig = parent_death_signal
        # setpriv's spelling of the signal, worked out once rather than on every spawn
        self._setpriv = None if parent_death_signal is None or not SETPRIV else \
            [SETPRIV, "--pdeathsig", signal.Signals(parent_death_signal).name.removeprefix("SIG"), "--"]
        self._io = IOThread()
        self._io.start()

    def spawn(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str],
              on_exit: Callable[[ExitStatus], None], sink: Sink | None = None,
              executable: str | None = None, pass_fds: Sequence[int] = ()) -> Spawned:
        """Start argv (never through a shell) as the leader of a new session and group."""
        read_fd = write_fd = None
        if sink is not None:
            read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        out = write_fd if write_fd is not None else subprocess.DEVNULL
        argv, preexec = list(argv), None
        if self._setpriv is not None:
            argv = [*self._setpriv, executable or argv[0], *argv[1:]]
            executable = SETPRIV
        elif self._pdeathsig is not None:
            preexec = _die_with(os.getpid(), self._pdeathsig)
        with self._io.spawn_lock:
            try:
                proc = subprocess.Popen(
                    argv, executable=executable, cwd=cwd, env=dict(env),
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                    start_new_session=True, close_fds=True, pass_fds=tuple(pass_fds),
                    preexec_fn=preexec,
                )
            except OSError as exc:
                if read_fd is not None:
                    os.close(read_fd)
                raise SpawnError(f"cannot execute {argv[0]!r}: {exc.strerror or exc}") from exc
            finally:
                if write_fd is not None:
                    os.close(write_fd)
            pidfd = os.pidfd_open(proc.pid)
            self._io.watch(proc, pidfd, read_fd, sink, on_exit)
        return Spawned(proc.pid, proc.pid)

    def run(self, argv: Sequence[str], *, timeout: float,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        """A short helper program (config parse, py-spy) with its output captured, waited for
        by the calling thread; the orphan sweep leaves it alone. Killed after `timeout`."""
        with self._io.spawn_lock:
            proc = subprocess.Popen(list(argv), env=None if env is None else dict(env),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, close_fds=True)
            self._io.helpers.add(proc.pid)
        try:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                err += f"\nkilled after {timeout:g}s".encode()
        finally:
            with self._io.spawn_lock:
                self._io.helpers.discard(proc.pid)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def become_subreaper(self) -> None:
        """Adopt orphaned grandchildren (as PID 1 does) and reap them. Main thread only:
        it installs the SIGCHLD handler and the signal wakeup fd."""
        PR_SET_CHILD_SUBREAPER = 36
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup byte is what matters
        self._io.reap_orphans_on(read_fd)

    @property
    def orphans_reaped(self) -> int:
        return self._io.orphans_reaped

    @staticmethod
    def signal_group(pgid: int, sig: int) -> bool:
        """Signal a whole process group; False when it is already empty."""
        try:
            os.killpg(pgid, sig)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:  # a member changed uid; the group still exists
            return True

    @staticmethod
    def group_alive(pgid: int) -> bool:
        """Whether a group still has a live (non-zombie) member.

        killpg(pgid, 0) alone also counts zombies, which wait for a reaper we do not control
        (init, or a subreaper above us); the /proc scan runs only when killpg says yes.
        """
        if not ProcessSeam.signal_group(pgid, 0):
            return False
        import psutil  # off the start-up path: this runs when services stop

        for proc in psutil.process_iter(["status"]):
            try:
                if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                    return True
            except (ProcessLookupError, psutil.Error):
                continue
        return False

    def close(self) -> None:
        self._io.stop()
