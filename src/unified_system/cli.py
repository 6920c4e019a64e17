"""Command line: `run` supervises in the foreground; the other commands talk to it."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from unified_system import plainargv

if TYPE_CHECKING:
    import argparse

    from unified_system.config.view import LoadedConfig

EXIT_OK, EXIT_FAIL, EXIT_CONFIG, EXIT_NOT_RUNNING = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    import argparse  # not for a plain `run` (_plain_run): argparse and gettext stay out of
    # the resident supervisor (0.43 MB, ~5 ms; bench/RESULTS.md "Footprint, third round")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS,
                        help="services.yaml (default: $UNIFIED_CONFIG, else ./services.yaml)")
    common.add_argument("--env", default=argparse.SUPPRESS,
                        help="environment overlay (default: $NODE_ENV when such an overlay exists)")
    parser = argparse.ArgumentParser(prog="unified-system", parents=[common],
                                     description="Supervise a dependency graph of services.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", parents=[common], help="supervise in the foreground (default)")
    run.add_argument("--only", help="comma-separated services to run (with their dependencies)")
    run.add_argument("--verbose", action="store_true",
                     help="echo every line of every service and build (default: warnings, errors "
                          "and a count of the rest; all of it is in logs/<service>.log)")
    sub.add_parser("check", parents=[common], help="validate the config and print the start order")
    sub.add_parser("schema", help="print the JSON Schema of services.yaml (docs/services.schema.json)")
    status = sub.add_parser("status", parents=[common], help="services of the running supervisor")
    status.add_argument("--json", action="store_true", help="print GET /api/services as JSON")
    for verb in ("start", "stop", "restart"):
        cmd = sub.add_parser(verb, parents=[common], help=f"{verb} one service")
        cmd.add_argument("name", help="service name")
    sub.add_parser("reload", parents=[common], help="re-read services.yaml and apply the difference")
    logs = sub.add_parser("logs", parents=[common], help="tail a service's log")
    logs.add_argument("name", help="service name")
    logs.add_argument("-n", "--lines", type=int, default=100, help="lines to show (default 100)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    top = sub.add_parser("top", parents=[common], help="terminal UI: live services, logs, events")
    top.add_argument("--url", help="control API URL (default: from the config's supervisor section)")
    top.add_argument("--key", help="API key (default: $SUPERVISOR_API_KEY, else the config's, else "
                                   "<state_dir>/api_key)")
    export = sub.add_parser("export", parents=[common],
                            help="write a systemd unit or Kubernetes manifests")
    export.add_argument("kind", choices=["systemd", "kubernetes"])
    export.add_argument("-o", "--output", help="directory (default: deploy/<kind>/ beside services.yaml)")
    export.add_argument("--image", help="container image for Kubernetes (default unified-system:latest)")
    return parser


# `run`'s options as argparse takes them: option -> (its dest, whether it takes a value,
# whether it is allowed before the `run` word too, as the common options are).
_RUN_OPTIONS = {"-c": ("config", True, True), "--config": ("config", True, True),
                "--env": ("env", True, True), "--only": ("only", True, False),
                "--verbose": ("verbose", False, False)}


def _plain_run(argv: Sequence[str]) -> dict[str, object] | None:
    """`run` (or no command) with only its plain options, parsed without argparse (issue 20:
    argparse and gettext stay out of the resident supervisor); None: argparse parses it."""
    return plainargv.parse(argv, "run", _RUN_OPTIONS, implied=True)


def main(argv: Sequence[str] | None = None) -> int:
    plain = _plain_run(sys.argv[1:] if argv is None else argv)
    if plain is not None:
        text = plainargv.text
        return cmd_run(text(plain, "config"), text(plain, "env"), text(plain, "only"),
                       plain.get("verbose") is True)
    args = _parser().parse_args(argv)
    command = args.command or "run"
    config = getattr(args, "config", None)
    env_name = getattr(args, "env", None)
    if command == "check":
        return cmd_check(config, env_name)
    if command == "schema":
        return cmd_schema()
    if command in CLIENT_COMMANDS:
        return cmd_client(command, args, config, env_name)
    if command == "top":
        return cmd_top(config, env_name, args.url, args.key)
    if command == "export":
        return cmd_export(args.kind, config, env_name, args.output, args.image)
    return cmd_run(config, env_name, getattr(args, "only", None),
                   getattr(args, "verbose", False))



def _load(config: str | None, env_name: str | None, supervisor_only: bool = False
          ) -> LoadedConfig | None:
    from unified_system.config import ConfigErrors, load_config

    try:
        return load_config(config, env_name=env_name, supervisor_only=supervisor_only)
    except ConfigErrors as exc:
        print(f"{len(exc.errors)} error(s) in the config:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return None
    except FileNotFoundError as exc:
        print(f"config not found: {exc.filename or exc}", file=sys.stderr)
        return None


CLIENT_COMMANDS = ("status", "start", "stop", "restart", "reload", "logs")


def cmd_client(command: str, args: argparse.Namespace, config: str | None,
               env_name: str | None) -> int:
    """The commands that talk to a running supervisor through its control API."""
    import os

    from unified_system import client as api
    from unified_system import runfile

    if command == "logs" and not 0 <= args.lines <= 10_000:
        print("-n must be between 0 and 10000", file=sys.stderr)
        return EXIT_FAIL
    # Only where the supervisor is and its key: the services are the server's to judge (a
    # reload's errors come back from it), and need variables this shell may not have. The
    # running supervisor's runtime file first (no YAML), then the quick read (no schema);
    # what that is unsure of goes through the full loader.
    found = runfile.find(os.path.abspath(config or os.environ.get("UNIFIED_CONFIG")
                                         or "services.yaml"), env_name)
    address = None
    if found is None:
        from unified_system.config.address import read_address  # PyYAML: only when needed
        address = read_address(config, env_name)
    if found is not None:
        conn = api.Client(found.host, found.port, found.api_key)
    elif address is not None:
        conn = api.Client(address.host, address.port, address.api_key)
    else:
        loaded = _load(config, env_name, supervisor_only=True)
        if loaded is None:
            if command == "reload":   # SPEC: reload exits 0 / 1; the running config is untouched
                print("reload refused: nothing changed", file=sys.stderr)
                return EXIT_FAIL
            return EXIT_CONFIG
        conn = api.Client.from_config(loaded)
    try:
        return api.run_command(conn, command, getattr(args, "name", ""),
                               getattr(args, "json", False), getattr(args, "lines", 100),
                               getattr(args, "follow", False))
    finally:
        conn.close()


def cmd_top(config: str | None, env_name: str | None, url: str | None, key: str | None) -> int:
    """The terminal UI. Textual is imported here only: never by the supervisor itself."""
    import os

    try:
        from unified_system.tui.app import Top
    except ImportError as exc:
        print(f"top needs Textual ({exc}): python -m pip install textual", file=sys.stderr)
        return EXIT_FAIL
    from unified_system.api.auth import read_key
    from unified_system.client import base_url
    from unified_system.tui.feed import Feed

    key = key or os.environ.get("SUPERVISOR_API_KEY") or None
    if url is None or key is None:
        loaded = _load(config, env_name, supervisor_only=True)
        if loaded is None:
            return EXIT_CONFIG
        cfg = loaded.config.supervisor
        url = url or base_url(cfg.host, cfg.port)
        key = key or cfg.api_key or read_key(cfg.state_dir)
    feed = Feed(url, key)
    try:
        Top(feed).run()
    finally:
        feed.close()
    return EXIT_OK


def cmd_export(kind: str, config: str | None, env_name: str | None, output: str | None,
               image: str | None) -> int:
    from pathlib import Path

    from unified_system.export import ExportError, run_export

    loaded = _load(config, env_name)
    if loaded is None:
        return EXIT_CONFIG
    try:
        paths = run_export(kind, loaded, Path(output) if output else None, image=image)
    except ExportError as exc:
        print(f"export {kind}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    for path in paths:
        print(path)
    return EXIT_OK


def cmd_schema() -> int:
    """The JSON Schema, generated from the models: what editors check services.yaml with."""
    from unified_system.config.jsonschema import dumps, services_schema

    sys.stdout.write(dumps(services_schema()))
    return EXIT_OK


def cmd_check(config: str | None, env_name: str | None) -> int:
    from unified_system.graph import describe_start_order

    loaded = _load(config, env_name)
    if loaded is None:
        return EXIT_CONFIG
    print(f"{loaded.path}: OK, {len(loaded.config.services)} services"
          + (f" (environment {loaded.env_name})" if loaded.env_name else ""))
    print(describe_start_order(loaded.config.services))
    if env_name is not None:
        return EXIT_OK
    # Without --env, every overlay is checked too: a bad one would surface only at deploy.
    failed = False
    for name in sorted(set(loaded.config.environments) - {loaded.env_name}):
        print(f"environment {name}: ", end="", file=sys.stderr, flush=True)
        if _load(config, name) is None:
            failed = True
        else:
            print("OK", file=sys.stderr)
    return EXIT_CONFIG if failed else EXIT_OK


def cmd_run(config: str | None, env_name: str | None, only: str | None,
            verbose: bool = False) -> int:
    from unified_system.config.apart import forked

    # Start-up allocates much and frees little; a full collection in the middle of it is a
    # 15 ms pause. The supervisor freezes what start-up made and resumes collection.
    gc.disable()
    # Validated in a child forked before any thread, while this process imports the
    # runtime; kept as plain records, so the supervisor never loads pydantic (config/view.py).
    loaded = forked(lambda: _checked_for_run(config, env_name, only), _import_runtime)
    if isinstance(loaded, int):
        return EXIT_CONFIG if loaded == EXIT_CONFIG else EXIT_FAIL
    from unified_system.core.supervisor import Supervisor
    from unified_system.runtime import AlreadyRunning, Runtime

    selected = _only(only)
    try:
        sup = Supervisor(loaded, only=selected,
                         effects=lambda link: Runtime(link, verbose=verbose))
        return sup.run()
    except AlreadyRunning as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG


def _only(only: str | None) -> list[str] | None:
    """--only a,b -> ["a", "b"]."""
    return [n.strip() for n in only.split(",") if n.strip()] if only else None


def _import_runtime(answered: Callable[[], bool]) -> None:
    """What the supervisor needs first; then, while the config child is still busy (it is
    the longer of the two), the modules opened after the first spawns."""
    import importlib

    from unified_system.proc.fdlimit import raise_nofile
    from unified_system.proc.malloc import limit_arenas

    # After the fork (ctypes and resource are the supervisor's alone: the config child,
    # the start's critical path, starts without them), still before any thread.
    limit_arenas()  # before any thread: each would get an arena that only grows (proc/malloc.py)
    raise_nofile()   # before any thread or service: every connection and spawn needs descriptors
    import unified_system.core.supervisor  # noqa: F401
    from unified_system.runtime import LATE_MODULES

    for module in LATE_MODULES:
        if answered():
            return
        importlib.import_module(module)


def _checked_for_run(config: str | None, env_name: str | None,
                     only: str | None) -> LoadedConfig | int:
    """The config `run` may start (else an exit code, the reasons printed): valid, the
    --only names known, and every `listen` port free."""
    from unified_system.config import busy_listen_ports

    loaded = _load(config, env_name)
    if loaded is None:
        return EXIT_CONFIG
    selected = _only(only)
    unknown = [n for n in selected or () if n not in loaded.config.services]
    if unknown:
        print(f"--only: unknown service(s): {', '.join(unknown)}", file=sys.stderr)
        return EXIT_CONFIG
    # A SIGKILLed predecessor's services may still hold the ports: stop them first.
    _stop_leftovers(loaded)
    busy = busy_listen_ports(loaded)
    if busy:
        for error in busy:
            print(f"  {error}", file=sys.stderr)
        return EXIT_CONFIG
    return loaded


class _Said:
    """A logger's methods for the config child, which has no logging set up: to stderr."""

    def _say(self, level: str, event: str, **fields: object) -> None:
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        print(f"{level}: {event}" + (f" ({extra})" if extra else ""), file=sys.stderr, flush=True)

    def warning(self, event: str, **fields: object) -> None:
        self._say("warning", event, **fields)

    def error(self, event: str, **fields: object) -> None:
        self._say("error", event, **fields)


def _stop_leftovers(loaded: LoadedConfig) -> None:
    from pathlib import Path

    from unified_system.proc.leftovers import stop_left_before_start

    cfg = loaded.config
    stop_left_before_start(Path(cfg.supervisor.state_dir),
                           {name: spec.stop.timeout for name, spec in cfg.services.items()}, _Said())


if __name__ == "__main__":
    raise SystemExit(main())
