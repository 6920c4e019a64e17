"""`export systemd`: one unit that runs the supervisor under systemd (SPEC §1, §5).

The supervisor is the unit's main process: Type=notify with a watchdog (it sends READY=1
and WATCHDOG=1 itself), KillMode=mixed so SIGTERM reaches only the supervisor, which
stops its children in dependency order, and SIGKILL reaches whatever is left after
TimeoutStopSec. Pure: LoadedConfig in, unit text out.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path

import unified_system
from unified_system.config.loader import LoadedConfig
from unified_system.export.common import project_name

UNIT_NAME = "unified-system.service"
WATCHDOG_SEC = 30
STOP_MARGIN_SEC = 15  # the supervisor's own bookkeeping after the children's budget
START_TIMEOUT_SEC = 300  # a first start may run build steps (npm ci, vite build)
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _escape(value: str) -> str:
    """'%' starts a specifier in every unit setting."""
    return value.replace("%", "%%")


def _quote(arg: str, exec_line: bool = False) -> str:
    """One word of a unit setting; Exec lines also expand '$', so it is doubled there."""
    arg = _escape(arg)
    if exec_line:
        arg = arg.replace("$", "$$")
    if arg and not any(c.isspace() or c in "\"'\\;" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def entry_argv(loaded: LoadedConfig, python: str) -> list[str]:
    """The interpreter and the start script: the project's own start_system.py, else the
    one of this package's checkout, else `-m unified_system` from the installed package."""
    checkout = Path(unified_system.__file__).resolve().parents[2]
    for candidate in (loaded.base_dir / "start_system.py", checkout / "start_system.py"):
        if candidate.is_file():
            return [python, str(candidate.resolve())]
    return [python, "-m", "unified_system"]


def search_path(loaded: LoadedConfig, python: str) -> list[str]:
    """PATH for the unit: systemd's default PATH would make `python` in a service's command
    some other interpreter (or none), so the directories where the commands resolve today
    come first, starting with the interpreter's own."""
    found = [os.path.dirname(python)]
    current = loaded.environ.get("PATH", os.defpath)
    for spec in loaded.config.enabled().values():
        argv0s = [spec.command[0]] + ([spec.build.command[0]] if spec.build else [])
        argv0s += [p.exec.command[0] for p in (spec.readiness, spec.startup, spec.liveness)
                   if p is not None and p.exec is not None]
        for argv0 in argv0s:
            where = argv0 if "/" in argv0 else shutil.which(argv0, path=current)
            if where:
                found.append(os.path.dirname(os.path.abspath(where)))
    return list(dict.fromkeys(found + list(SYSTEM_PATH)))


def writable_paths(loaded: LoadedConfig) -> list[str]:
    """What ProtectSystem=strict must leave writable: the project (state_dir, the services'
    ./data fallbacks, build steps writing node_modules and frontend/dist) and anything the
    config places outside it."""
    base = loaded.base_dir.resolve()
    paths = [base, Path(loaded.config.supervisor.state_dir)]
    paths += [Path(spec.cwd) for spec in loaded.config.enabled().values()]
    kept: list[Path] = []
    for path in paths:
        path = path.resolve()
        if not any(path == k or k in path.parents for k in kept):
            kept.append(path)
    return [str(p) for p in kept]


PRIVATE_TMP_DIRS = (Path("/tmp"), Path("/var/tmp"))


def hidden_by_private_tmp(loaded: LoadedConfig, python: str) -> list[str]:
    """Paths the unit needs that lie under /tmp or /var/tmp. PrivateTmp=yes mounts an empty
    /tmp and /var/tmp for the unit, so the supervisor would find no project, interpreter,
    state_dir or working directory there, and fail at start."""
    sup = loaded.config.supervisor
    needed = [loaded.base_dir, loaded.path, Path(sup.state_dir), Path(python),
              *(Path(a) for a in entry_argv(loaded, python)[1:2]),
              *(Path(spec.cwd) for spec in loaded.config.enabled().values()),
              *(Path(f) for spec in loaded.config.enabled().values() for f in spec.env_file),
              *(Path(d) for d in search_path(loaded, python) if d not in SYSTEM_PATH)]
    hidden: list[str] = []
    for path in needed:
        forms = {Path(os.path.abspath(path)), Path(path).resolve()}
        if any(d == f or d in f.parents for d in PRIVATE_TMP_DIRS for f in forms):
            hidden.append(str(path))
    return list(dict.fromkeys(hidden))


