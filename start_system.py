#!/usr/bin/env python3
"""Entry point: `python start_system.py [run|check|status|...]` (see README)."""

import sys
from pathlib import Path

# Runs from a fresh clone without installing: the package lives in src/.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from unified_system.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
