"""Listens on 127.0.0.1:argv[1] (after optional argv[2] seconds), accepts and closes; exits 0 on
SIGTERM, unless argv[3] is 'stubborn' (then it ignores SIGTERM)."""
import signal
import socket
import sys
import threading

if len(sys.argv) > 3 and sys.argv[3] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
if delay:
    threading.Event().wait(delay)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(64)
print(f"listening on {sys.argv[1]}", flush=True)
while True:
    conn, _ = srv.accept()
    conn.close()
