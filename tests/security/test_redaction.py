"""Hostile secret values: a child gives away every secret it was given (stdout, STATUS=, a
crash), a reload's error quotes them, and none may come back out of any output: API
answers, SSE, /logs, crash dumps, state.json, supervisor.log and the console.

The values are chosen to beat a scrubber of encoded text: a quote and non-ASCII (JSON
escapes them), a backslash, a newline, values of 1 to 5 characters, and a secret that is
a prefix of another. SPEC §6 "What is redacted, and where" states the rules checked here:
a value of 6 characters or more is hidden wherever it appears; a shorter one wherever it
stands as a whole token.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import httpx
import pytest

from harness import SupervisorProcess, wait_until
from unified_system.redaction import Redactor

SECRETS = {
    "DB_PASSWORD": 'Tr0ub4dor"&3-Zürich',     # as seen: came back in /api/services/<svc>
    "SHORT_TOKEN": "abc12",                   # as seen: came back in /logs
    "WIN_SECRET": "C:\\vault\\s3cr3t",        # backslashes
    "TINY_KEY": "z",                          # 1 character
    "PIN_PASSWORD": "7Q",                     # 2 characters
    "CODE_TOKEN": "q9!",                      # 3 characters, one of them not a word character
    "SESAME_KEY": "sesame",                   # a prefix of the next one
    "SESAME_LONG_KEY": "sesame-open-42",
    "QUOTE_CREDENTIAL": "it's \"quoted\"\t\\o/",
    "LONG_TOKEN": "long-" + "0123456789abcdef" * 9,   # STATUS= is cut at 200 characters across it
    "PEM_SECRET": "line-one-of-pem\nline-two-of-pem",   # last: a newline ends STATUS=
}
# What must not show either: the longer secret's tail that a prefix replaced first would
# leave, and the start of a secret cut in two before it was redacted.
FRAGMENTS = ("-open-42", SECRETS["LONG_TOKEN"][:40])


def forms(secret: str) -> set[str]:
    """The secret as written, as JSON escapes it, and each of its lines (line-based
    outputs, /logs and the console, split a multi-line secret)."""
    out = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    lines = secret.splitlines()
    return out | (set(lines) if len(lines) > 1 else set())


def leaks(secret: str, text: str) -> list[str]:
    """The forms of `secret` that `text` shows, by the SPEC's rule for its length."""
    found = []
    for form in forms(secret):
        if len(form) >= 6 and form in text:
            found.append(form)
        elif len(form) < 6 and re.search(r"(?<!\w)" + re.escape(form) + r"(?!\w)", text):
            found.append(form)
    return found


