"""Ignores SIGTERM: only SIGKILL ends it."""
import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("stubborn up", flush=True)
while True:
    signal.pause()
