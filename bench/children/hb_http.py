"""HTTP /health on 127.0.0.1:argv[1], READY=1, and WATCHDOG=1 every argv[2] seconds.

argv[3] is the HTTP version the server speaks: 1.1 (the default: it keeps connections
alive, as uvicorn, gunicorn, Node and Go servers do) or 1.0 (http.server's default: it
closes after each answer)."""
import http.server
import os
import signal
import socket
import sys
import threading

signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
port, period = int(sys.argv[1]), float(sys.argv[2])
version = sys.argv[3] if len(sys.argv) > 3 else "1.1"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = f"HTTP/{version}"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])


def beat():
    tick = threading.Event()
    while True:
        sock.sendto(b"WATCHDOG=1", os.environ["NOTIFY_SOCKET"])
        tick.wait(period)


threading.Thread(target=beat, daemon=True).start()
server.serve_forever()
