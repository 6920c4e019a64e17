"""What redaction costs: the console echo (bytes), a log record's text, an API answer.

    python bench/redaction.py [--secrets 24] [--rounds 7]

In-process, on the Redactor itself: `--secrets` values as a real environment has them
(API key, heartbeat tokens, passwords; a quarter of them under 6 characters, so whole-token
matching is in the pattern). Compared with the scrubber before (a `str.replace` loop over
values of 6+ characters, run on the encoded text), whose results were wrong but cheap.
Medians of `--rounds`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from unified_system.redaction import Redactor  # noqa: E402


def old_text(text: str, values: tuple[str, ...]) -> str:
    for secret in values:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def timed(fn, rounds: int) -> float:
    runs = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secrets", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    short = [secrets.token_hex(2)[: 1 + i % 5] for i in range(args.secrets // 4)]
    long = [secrets.token_urlsafe(24) for _ in range(args.secrets - len(short))]
    values = [*short, *long]
    redactor = Redactor(values)
    old_values = tuple(sorted((v for v in values if len(v) >= 6), key=len, reverse=True))

    line = (b"2026-12-03T10:00:00.123Z INFO backend request GET /api/trades?limit=50 "
            b"status=200 duration_ms=3.2 client=127.0.0.1 user=alice\n")
    console = line * (1_000_000 // len(line))   # one second of a service's console budget
    record = line.decode().strip()
    snapshot = [{"name": f"s{i:03d}", "state": "running", "pid": 1000 + i, "status": record,
                 "instances": [{"index": 0, "pid": 1000 + i, "state": "running"}],
                 "last_exit": {"code": 1, "signal": None, "reason": "crash", "at": 1.5}}
                for i in range(100)]

    raw = timed(lambda: redactor.raw(console), args.rounds)
    per_record = timed(lambda: [redactor.text(record) for _ in range(10_000)], args.rounds) / 10_000
    old_record = timed(lambda: [old_text(record, old_values) for _ in range(10_000)],
                       args.rounds) / 10_000
    tree = timed(lambda: json.dumps(redactor.tree(snapshot)), args.rounds)
    old_tree = timed(lambda: old_text(json.dumps(snapshot), old_values), args.rounds)
    print(f"{args.secrets} secrets ({len(short)} under 6 characters), medians of {args.rounds}")
    print(f"console echo, 1 MB of log lines: {raw * 1000:.1f} ms "
          f"({len(console) / raw / 1e6:.0f} MB/s; the console shows at most 1 MB/s per service)")
    print(f"one log line: {per_record * 1e6:.2f} us (before: {old_record * 1e6:.2f} us)")
    print(f"GET /api/services, 100 services, redact + encode: {tree * 1000:.2f} ms "
          f"(before, encode + scrub: {old_tree * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