def strings(value: object) -> list[str]:
    """Every string in a decoded JSON value, keys included: checked one by one, so a short
    secret is looked for where it stands in the text the answer carries."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings(k), *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def check(outputs: dict[str, str]) -> None:
    problems = []
    for where, text in outputs.items():
        texts = [text]
        for line in text.splitlines():   # JSON documents and JSON lines are checked decoded too
            line = line.removeprefix("data: ")
            try:
                texts += strings(json.loads(line))
            except ValueError:
                pass
        try:
            texts += strings(json.loads(text))
        except ValueError:
            pass
        for name, secret in SECRETS.items():
            for piece in texts:
                if found := leaks(secret, piece):
                    problems.append(f"{name} in {where}: {found!r} in {piece[:300]!r}")
                    break
        for fragment in FRAGMENTS:
            if fragment in text:
                problems.append(f"{fragment!r} (part of a secret) in {where}")
    assert not problems, "\n".join(problems)


def test_hostile_secret_values_come_back_out_of_no_output(tmp_path):
    names = ",".join(SECRETS)
    env = "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in SECRETS.items()) + "}"
    with SupervisorProcess(tmp_path, f"""
        services:
          leaky:
            command: ["{{py}}", "{{children}}/leaker.py", "{names}"]
            env: {env}
          crashy:
            command: ["{{py}}", "{{children}}/leaker.py", "{names}", "crash"]
            env: {env}
            restart: {{policy: never}}
    """, supervisor="log: {level: DEBUG}", env=SECRETS) as sup:
        sup.wait_api(60)
        auth = {"X-API-Key": sup.api_key()}
        crashes = sup.state_dir / "crashes"
        outputs: dict[str, str] = {}
        with httpx.Client(base_url=sup.api_url, headers=auth, timeout=30) as c:
            wait_until(lambda: (c.get("/api/services/leaky").json().get("status") or "").startswith("status"),
                       20, "leaky's STATUS=", seen=lambda: c.get("/api/services/leaky").text)
            wait_until(lambda: list(crashes.glob("crashy-*.json")), 20, "crashy's crash dump")
            wait_until(lambda: sup.output().count("leaked all") == 2, 20, "both children's output",
                       seen=lambda: sup.output()[-2000:])
            with c.stream("GET", "/api/events") as events:
                # A reload whose errors quote every secret (interpolated from the supervisor's
                # environment): the 422, the log record, and the SSE stream around it.
                bad = "".join(f"  bad{i}: {{command: [{json.dumps(sys.executable)}], "
                              f"instances: \"${{{k}}}\"}}\n" for i, k in enumerate(SECRETS))
                sup.config_path.write_text(sup.config_path.read_text() + bad)
                reload = c.post("/api/reload")
                assert reload.status_code == 422, reload.text
                outputs["POST /api/reload"] = reload.text
                stream = ""
                for chunk in events.iter_text():
                    stream += chunk
                    if "event: reload" in stream and stream.endswith("\n\n"):
                        break
                outputs["GET /api/events"] = stream
            for path in ("/health", "/api/services", "/api/services/leaky", "/api/services/crashy",
                         "/api/services/leaky/logs?lines=1000", "/api/services/crashy/logs?lines=1000",
                         "/api/diagnostics", "/api/suggestions"):
                answer = c.get(path)
                assert answer.status_code == 200, (path, answer.text)
                outputs[f"GET {path}"] = answer.text
            wait_until(lambda: [r for r in sup.records() if r.get("event", "").startswith("reload refused")],
                       20, "the refusal logged")
        assert sup.stop() == 0

    dumps = sorted(crashes.glob("crashy-*.json"))
    files: list[Path] = [*dumps, sup.state_dir / "state.json", sup.stdout_path,
                         *sorted((sup.state_dir / "logs").glob("supervisor.log*")),
                         *sorted((sup.state_dir / "logs").glob("errors.log*"))]
    for path in files:
        outputs[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")
    check(outputs)

    # The outputs are real: the secrets went through every path, redacted.
    status = json.loads(outputs["GET /api/services/leaky"])["status"]
    assert status.startswith("status " + " | ".join(["***"] * 9)), status
    assert "leak DB_PASSWORD *** end" in outputs["GET /api/services/leaky/logs?lines=1000"]
    assert "leak SHORT_TOKEN *** end" in outputs["GET /api/services/crashy/logs?lines=1000"]
    assert "leak TINY_KEY *** end" in sup.output() and "event: snapshot" in outputs["GET /api/events"]
    assert "***" in outputs["POST /api/reload"]
    assert any("leak CODE_TOKEN *** end" in ln for ln in json.loads(dumps[0].read_text())["last_lines"])



# ---------------------------------------------------------------- the rules, as a table
@pytest.mark.parametrize("secrets, text, want", [
    (["abc12"], "token abc12, again:abc12.", "token ***, again:***."),          # short: whole tokens
    (["abc12"], "abc123 xabc12 abc12_x", "abc123 xabc12 abc12_x"),              # ... never inside a word
    (["z"], "z lazy z=1 (z)", "*** lazy ***=1 (***)"),
    (["q9!"], "pin q9! ok, (q9!) q9!x", "pin *** ok, (***) q9!x"),
    (["hunter2"], "xhunter2x", "x***x"),                                          # long: anywhere
    (["sesame", "sesame-open-42"], "sesame-open-42 / sesame", "*** / ***"),     # prefix: longest first
    (['Tr0ub4dor"&3-Zürich'], json.dumps('pw Tr0ub4dor"&3-Zürich'), '"pw ***"'),  # someone else's JSON
    (["C:\\vault\\s3cr3t"], json.dumps({"p": "C:\\vault\\s3cr3t"}), '{"p": "***"}'),
    (["line-one-of-pem\nline-two-of-pem"], "a line-two-of-pem b", "a *** b"),   # a line of it
    (["*", "hunter2"], "a hunter2 b", "a *** b"),                               # one pass: no re-match
])
def test_text_rules(secrets, text, want):
    assert Redactor(secrets).text(text) == want


def test_structured_answers_are_redacted_before_encoding():
    r = Redactor(['Tr0ub4dor"&3-Zürich', "ab"])
    answer = {"status": 'pw Tr0ub4dor"&3-Zürich', "ab": ["ab", 12, None, True], "n": 1.5}
    assert r.tree(answer) == {"status": "pw ***", "***": ["***", 12, None, True], "n": 1.5}
    assert r.raw('echo Tr0ub4dor"&3-Zürich ab\n'.encode()) == b"echo *** ***\n"
    assert Redactor(["", "x"]).values == ("x",) and not Redactor([])
