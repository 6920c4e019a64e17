"""`.env` files, read with python-dotenv, imported on first need: most runs have none."""

from __future__ import annotations

import os


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str | None]:
    from dotenv import dotenv_values

    return dict(dotenv_values(path))
