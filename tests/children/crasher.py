"""Exits at once with the given code (default 1), after printing a line and recording its pid."""
import os
import sys

code = int(sys.argv[1]) if len(sys.argv) > 1 else 1
if len(sys.argv) > 2:
    with open(sys.argv[2], "a") as fh:
        fh.write(f"{os.getpid()}\n")
print(f"crasher exiting with {code}", flush=True)
sys.exit(code)
