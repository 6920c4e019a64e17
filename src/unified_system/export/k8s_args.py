"""Container arguments that cannot work in a pod, rewritten or refused (issue 15 item 4).

Under the supervisor a service with `listen` gets its sockets as fd 3, 4, ... (LISTEN_FDS);
a pod has no such fds, so `uvicorn --fd 3` dies with ENOTSOCK and `gunicorn -b fd://3` with
EBADF. A bind to 127.0.0.1 starts, but nothing outside the pod (its Service, the kubelet's
probes) can reach it. Both are rewritten to bind 0.0.0.0 on the same port; what cannot be
rewritten without guessing is refused, naming the argument.
"""

from __future__ import annotations

import re

from unified_system.config.schema import Service
from unified_system.export.common import ExportError

ANY = "0.0.0.0"
_FD_URL = re.compile(r"fd://(\d+)")
_LOOPBACK_BIND = re.compile(r"^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$")
_BIND_FLAGS = frozenset({"-b", "--bind", "--host"})
#: programs whose `--fd N` we know how to replace, and with what flags (host, port)
_FD_PROGRAMS = {"uvicorn": ("--host", "--port"), "daphne": ("--bind", "--port")}


def _program(argv: list[str]) -> str:
    """The server program: argv[0]'s name, or the module of `python -m NAME`."""
    name = argv[0].rsplit("/", 1)[-1] if argv else ""
    if name.startswith("python") and "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return name


def _fd_port(svc: str, spec: Service, fd: int, arg: str) -> int:
    index = fd - 3
    if not 0 <= index < len(spec.listen):
        raise ExportError(f"service {svc!r}: argument {arg!r} names fd {fd}, which is not one of "
                          f"its `listen` sockets (fd 3..{2 + len(spec.listen)})")
    return spec.listen[index].port


def _without_fd_urls(svc: str, spec: Service, arg: str) -> str:
    def bind(match: re.Match[str]) -> str:
        return f"{ANY}:{_fd_port(svc, spec, int(match.group(1)), arg)}"
    return _FD_URL.sub(bind, arg)


def rewrite_host_env(name: str, value: str) -> str:
    """`HOST=127.0.0.1` (the convention of Node servers, Vite and many others) binds 0.0.0.0
    in a pod, for the same reason as a loopback `--bind`."""
    return ANY if name == "HOST" and _LOOPBACK_BIND.match(value) else value


def rewrite_args(svc: str, spec: Service, argv: list[str]) -> tuple[list[str], list[str]]:
    """(argv for the container, notes). Raises ExportError for what cannot work in a pod."""
    out: list[str] = []
    rewritten: list[str] = []
    program = _program(argv)
    i = 0
    while i < len(argv):
        arg = argv[i]
        flag, eq, glued = arg.partition("=")
        # `--fd N` / `--fd=N`: an inherited socket, replaced by the program's own bind flags
        if flag == "--fd":
            value = glued if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            flags = _FD_PROGRAMS.get(program)
            if not value.isdigit() or flags is None:
                raise ExportError(
                    f"service {svc!r}: argument `--fd {value}` needs the socket the supervisor "
                    f"holds (LISTEN_FDS), which a pod does not have, and {program!r} is not a "
                    f"program whose bind flags are known; bind the port in the command instead")
            port = _fd_port(svc, spec, int(value), arg)
            out += [flags[0], ANY, flags[1], str(port)]
            rewritten.append(f"--fd {value} -> {flags[0]} {ANY} {flags[1]} {port}")
            i += 1 if eq else 2
            continue
        # `fd://N` anywhere (gunicorn/hypercorn `-b fd://3`): the same port on every address
        if _FD_URL.search(arg):
            new = _without_fd_urls(svc, spec, arg)
            rewritten.append(f"{arg} -> {new}")
            out.append(new)
            i += 1
            continue
        # `-b 127.0.0.1:8000`, `--bind=localhost:8000`, `--host 127.0.0.1`: reachable only
        # from inside the pod
        if flag in _BIND_FLAGS:
            value = glued if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            match = _LOOPBACK_BIND.match(value)
            if match:
                new = ANY + (match.group(2) or "")
                rewritten.append(f"{flag} {value} -> {flag} {new}")
                out += [f"{flag}={new}"] if eq else [flag, new]
                i += 1 if eq else 2
                continue
        out.append(arg)
        i += 1
    notes = [f"args rewritten for a pod: {'; '.join(rewritten)}"] if rewritten else []
    return out, notes
