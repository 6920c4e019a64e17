"""The quick path of a client command: `status`, `start|stop|restart NAME`, `reload`,
`logs NAME [-n N] [-f]`, taken before argparse, the dependency check and the config.

A plain command line (no abbreviation, no help, nothing odd) of a client command, against a
supervisor whose runtime file (runfile.py) is present and current, runs here with the
standard library only. Anything else returns None and start_system.py goes the full way
(argparse, whose messages stay the only error messages; then read_address, then the loader):
the quick path never answers differently, only sooner.
"""

from __future__ import annotations

import os

from unified_system import plainargv

TYPE_CHECKING = False   # typing costs a client ~15 ms to import; mypy knows this name
if TYPE_CHECKING:
    from collections.abc import Sequence

NAMED = ("start", "stop", "restart", "logs")   # the commands that take a service NAME
COMMANDS = ("status", "reload", *NAMED)


class Args:
    """What argparse would have given cli.cmd_client for the same command line."""

    __slots__ = ("command", "config", "env", "name", "json", "lines", "follow")

    def __init__(self, command: str) -> None:
        self.command = command
        self.config: str | None = None
        self.env: str | None = None
        self.name: str | None = None
        self.json = False
        self.lines = 100
        self.follow = False


# Each command's options (plainargv.Option): after the command word only, where argparse's
# subparsers take them.
_COMMON = {"-c": ("config", True, False), "--config": ("config", True, False),
           "--env": ("env", True, False)}
_OPTIONS = {
    "status": {**_COMMON, "--json": ("json", False, False)},
    "logs": {**_COMMON, "-n": ("lines", True, False), "--lines": ("lines", True, False),
             "-f": ("follow", False, False), "--follow": ("follow", False, False)},
}


def parse(argv: Sequence[str]) -> Args | None:
    """The command line, if it is a plain client command; None sends it to argparse."""
    if not argv or argv[0] not in COMMANDS:
        return None
    command = argv[0]
    found = plainargv.parse(argv, command, _OPTIONS.get(command, _COMMON),
                            names=1 if command in NAMED else 0)
    if found is None:
        return None
    args = Args(command)
    args.config, args.env = plainargv.text(found, "config"), plainargv.text(found, "env")
    args.json, args.follow = found.get("json") is True, found.get("follow") is True
    lines = found.get("lines")
    if isinstance(lines, str):
        if not (lines.isascii() and lines.isdigit()):
            return None   # argparse's int() and its message
        args.lines = int(lines)
    names = found["names"]
    args.name = names[0] if isinstance(names, list) and names else None
    return args



def main(argv: Sequence[str]) -> int | None:
    """The exit code, or None: not handled here (the caller takes the full way)."""
    args = parse(argv)
    if args is None or (args.command == "logs" and not 0 <= args.lines <= 10_000):
        return None
    from unified_system import runfile

    config = os.path.abspath(args.config or os.environ.get("UNIFIED_CONFIG") or "services.yaml")
    found = runfile.find(config, args.env)
    if found is None:
        return None
    from unified_system import client

    conn = client.Client(found.host, found.port, found.api_key)
    try:
        return client.run_command(conn, args.command, args.name or "", args.json, args.lines,
                                  args.follow)
    finally:
        conn.close()
