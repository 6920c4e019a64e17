"""A hostile child: floods NOTIFY_SOCKET and the HTTP heartbeat with random and boundary input.

  notify_fuzz.py once TEXT...          send each TEXT as one datagram, then READY=1, then idle
  notify_fuzz.py SECONDS RESULT_FILE GO_FILE
                                       once GO_FILE exists, fuzz for SECONDS, then write what was
                                       sent to RESULT_FILE (JSON) and idle

Bounded in time and per call: every send is non-blocking or has a timeout.
"""
import http.client
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.parse

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
target = os.environ["NOTIFY_SOCKET"]
address = "\0" + target[1:] if target.startswith("@") else target

NUMBERS = ["100000000000000000", "18446744073709551615", "18446744073709551616", "9" * 4000,
           "-1", "-100000000000000000", "0", "nan", "NaN", "inf", "-inf", "1e308", "1e-308",
           "0x10", "+5", " 5", "5 ", "²", "", "1.5", "99999999999999999999999999999999"]
KEYS = ["EXTEND_TIMEOUT_USEC", "WATCHDOG_USEC", "WATCHDOG", "READY", "STATUS", "STOPPING",
        "RELOADING", "MAINPID", "BARRIER", "ERRNO", "FDSTORE", "MONOTONIC_USEC", ""]


def boundary() -> list[bytes]:
    out = [f"{key}={n}".encode() for key in ("EXTEND_TIMEOUT_USEC", "WATCHDOG_USEC", "MAINPID")
           for n in NUMBERS]
    out += [b"", b"\n", b"=", b"==\n=\n", b"\n" * 4000, b"\xff\xfe\xfd" * 100, b"\x00" * 512,
            b"STATUS=" + b"\xc3\x28" * 1000, b"STATUS=" + b"x" * 4089, b"STATUS=" + b"x" * 4090,
            b"WATCHDOG=1", b"READY=1", b"STOPPING=1", b"RELOADING=1", b"BARRIER=1",
            b"WATCHDOG=trigger\x00", b"READY=1\x00WATCHDOG=trigger", b"A" * 65536,
            b"EXTEND_TIMEOUT_USEC=1000000\n" * 100]
    return out


def random_datagram(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.3:
        return rng.randbytes(rng.choice([0, 1, 7, 100, 4095, 4096, 4097, 9000]))
    if pick < 0.7:
        lines = [f"{rng.choice(KEYS)}={rng.choice(NUMBERS)}" for _ in range(rng.randint(1, 20))]
        return "\n".join(lines).encode()
    return rng.choice(boundary())


def send_fds(sock: socket.socket, data: bytes, count: int) -> None:
    """A datagram that carries `count` pipe fds (BARRIER=1 takes one; more are abuse)."""
    pipes = [os.pipe() for _ in range(count)]
    try:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                               b"".join(w.to_bytes(4, sys.byteorder) for _r, w in pipes))], 0, address)
    except OSError:
        pass
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)


def http_fuzz(stop: float, counts: dict) -> None:
    url = urllib.parse.urlsplit(os.environ["UNIFIED_HEARTBEAT_URL"])
    token = os.environ["UNIFIED_TOKEN"]
    rng = random.Random(2)
    bodies = [b"", b"{}", b'{"usec": 1e400}', b'{"usec": NaN}', b"\xff\xfe" * 100, b"[" * 5000,
              b"x" * 65536, b"x" * 70000, json.dumps({"extend_usec": 10 ** 30}).encode()]
    while time.monotonic() < stop:
        body = rng.choice(bodies)
        headers = {"X-Unified-Token": rng.choice([token, token + "x", "", "\u00e9"]),
                   "Content-Type": "application/json"}
        if rng.random() < 0.2:
            headers["Content-Length"] = rng.choice(["99999999999999999999", "-1", "nan", "0x10"])
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
            conn.putrequest("POST", url.path, skip_accept_encoding=True)
            for key, value in headers.items():
                conn.putheader(key, value.encode("utf-8") if isinstance(value, str) else value)
            if "Content-Length" not in headers:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            status = conn.getresponse().status
            counts[str(status)] = counts.get(str(status), 0) + 1
            conn.close()
        except (OSError, http.client.HTTPException):
            counts["error"] = counts.get("error", 0) + 1


def fuzz(seconds: float, result: str) -> None:
    rng = random.Random(1)
    stop = time.monotonic() + seconds
    http_counts: dict = {}
    web = threading.Thread(target=http_fuzz, args=(stop, http_counts), daemon=True)
    web.start()
    sent = dropped = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)   # a full queue drops our datagram: never stall, keep flooding
        for data in boundary():
            try:
                sock.sendto(data, address)
            except OSError:
                pass
        while time.monotonic() < stop:
            if rng.random() < 0.01:
                send_fds(sock, rng.choice([b"BARRIER=1", b"FDSTORE=1", b"READY=1"]),
                         rng.choice([1, 2, 20]))
                continue
            try:
                sock.sendto(random_datagram(rng), address)
                sent += 1
            except BlockingIOError:
                dropped += 1
                time.sleep(0.0005)  # the queue is full: let the supervisor read
            except OSError:
                dropped += 1
    web.join(10)
    with open(result + ".tmp", "w") as fh:
        json.dump({"sent": sent, "dropped": dropped, "seconds": seconds, "http": http_counts}, fh)
    os.replace(result + ".tmp", result)


if sys.argv[1] == "once":
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        for text in sys.argv[2:]:
            s.sendto(text.encode(), address)
        s.sendto(b"READY=1", address)
else:
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.05)   # the test says go once it watches
    fuzz(float(sys.argv[1]), sys.argv[2])
print("fuzzed", flush=True)
while True:
    signal.pause()
