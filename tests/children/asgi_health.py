"""uvicorn on 127.0.0.1:argv[1] (keep-alive timeout argv[2] s): GET /health is 200, GET /conns
the number of connections it has seen, told apart by the client's port."""
import sys

import uvicorn

seen: set[tuple[str, int]] = set()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    seen.add(tuple(scope["client"]))
    body = str(len(seen)).encode() if scope["path"] == "/conns" else b"ok"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), timeout_keep_alive=float(sys.argv[2]),
            log_level="warning", lifespan="off")
