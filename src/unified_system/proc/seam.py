"""The one OS seam: spawning, signalling and reaping all go through ProcessSeam."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_system.core import ports
from unified_system.core.policy import ExitStatus
from unified_system.proc.iothread import IOThread, Sink
from unified_system.proc.lifeline import Lifeline


@dataclass(frozen=True)
class Spawned:
    pid: int
    pgid: int


_libc = ctypes.CDLL(None, use_errno=True)


def _ignore(*_: object) -> None:
    """A Python-level handler, so that the C-level one writes the wakeup byte."""


# Defined with the core's port: the core catches it without importing proc/.
SpawnError = ports.SpawnError


class ProcessSeam:
    def __init__(self, parent_death_signal: int | None = None) -> None:
        """With a `parent_death_signal`, a guard process (proc/lifeline.py) is told every
        process group and signals those still alive if this process dies. Construct on the
        main thread: the guard's parent-death signal follows the thread that started it."""
        self._lifeline = Lifeline.start(parent_death_signal) if parent_death_signal else None
        # One /dev/null for every child's stdin: Popen's DEVNULL opens it anew per spawn.
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self._wakeup: tuple[int, int] | None = None
        self._io = IOThread()
        self._io.start()

    def spawn(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str],
              on_exit: Callable[[ExitStatus], None], sink: Sink | None = None,
              executable: str | None = None, pass_fds: Sequence[int] = (),
              kill_after: float | None = None) -> Spawned:
        """Start argv (never through a shell) as the leader of a new session and group.
        `kill_after`: its stop timeout, for the guard should this process die."""
        read_fd = write_fd = None
        if sink is not None:
            read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        out = write_fd if write_fd is not None else self._devnull
        with self._io.spawn_lock:
            try:
                proc = subprocess.Popen(
                    list(argv), executable=executable, cwd=cwd, env=dict(env),
                    stdin=self._devnull, stdout=out, stderr=out,
                    start_new_session=True, close_fds=True, pass_fds=tuple(pass_fds),
                )
            except OSError as exc:
                if read_fd is not None:
                    os.close(read_fd)
                raise SpawnError(f"cannot execute {argv[0]!r}: {exc.strerror or exc}") from exc
            finally:
                if write_fd is not None:
                    os.close(write_fd)
            if self._lifeline is not None:
                self._lifeline.add(proc.pid, kill_after)
                on_exit = self._forget_when_empty(proc.pid, on_exit)
            try:
                pidfd = os.pidfd_open(proc.pid)
                try:
                    self._io.watch(proc, pidfd, read_fd, sink, on_exit)
                except OSError:
                    os.close(pidfd)
                    raise
            except OSError as exc:  # EMFILE: a child nobody watches must not run on
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                self._forgotten(proc.pid)
                if read_fd is not None:
                    os.close(read_fd)
                raise SpawnError(f"cannot watch {argv[0]!r}: {exc.strerror or exc}") from exc
        return Spawned(proc.pid, proc.pid)

    def _forget_when_empty(self, pgid: int, on_exit: Callable[[ExitStatus], None]
                           ) -> Callable[[ExitStatus], None]:
        def exited(status: ExitStatus) -> None:
            if not self.signal_group(pgid, 0):  # members left: group_alive() forgets it later
                self._forgotten(pgid)
            on_exit(status)

        return exited

    def _forgotten(self, pgid: int) -> None:
        if self._lifeline is not None:
            self._lifeline.remove(pgid)

    def run(self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
            cwd: str | None = None) -> subprocess.CompletedProcess[bytes]:
        """A short helper program (config parse, py-spy) with its output captured, waited for
        by the calling thread; the orphan sweep leaves it alone. Killed after `timeout`."""
        with self._io.spawn_lock:
            proc = subprocess.Popen(list(argv), env=None if env is None else dict(env), cwd=cwd,
                                    stdin=self._devnull, stdout=subprocess.PIPE,
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

    def watch_signals(self, signums: Sequence[int], on_signal: Callable[[int], None]
                      ) -> dict[int, Any]:
        """Each of `signums` reaches `on_signal`, called by the I/O thread. Main thread only;
        returns the handlers it replaced. A Python-level handler would run only when the main
        thread next executes bytecode, and the owner may be asleep on its queue while the
        kernel hands the signal to another thread; the wakeup fd's byte is written by
        whichever thread catches it, and wakes epoll."""
        self._wakeup_fd()
        self._io.on_signal = on_signal
        return {signum: signal.signal(signum, _ignore) for signum in signums}

    def become_subreaper(self) -> None:
        """Adopt orphaned grandchildren (as PID 1 does) and reap them. Main thread only:
        it installs the SIGCHLD handler and the signal wakeup fd."""
        PR_SET_CHILD_SUBREAPER = 36
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self._wakeup_fd()
        self._io.reap_orphans = True
        signal.signal(signal.SIGCHLD, _ignore)  # the wakeup byte is what matters

    def _wakeup_fd(self) -> None:
        if self._wakeup is None:
            read_fd, write_fd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
            self._wakeup = (read_fd, write_fd)
            self._io.listen_signals(read_fd)

    def release_sink(self, sink: Sink, then: Callable[[], None]) -> None:
        """Close the pipes still feeding `sink`, then `then()`, both on the I/O thread."""
        self._io.release_sink(sink, then)

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

    def group_alive(self, pgid: int) -> bool:
        """Whether a group still has a live (non-zombie) member.

        killpg(pgid, 0) alone also counts zombies, which wait for a reaper we do not control
        (init, or a subreaper above us); the /proc scan runs only when killpg says yes.
        """
        if self.signal_group(pgid, 0):
            import psutil  # off the start-up path: this runs when services stop

            for proc in psutil.process_iter(["status"]):
                try:
                    if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                        return True
                except (ProcessLookupError, psutil.Error):
                    continue
        self._forgotten(pgid)
        return False

    def close(self) -> None:
        """Stop the I/O thread and let the guard go. A group still listed then (none after
        a clean shutdown) gets the parent-death signal, as PR_SET_PDEATHSIG would send."""
        self._io.stop()
        if self._wakeup is not None:
            signal.set_wakeup_fd(-1)
            for fd in self._wakeup:
                os.close(fd)
            self._wakeup = None
        if self._lifeline is not None:
            self._lifeline.close()
        if self._devnull >= 0:
            os.close(self._devnull)
            self._devnull = -1
