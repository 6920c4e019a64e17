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


def parse(argv: Sequence[str]) -> Args | None:
    """The command line, if it is a plain client command; None sends it to argparse."""
    if not argv or argv[0] not in COMMANDS:
        return None
    args = Args(argv[0])
    rest = list(argv[1:])
    names: list[str] = []
    while rest:
        word = rest.pop(0)
        option, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if option in ("-c", "--config", "--env") or (args.command == "logs"
                                                      and option in ("-n", "--lines")):
            if not eq:
                if not rest or rest[0].startswith("-"):
                    return None
                value = rest.pop(0)
            if option in ("-c", "--config"):
                args.config = value
            elif option == "--env":
                args.env = value
            elif not value.isascii() or not value.isdigit():
                return None   # argparse's int() and its message
            else:
                args.lines = int(value)
        elif eq:
            return None
        elif word == "--json" and args.command == "status":
            args.json = True
        elif word in ("-f", "--follow") and args.command == "logs":
            args.follow = True
        elif word.startswith("-"):
            return None   # help, an abbreviation, joined short options, `--`: argparse's
        else:
            names.append(word)
    if len(names) != (1 if args.command in NAMED else 0):
        return None
    args.name = names[0] if names else None
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
