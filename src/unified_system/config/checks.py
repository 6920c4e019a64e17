"""Semantic checks run after the schema: dependencies, executables, paths, listen claims.

Each check yields (key path, message); the loader turns paths into file:line:col.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from unified_system.config.envfile import EnvFileError, read_env_file
from unified_system.config.errors import ConfigError, Loc, dotted, hint
from unified_system.graph import find_cycles

if TYPE_CHECKING:
    # Names for annotations only: a reload calls not_held() in the resident supervisor,
    # which must never import pydantic (tests/test_footprint.py).
    from unified_system.config.schema import Listen, Service, SupervisorConfig

Issue = tuple[Loc, str]
_WILDCARDS = {"", "0.0.0.0", "::", "*"}


# --- executables ------------------------------------------------------------------------

def child_path(service: Service, environ: Mapping[str, str]) -> str:
    """The PATH the child will have: env > env_file > inherited (if allowed) > os.defpath."""
    if "PATH" in service.env:
        return service.env["PATH"]
    for env_file in reversed(service.env_file):  # a later file wins, as at spawn
        try:
            value = read_env_file(env_file).get("PATH") if env_file.is_file() else None
        except EnvFileError:  # reported on its own
            continue
        if value is not None:
            return value
    if "PATH" in service.inherit_env and "PATH" in environ:
        return environ["PATH"]
    return os.defpath


def _which(program: str, search_path: str, cwd: str) -> str | None:
    """What execvp would run; a '/' in the name means relative to the child's cwd."""
    if "/" in program:
        candidates = [os.path.join(cwd, program)]
    else:  # an empty or relative PATH entry is relative to the child's cwd, as for execvp
        candidates = [os.path.join(cwd, d, program) for d in search_path.split(os.pathsep)]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return None


def resolve_executable(service: Service, environ: Mapping[str, str],
                       argv: tuple[str, ...] | None = None) -> str | None:
    """Absolute path of `argv[0]` (default: the service's command) as the child would find it."""
    program = (argv or service.command)[0]
    return _which(program, child_path(service, environ), str(service.cwd))


def _executables(name: str, svc: Service, environ: Mapping[str, str]) -> Iterator[Issue]:
    here: Loc = ("services", name)
    argvs: list[tuple[Loc, tuple[str, ...]]] = [(here + ("command", 0), svc.command)]
    if svc.build:
        argvs.append((here + ("build", "command", 0), svc.build.command))
    for kind in ("readiness", "startup", "liveness"):
        probe = getattr(svc, kind)
        if probe is not None and probe.exec is not None:
            argvs.append((here + (kind, "exec", "command", 0), probe.exec.command))
    search_path = child_path(svc, environ)
    for loc, argv in argvs:
        if resolve_executable(svc, environ, argv) is not None:
            continue
        program = argv[0]
        if "/" in program:
            target = os.path.normpath(os.path.join(svc.cwd, program))
            why = "is not executable" if os.path.isfile(target) else "does not exist"
            yield loc, f"executable {program!r} {why} ({target})"
        else:
            yield loc, f"executable {program!r} not found on the child's PATH ({search_path})"


# --- the checks -------------------------------------------------------------------------

