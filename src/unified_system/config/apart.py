"""Validation in a short-lived process, so the supervisor that runs for weeks holds only
the config's records (config/view.py) and never pydantic.

At start-up `run` forks before any thread exists: the child validates while the parent
imports the runtime, which overlaps the two on a 2-core machine. A reload happens once
threads run, when fork is unsafe, so it runs `python -m unified_system.config.apart`.
Either way the answer comes back in config/wire.py's marshal form (pickle would stay
resident for it): between two copies of this program, trusted.
"""

from __future__ import annotations

import os
import select
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from unified_system.config import wire
from unified_system.config.errors import ConfigError, ConfigErrors
from unified_system.config.view import LoadedConfig


def forked(load: Callable[[], LoadedConfig | int],
           meanwhile: Callable[[Callable[[], bool]], None]) -> LoadedConfig | int:
    """`load()` in a forked child (its config as records, or an exit code after it printed
    why); `meanwhile(answered)` in this process as it runs, where `answered()` says whether
    the child is done. Call before any thread is started."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        code = 1
        try:
            result = load()
            if isinstance(result, int):
                code = result
            else:
                with os.fdopen(write_fd, "wb") as out:
                    out.write(wire.dumps(detached(result)))
                code = 0
        except BaseException:  # a bug, or Ctrl-C while loading: said here, failed there
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_fd)
    try:
        meanwhile(lambda: bool(select.select([read_fd], [], [], 0)[0]))
    finally:
        with os.fdopen(read_fd, "rb") as answer:
            data = answer.read()
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code != 0 or not data:
        return code if code > 0 else 1
    loaded: LoadedConfig = wire.loads(data)
    return loaded


def detached(loaded: LoadedConfig) -> LoadedConfig:
    """The same LoadedConfig, its pydantic models replaced by records."""
    from unified_system.config.loader import as_records

    return as_records(loaded)


# --- reload: a fresh interpreter --------------------------------------------------------

# `-I` (isolated): neither the working directory nor PYTHONPATH nor the user's site
# directory is searched, so a `select.py` lying in the supervisor's working directory is
# never imported on a reload (`-m` would put the working directory first on sys.path).
# This package is found by the one directory named in argv[1].
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from unified_system.config.apart import _main; raise SystemExit(_main(sys.argv[2:]))")
HELPER_CWD = "/"    # and nothing it does depends on where the supervisor was started


def helper_argv(path: Path, env_name: str | None) -> list[str]:
    here = str(Path(__file__).resolve().parents[2])
    return [sys.executable, "-I", "-c", _BOOT, here, os.path.abspath(path),
            *(["--env", env_name] if env_name else [])]


def helper_env() -> dict[str, str]:
    """This environment (the config interpolates it), with this package on PYTHONPATH for
    whoever runs the helper without -I."""
    here = str(Path(__file__).resolve().parents[2])
    search = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + search if search else "")}


def read_answer(code: int, stdout: bytes, stderr: bytes) -> tuple[LoadedConfig, list[ConfigError]]:
    """The helper's output -> (config, busy-port errors); raise ConfigErrors if invalid."""
    if code == 0 and stdout:
        kind, *payload = wire.loads(stdout)
        if kind == "ok":
            return payload[0], payload[1]
        raise ConfigErrors(payload[0])
    why = stderr.decode(errors="replace").strip().splitlines()
    raise RuntimeError(f"config helper failed (exit {code}): {why[-1] if why else 'no output'}")


def _main(argv: Sequence[str]) -> int:
    from unified_system.config.checks import busy_listen_ports
    from unified_system.config.loader import load_config

    path, env_name = argv[0], (argv[2] if len(argv) > 2 and argv[1] == "--env" else None)
    answer: tuple[Any, ...]
    try:
        loaded = load_config(path, env_name=env_name)
        answer = ("ok", detached(loaded), busy_listen_ports(loaded))
    except ConfigErrors as exc:
        answer = ("errors", exc.errors)
    sys.stdout.buffer.write(wire.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
