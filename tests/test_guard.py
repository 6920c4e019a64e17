"""The guard itself, both forms (proc/guard.sh under /bin/sh, proc/guard.py where there is no
shell), driven over its pipe as the seam drives it: at end of file every listed group gets the
signal, a group that ignores it gets SIGKILL after its own stop timeout, a group seen empty
(`-pgid`) is left alone, and a group of zombies nobody reaps does not hold the guard up."""

import os
import signal
import subprocess
import sys

import pytest

from harness import CHILDREN, wait_until
from unified_system.proc.lifeline import guard_argv

PY = sys.executable


def spawn(*argv: str) -> subprocess.Popen:
    # Each leads its own group, as a service does; stdout piped to wait for "up".
    return subprocess.Popen(list(argv), start_new_session=True, stdout=subprocess.PIPE)


@pytest.mark.parametrize("shell", ["/bin/sh", "/nonexistent/sh"], ids=["shell", "python"])
def test_end_of_file_signals_every_listed_group_then_kills_the_stubborn(shell):
    argv = guard_argv(signal.SIGTERM, shell=shell)
    assert argv[1].endswith("guard.sh" if shell == "/bin/sh" else "-I")
    plain = spawn(PY, str(CHILDREN / "sleeper.py"))
    stubborn = spawn(PY, str(CHILDREN / "stubborn.py"))
    removed = spawn(PY, str(CHILDREN / "sleeper.py"))
    zombie = spawn(PY, str(CHILDREN / "sleeper.py"))   # not reaped until the guard is done
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    guard = subprocess.Popen(argv, stdin=read_fd)
    os.close(read_fd)
    try:
        assert stubborn.stdout.readline() == b"stubborn up\n"   # its SIG_IGN is in place
        lines = (f"+{plain.pid} 30000\n+{stubborn.pid} 1500\n+{removed.pid} 30000\n"
                 f"-{removed.pid}\n+{zombie.pid} 60000\n")
        os.write(write_fd, lines.encode())
        os.close(write_fd)
        write_fd = -1
        assert plain.wait(20) in (0, -signal.SIGTERM)   # sleeper.py exits 0 on SIGTERM
        assert stubborn.wait(20) == -signal.SIGKILL          # after its 1.5 s, not 30 s
        wait_until(lambda: _state(zombie.pid) == "Z", 20, "a zombie")   # poll() would reap it
        assert guard.wait(20) == 0   # the zombie's 60 s did not hold it: its group is empty
        assert removed.poll() is None   # seen empty earlier, so never signalled
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        for proc in (plain, stubborn, removed, zombie, guard):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout:
                proc.stdout.close()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]
