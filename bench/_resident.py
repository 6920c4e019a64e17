"""A fresh interpreter that first imports what the resident supervisor holds (api/server.py and
all it pulls in), to price what one more import or piece of work adds on top of that
(bench/exposition_cost.py, bench/import_cost.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

# Run first in the child: the names the child code may use are SRC's package, rss() (bytes,
# from /proc/self/status) and gc, json, sys and time.
PRELUDE = r'''
import gc, json, sys, time
sys.path.insert(0, SRC)

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

import unified_system.api.server  # noqa: F401  what the resident supervisor holds already
gc.collect()
'''


def run_resident(child: str, src: str, **constants: object) -> Any:
    """Run `child` (Python source) in a fresh interpreter after PRELUDE, with SRC = `src` and
    each of `constants` bound first; what it prints is one JSON document, returned parsed."""
    bound = "".join(f"{name} = {value!r}\n" for name, value in {"SRC": src, **constants}.items())
    out = subprocess.run([sys.executable, "-c", bound + PRELUDE + child], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)