def semantic_issues(services: Mapping[str, Service], known: Collection[str],
                    environ: Mapping[str, str],
                    supervisor: SupervisorConfig | None = None) -> list[Issue]:
    """Every semantic problem of the validated `services`; `known` is every name in the file
    (a dependency on a service that failed validation is not reported as unknown)."""
    issues: list[Issue] = []
    for name, svc in services.items():
        here: Loc = ("services", name)
        for dep in svc.depends_on:
            if dep not in known:
                issues.append((here + ("depends_on", dep),
                               f"unknown dependency '{dep}'{hint(dep, known)}"))
            elif svc.enabled and dep in services and not services[dep].enabled:
                issues.append((here + ("depends_on", dep), f"depends on disabled service '{dep}'"))
        if not svc.enabled:  # a disabled service is never spawned: its paths may be absent
            continue
        if not svc.cwd.is_dir():
            why = "is not a directory" if svc.cwd.exists() else "does not exist"
            issues.append((here + ("cwd",), f"cwd {str(svc.cwd)!r} {why}"))
        else:
            issues.extend(_executables(name, svc, environ))
        for i, env_file in enumerate(svc.env_file):
            if not env_file.is_file():
                issues.append((here + ("env_file", i), f"env_file {str(env_file)!r} does not exist"))
                continue
            try:
                read_env_file(env_file)
            except EnvFileError as exc:
                issues.append((here + ("env_file", i), str(exc)))
    deps = {n: [d for d in s.depends_on if d in services] for n, s in services.items()}
    for cycle in find_cycles(deps):
        path = " -> ".join(cycle + [cycle[0]])
        issues.append((("services", cycle[0], "depends_on", cycle[1 % len(cycle)]),
                       f"dependency cycle: {path}"))
    issues.extend(_listen_conflicts(services, supervisor))
    return issues


def _claims(services: Mapping[str, Service]) -> Iterator[tuple[Loc, Listen]]:
    for name, svc in services.items():
        if svc.enabled:
            for i, listen in enumerate(svc.listen):
                yield ("services", name, "listen", i), listen


def _overlap(a: str, b: str) -> bool:
    return a == b or a in _WILDCARDS or b in _WILDCARDS


def _listen_conflicts(services: Mapping[str, Service],
                      supervisor: SupervisorConfig | None) -> Iterator[Issue]:
    taken: list[tuple[str, str, int]] = []  # (owner, host, port)
    if supervisor is not None:
        taken.append(("the control API (supervisor.port)", supervisor.host, supervisor.port))
    for loc, listen in _claims(services):
        for owner, host, port in taken:
            if port == listen.port and _overlap(host, listen.host):
                yield (loc + ("port",),
                       f"port {listen.port} on {listen.host} is already claimed by {owner}")
                break
        else:
            taken.append((dotted(loc), listen.host, listen.port))


# --- ports bound by other programs (run by `run`, not by load_config) --------------------

def _bind_error(host: str, port: int) -> OSError | None:
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return exc
    return None


def _holder(port: int) -> str:
    import psutil  # only once a port is found busy

    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    return ""
                try:
                    return f" by pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                except psutil.Error:
                    return f" by pid {conn.pid}"
    except (psutil.Error, OSError):  # seeing other users' sockets may need privileges
        pass
    return ""


def not_held(busy: Iterable[ConfigError], config: Any, held: Collection[tuple[str, int]]
             ) -> list[ConfigError]:
    """The busy-port errors of `config` (from busy_listen_ports) but those for a (service,
    port) in `held`: a port the running supervisor holds for that same service is its own."""
    out = []
    for error in busy:
        _, name, _, index, *_ = error.loc  # services.<name>.listen[<index>].port
        if (name, config.services[name].listen[index].port) not in held:
            out.append(error)
    return out


def busy_listen_ports(config: Any) -> list[ConfigError]:
    """Try to bind every `listen` of the enabled services; one error per unbindable port.
    Takes a LoadedConfig (errors then carry file:line) or a bare Config."""
    source = getattr(config, "source", None)
    file = str(getattr(config, "path", ""))
    services = getattr(config, "config", config).services
    errors: list[ConfigError] = []
    seen: set[tuple[str, int]] = set()
    for loc, listen in _claims(services):
        if (listen.host, listen.port) in seen:
            continue
        seen.add((listen.host, listen.port))
        exc = _bind_error(listen.host, listen.port)
        if exc is None:
            continue
        if exc.errno == errno.EADDRINUSE:
            message = f"port {listen.port} on {listen.host} is in use{_holder(listen.port)}"
        else:
            message = f"cannot bind {listen.host}:{listen.port}: {exc.strerror or exc}"
        port_loc = loc + ("port",)
        line, col = source.locate(port_loc)[1] if source is not None else (0, 0)
        errors.append(ConfigError(file, line, col, dotted(port_loc), message, port_loc))
    return errors
