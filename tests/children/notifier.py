"""Sends READY=1 and STATUS over NOTIFY_SOCKET (raw sd_notify), then idles."""
import os
import signal
import socket
import sys

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
path = os.environ["NOTIFY_SOCKET"]
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendto(b"READY=1\nSTATUS=serving", "\0" + path[1:] if path.startswith("@") else path)
print("notified", flush=True)
while True:
    signal.pause()
