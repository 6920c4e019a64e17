"""Prints a line, records its pid, then idles until SIGTERM (exit 0)."""
import os
import signal
import sys

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if len(sys.argv) > 1:
    with open(sys.argv[1], "a") as fh:
        fh.write(f"{os.getpid()}\n")
print(f"sleeper {os.environ.get('UNIFIED_SERVICE')} up pid={os.getpid()}", flush=True)
while True:
    signal.pause()
