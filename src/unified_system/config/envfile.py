"""`.env` files, read with python-dotenv, imported on first need: most runs have none."""

from __future__ import annotations

import os


class EnvFileError(ValueError):
    """An env file that exists but cannot be read (permissions, not UTF-8)."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot read {os.fspath(path)!r}: {reason}")
        self.reason = reason


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str | None]:
    from dotenv import dotenv_values

    try:
        with open(path, encoding="utf-8") as fh:
            return dict(dotenv_values(stream=fh))
    except UnicodeDecodeError as exc:
        raise EnvFileError(path, f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                                 f"{exc.start})") from None
    except OSError as exc:
        raise EnvFileError(path, exc.strerror or str(exc)) from None
