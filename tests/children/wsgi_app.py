"""A tiny WSGI app for real gunicorn (tests/apps/test_rollout_apps.py): answers its pid.

BROKEN=1 makes it fail at import, as a broken release does; gunicorn has already sent
READY=1 by then (its arbiter does so before a worker loads the app)."""
import os

if os.environ.get("BROKEN") == "1":
    raise ImportError("a broken release: this module fails at import")


def app(environ, start_response):
    body = f"{os.getppid()}\n".encode()   # the arbiter's pid: the incarnation the supervisor spawned
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
