"""Writes 100-byte lines to stdout as fast as the pipe takes them, until killed; with an
argument, at that many MB/s instead (paced per 64 KiB block)."""
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
block = (b"y" * 99 + b"\n") * 655
out = sys.stdout.buffer
out = getattr(out, "raw", out)  # unbuffered already under PYTHONUNBUFFERED
rate = float(sys.argv[1]) * 1e6 if len(sys.argv) > 1 else 0.0
start, sent = time.monotonic(), 0
while True:
    sent += out.write(block)
    if rate:
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
