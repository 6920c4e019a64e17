"""Writes 100-byte lines to stdout as fast as the pipe takes them, until killed."""
import signal
import sys

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
block = (b"y" * 99 + b"\n") * 655
out = sys.stdout.buffer.raw
while True:
    out.write(block)
