"""Allocates argv[1] MB (touching every page), then idles; with argv[2], SIGKILLs itself after
that many seconds, as the kernel's OOM killer would."""
import os
import signal
import sys
import threading

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
hoard = bytearray(int(sys.argv[1]) * 1024 * 1024)
for i in range(0, len(hoard), 4096):
    hoard[i] = 1
print(f"holding {sys.argv[1]} MB", flush=True)
if len(sys.argv) > 2:
    threading.Event().wait(float(sys.argv[2]))
    os.kill(os.getpid(), signal.SIGKILL)
while True:
    signal.pause()
