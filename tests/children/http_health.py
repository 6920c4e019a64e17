"""HTTP on 127.0.0.1:argv[1]: GET /health is 200, or 500 while file argv[2] exists."""
import http.server
import os
import signal
import sys

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
flag = sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if os.path.exists(flag) else 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"bad")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer.allow_reuse_address = True
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print(f"http on {sys.argv[1]} pid={os.getpid()}", flush=True)
server.serve_forever()
