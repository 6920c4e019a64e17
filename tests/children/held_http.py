"""HTTP server on the socket the supervisor holds (LISTEN_FDS), READY=1 once serving.

On SIGTERM it stops accepting, finishes the requests it has, and exits 0: what a graceful
server does, and what makes a rolling restart lose nothing.
"""
import http.server
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))
from unified_system.child import notify  # noqa: E402

socks = notify.listen_sockets()
assert socks, "expected LISTEN_FDS"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        body = f"{os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):  # the socket is already bound and listening
        pass

    def server_activate(self):
        pass


server = Server(("", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = socks[0]
# Non-blocking accept: the old and the new instance share this socket during a rolling
# restart, and both wake for one connection. The loser must go back to its loop (and see
# a shutdown request) rather than block in accept() with a SIGTERM pending.
server.socket.setblocking(False)
server.daemon_threads = False
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
time.sleep(float(os.environ.get("READY_DELAY", "0")))  # a slow start, for rolling-restart tests
notify.ready()
if os.environ.get("EXIT_AFTER_READY"):  # a broken release that says READY=1 first (as gunicorn does)
    time.sleep(float(os.environ["EXIT_AFTER_READY"]))
    sys.exit(1)
print(f"serving on fd {socks[0].fileno()} pid={os.getpid()} LISTEN_PID={os.environ['LISTEN_PID']}", flush=True)
server.serve_forever()
server.server_close = lambda: None  # never close the shared listening socket ourselves
sys.exit(0)
