"""Writes argv[1] bytes of numbered lines to stdout as fast as it can, then idles."""
import signal
import sys

total = int(sys.argv[1])
line = b"x" * 99 + b"\n"
block = line * 655  # ~64 KiB
written = 0
out = sys.stdout.buffer.raw
while written < total:
    written += out.write(block)
print(f"flood done {written}", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