def render_unit(loaded: LoadedConfig, python: str | None = None,
                watchdog_sec: int = WATCHDOG_SEC) -> str:
    """The unit file's text."""
    python = os.path.abspath(python or sys.executable)
    argv = entry_argv(loaded, python) + ["run", "-c", str(loaded.path)]
    if loaded.env_name:
        argv += ["--env", loaded.env_name]
    sup = loaded.config.supervisor
    stop_sec = math.ceil(sup.shutdown_timeout) + STOP_MARGIN_SEC
    base = str(loaded.base_dir.resolve())
    rw = " ".join(_quote(p) for p in writable_paths(loaded))
    path_env = _quote("PATH=" + ":".join(search_path(loaded, python)))
    hidden = hidden_by_private_tmp(loaded, python)
    private_tmp = ["PrivateTmp=yes"] if not hidden else [
        "# not PrivateTmp=yes: the unit's own /tmp and /var/tmp would be empty, and these would",
        "# be missing: " + _escape(", ".join(hidden[:4])) + (" ..." if len(hidden) > 4 else ""),
        "# (move the project out of /tmp to get PrivateTmp=yes back)",
        "PrivateTmp=no"]
    lines = [
        "# Written by `unified-system export systemd`. Install:",
        f"#   sudo cp {UNIT_NAME} /etc/systemd/system/ && sudo systemctl daemon-reload",
        f"#   sudo systemctl enable --now {UNIT_NAME.removesuffix('.service')}",
        "[Unit]",
        f"Description=unified-system supervisor ({_escape(project_name(loaded.base_dir))})",
        "After=network-online.target",
        "Wants=network-online.target",
        "# more than 5 failed starts in 10 minutes: stay failed until an operator looks",
        "StartLimitIntervalSec=600",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=notify",
        "# only the supervisor itself may send READY=1 / WATCHDOG=1 for the unit",
        "NotifyAccess=main",
        f"WatchdogSec={watchdog_sec}s",
        "ExecStart=" + " ".join(_quote(a, exec_line=True) for a in argv),
        "# SIGHUP makes the supervisor re-read services.yaml and apply the difference",
        "ExecReload=/bin/kill -HUP $MAINPID",
        f"WorkingDirectory={_escape(base)}",
        f"EnvironmentFile=-{_escape(base)}/.env",
        f"Environment={path_env}",
        "Environment=PYTHONUNBUFFERED=1",
        "Restart=on-failure",
        "RestartSec=5s",
        "# SIGTERM to the supervisor only: it stops the services in dependency order;",
        "# SIGKILL to every process left in the cgroup after TimeoutStopSec",
        "KillMode=mixed",
        f"TimeoutStopSec={stop_sec}s",
        f"TimeoutStartSec={START_TIMEOUT_SEC}s",
        "# Run as an unprivileged account (it must own the paths in ReadWritePaths):",
        "#User=unified",
        "#Group=unified",
        "NoNewPrivileges=yes",
        *private_tmp,
        "UMask=0027",
        "# kernel and host settings no service of a process supervisor needs to change",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictRealtime=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "# AF_UNIX: the notify socket; AF_NETLINK: interface and process queries (psutil)",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "# no MemoryDenyWriteExecute=: Node's JIT needs writable+executable memory",
        "ProtectSystem=strict",
        "# the project (state_dir, checkpoints, ./data, build outputs) and the npm/pip caches",
        f"ReadWritePaths={rw} -%h/.npm -%h/.cache",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"
