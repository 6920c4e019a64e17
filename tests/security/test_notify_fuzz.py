"""A child cannot crash the supervisor through what it sends (issue 14, item 3).

Seen: EXTEND_TIMEOUT_USEC=100000000000000000 put a heartbeat deadline 1e11 s ahead, and the
owner loop's queue.get(timeout=...) raised OverflowError outside every handler's guard: the
supervisor died, and every service with it.
"""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest

from harness import SupervisorProcess, wait_until

HUGE = "100000000000000000"


def pid_of(sup: SupervisorProcess, name: str, key: str) -> int | None:
    answer = httpx.get(f"{sup.api_url}/api/services/{name}", headers={"X-API-Key": key}, timeout=10)
    obj = answer.json()
    return obj["pid"] if obj["state"] == "running" else None


def uptime(sup: SupervisorProcess, name: str, key: str) -> float:
    assert sup.proc.poll() is None, f"the supervisor died: {sup.output()[-3000:]}"
    try:
        answer = httpx.get(f"{sup.api_url}/api/services/{name}", headers={"X-API-Key": key}, timeout=10)
    except httpx.HTTPError:
        return 0.0   # asked again: either it answers, or the check above says why not
    return answer.json()["uptime_seconds"] or 0.0


def test_extend_timeout_usec_of_1e17_does_not_crash_the_supervisor(tmp_path):
    with SupervisorProcess(tmp_path, f"""
        services:
          extender:
            command: ["{{py}}", "{{children}}/notify_fuzz.py", "once", "EXTEND_TIMEOUT_USEC={HUGE}",
                      "WATCHDOG_USEC={HUGE}", "EXTEND_TIMEOUT_USEC=nan", "EXTEND_TIMEOUT_USEC=-1"]
            readiness: {{notify: true}}
            heartbeat: {{timeout: 5s}}
            restart: {{reset_after: 200ms}}
          bystander:
            command: ["{{py}}", "{{children}}/sleeper.py"]
            restart: {{reset_after: 200ms}}
    """) as sup:
        # READY=1 comes after the huge values: once running, they were handled.
        sup.wait_state("extender", "running", timeout=30)
        sup.wait_api(30)
        key = sup.api_key()
        before = pid_of(sup, "bystander", key)
        # Within a second or two every other deadline (restart-budget resets, snapshot and
        # state saves) is past, and the loop waits for the heartbeat one: that wait crashed.
        wait_until(lambda: uptime(sup, "extender", key) >= 3, 30, "3 s of the extender's life",
                   seen=lambda: sup.output()[-2000:])
        # The owner loop still turns: a restart is carried out, and the supervisor is alive.
        answer = httpx.post(f"{sup.api_url}/api/services/extender/restart",
                            headers={"X-API-Key": key}, timeout=10)
        assert answer.status_code == 202, answer.text
        sup.wait_state("extender", "running", timeout=30, count=2)
        assert sup.proc.poll() is None, sup.output()[-3000:]
        assert pid_of(sup, "bystander", key) == before
        assert sup.stop() == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_child_fuzzing_the_notify_socket_and_the_heartbeat_for_20s(tmp_path):
    result, go = tmp_path / "fuzz.json", tmp_path / "go"
    with SupervisorProcess(tmp_path, f"""
        services:
          fuzzer:
            command: ["{{py}}", "{{children}}/notify_fuzz.py", "20", "{result}", "{go}"]
            heartbeat: {{timeout: 5s}}
            critical: false
          bystander:
            command: ["{{py}}", "{{children}}/sleeper.py"]
    """) as sup:
        sup.wait_state("bystander", "running", timeout=30)
        sup.wait_api(30)
        key = sup.api_key()
        bystander, fuzzer = pid_of(sup, "bystander", key), pid_of(sup, "fuzzer", key)
        assert bystander is not None and fuzzer is not None
        answers: list[int | str] = []
        client = httpx.Client(base_url=sup.api_url, headers={"X-API-Key": key}, timeout=10)

        def api_answers() -> bool:
            """One round of the API while the flood goes on; True once the fuzzer is done."""
            assert sup.proc.poll() is None, f"the supervisor died: {sup.output()[-3000:]}"
            for path in ("/health", "/api/services"):
                try:
                    answers.append(client.get(path).status_code)
                except httpx.HTTPError as exc:
                    answers.append(repr(exc))
            return result.exists()

        fds = len(os.listdir(f"/proc/{sup.proc.pid}/fd"))
        started = time.monotonic()
        go.touch()
        try:
            wait_until(api_answers, 120, "the fuzzer to finish", seen=lambda: answers[-10:])
        finally:
            client.close()
        report = json.loads(result.read_text())
        assert report["sent"] > 1000, report        # thousands of datagrams...
        assert time.monotonic() - started >= 20     # ...over the whole run, while we asked
        failed = [a for a in answers if a != 200]
        assert len(answers) >= 20 and not failed, (failed, len(answers), report)
        assert sup.proc.poll() is None
        assert pid_of(sup, "bystander", key) == bystander
        assert sup.state("bystander") == "running"
        assert pid_of(sup, "fuzzer", key) == fuzzer   # nothing it sent made it restart
        # Every fd it passed (barriers, 20 at once, on any message) was closed again.
        wait_until(lambda: len(os.listdir(f"/proc/{sup.proc.pid}/fd")) <= fds + 4, 10,
                   "the supervisor's fds back to where they were",
                   seen=lambda: (fds, os.listdir(f"/proc/{sup.proc.pid}/fd")))
        # The owner never failed a handler (tests run strict, so one would have killed it).
        assert not [r for r in sup.records() if r.get("event", "").startswith("owner bug")]
        assert sup.stop() == 0
