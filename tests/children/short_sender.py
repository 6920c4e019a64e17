"""Sends its arguments as one sd_notify datagram (e.g. READY=1) and exits at once: the
short-lived sender whose pid is gone a moment after its message arrives."""
import os
import socket
import sys

path = os.environ["NOTIFY_SOCKET"]
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendto("\n".join(sys.argv[1:]).encode(), "\0" + path[1:] if path.startswith("@") else path)
