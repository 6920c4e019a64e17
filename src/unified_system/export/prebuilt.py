"""`python -m unified_system.export.prebuilt [-c FILE] [--env NAME]`: mark every enabled
service's build step as already done, for images whose Dockerfile ran the builds itself.

The supervisor skips a build whose input hash matches the record in state_dir/builds
(core/builds.py); writing those records at image build time means a container starts
without npm, the dashboard's dev dependencies or write access to the source tree.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from unified_system.config import ConfigErrors, load_config
from unified_system.config.loader import LoadedConfig
from unified_system.core.builds import inputs_digest


def mark_built(loaded: LoadedConfig) -> list[Path]:
    """Write state_dir/builds/<service>.json as a successful build would; list them."""
    records = []
    folder = Path(loaded.config.supervisor.state_dir) / "builds"
    for name, spec in loaded.config.enabled().items():
        if spec.build is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        record = folder / f"{name}.json"
        record.write_text(json.dumps({"digest": inputs_digest(spec)}))
        records.append(record)
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unified_system.export.prebuilt",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default=None)
    parser.add_argument("--env", default=None)
    args = parser.parse_args(argv)
    try:
        loaded = load_config(args.config, env_name=args.env)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    for record in mark_built(loaded):
        print(f"marked built: {record}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
