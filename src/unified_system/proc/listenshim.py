"""Socket activation shim, run as `python -S -c <this file's text> FDS NAMES -- EXE ARGV...`.

LISTEN_PID must be the pid of the program that uses the sockets, which only exists after
fork; this shim runs in that process, moves the inherited sockets to fd 3.., sets the
LISTEN_* variables and execs the real program (same pid). No shell, no site imports.
"""
import fcntl
import os
import sys


def main(argv: list[str]) -> None:
    split = argv.index("--")
    fds = [int(fd) for fd in argv[0].split(",")]
    names = argv[1]
    exe, args = argv[split + 1], argv[split + 2:]
    # Move every socket out of the way first: a source fd may sit where another must go.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds]
    for target, fd in enumerate(high, start=3):
        os.dup2(fd, target, inheritable=True)
    for fd in set(fds) - set(range(3, 3 + len(fds))):  # the program gets fd 3.. only
        os.close(fd)
    env = dict(os.environ)
    env.update(LISTEN_FDS=str(len(fds)), LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES=names)
    os.execve(exe, args, env)


main(sys.argv[1:])
