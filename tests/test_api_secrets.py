"""Secrets (the api_key, a service's DB_PASSWORD, the heartbeat tokens) appear in no API
answer and in no file under state_dir/logs, even with DEBUG logging of every request."""

from __future__ import annotations

import json

import httpx

from harness import SupervisorProcess, wait_until

API_KEY = "cfg-api-key-S3CRET-0123456789"
PASSWORD = "pw-S3CRET-hunter2-xyz"


def test_secrets_appear_in_no_answer_and_no_log(tmp_path):
    dumps = {name: tmp_path / f"{name}.env.json" for name in ("db", "app")}
    with SupervisorProcess(tmp_path, f"""
        services:
          db:
            command: ["{{py}}", "{{children}}/envdump.py", "{dumps['db']}"]
            env: {{DB_PASSWORD: "{PASSWORD}", API_TOKEN: "tok-S3CRET-abcdef"}}
          app:
            command: ["{{py}}", "{{children}}/envdump.py", "{dumps['app']}"]
            depends_on: [db]
    """, supervisor=f"""
        api_key: {API_KEY}
        log: {{level: DEBUG}}
    """) as sup:
        sup.wait_api()
        wait_until(lambda: all(p.exists() for p in dumps.values()), 10, "env dumps")
        envs = {n: json.loads(p.read_text()) for n, p in dumps.items()}
        assert envs["db"]["DB_PASSWORD"] == PASSWORD     # the child does get it
        tokens = [envs["db"]["UNIFIED_TOKEN"], envs["app"]["UNIFIED_TOKEN"]]
        secrets = [API_KEY, PASSWORD, "tok-S3CRET-abcdef", *tokens]

        base, auth = sup.api_url, {"X-API-Key": API_KEY}
        answers: list[str] = []
        with httpx.Client(base_url=base, timeout=10) as c:
            with c.stream("GET", "/api/events", headers=auth) as events:
                for path in ("/health", "/metrics", "/api/services", "/api/services/db",
                             "/api/services/db/logs?lines=1000", "/api/diagnostics",
                             "/api/suggestions", "/api/nope", "/api/services/db/logs?lines=x"):
                    answers.append(c.get(path, headers=auth).text)
                    answers.append(c.get(path).text)   # the 401 says nothing either
                for path in ("/api/services/app/restart", "/api/services/db/stop",
                             "/api/services/app/start", "/api/reload"):
                    answers.append(c.post(path, headers=auth).text)
                    answers.append(c.post(path, headers={"X-API-Key": "wrong"}).text)
                for name, token in zip(("db", "app"), tokens, strict=True):
                    hb = f"/api/services/{name}/heartbeat"
                    answers.append(c.post(hb, headers={"X-Unified-Token": token}).text)
                    answers.append(c.post(hb, headers={"X-Unified-Token": tokens[0][::-1]}).text)
                wait_until(lambda: c.get("/api/services/app", headers=auth).json()["state"] == "running", 10,
                           "app back up")
                stream = ""
                for chunk in events.iter_text():
                    stream += chunk
                    if '"state":"running"' in stream and stream.count("event: state") >= 4:
                        break
                answers.append(stream)
        assert sup.stop() == 0

    text = "\n".join(answers)
    assert '"name": "db"' in text and "event: snapshot" in text   # the answers are real
    for secret in secrets:
        assert secret not in text, f"secret {secret[:6]}... in an API answer"
    logs = sorted(p for p in (sup.state_dir / "logs").rglob("*") if p.is_file())
    assert any(p.name == "supervisor.log" for p in logs)
    debug = [r for r in sup.records() if r.get("event") == "api request"]
    assert len(debug) >= 20 and all("service" in r or r["path"] for r in debug)
    for path in [*logs, sup.stdout_path]:
        content = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in content, f"secret {secret[:6]}... in {path.name}"


def test_secrets_from_dotenv_and_env_files_are_scrubbed_from_answers(tmp_path):
    # Values the supervisor's own environment never had: the .env beside services.yaml,
    # interpolated into an argument, and a service's env_file.
    (tmp_path / ".env").write_text("DOTENV_TOKEN=dotenv-S3CRET-token-1\n")
    (tmp_path / "secrets.env").write_text("FILE_PASSWORD=file-S3CRET-pw-2\n")
    dump = tmp_path / "echo.env.json"
    with SupervisorProcess(tmp_path, f"""
        services:
          echo:
            command: ["{{py}}", "{{children}}/envdump.py", "{dump}", "${{DOTENV_TOKEN}}"]
            env_file: [secrets.env]
            env: {{ECHO_VARS: FILE_PASSWORD}}
    """) as sup:
        sup.wait_api()
        echo_log = sup.state_dir / "logs" / "echo.log"   # the child's output as written
        wait_until(lambda: echo_log.exists() and "said" in echo_log.read_text(), 10, "the echo line")
        assert "dotenv-S3CRET-token-1 file-S3CRET-pw-2" in echo_log.read_text()  # the child has them
        wait_until(lambda: "echo | said *** ***" in sup.output(), 10,   # the console's echo is redacted
                   "the redacted echo", seen=lambda: sup.output()[-500:])
        with httpx.Client(base_url=sup.api_url, timeout=10) as c:
            answer = c.get("/api/services/echo/logs?lines=100", headers=sup.auth()).text
        assert sup.stop() == 0
    assert "said *** ***" in answer


def test_a_config_error_quoting_a_secret_value_is_scrubbed_from_the_logs(tmp_path):
    # The reload's error says "got '<value>'", and the value came from ${API_TOKEN}.
    secret = "tok-S3CRET-in-an-error-42"
    with SupervisorProcess(tmp_path, """
        services:
          app: {command: ["{py}", "{children}/sleeper.py"]}
    """, env={"API_TOKEN": secret}) as sup:
        sup.wait_api()
        text = sup.config_path.read_text()
        sup.config_path.write_text(text.replace("app: {command:", "app: {instances: '${API_TOKEN}', command:"))
        answer = httpx.post(f"{sup.api_url}/api/reload", headers={"X-API-Key": sup.api_key()}, timeout=30)
        assert answer.status_code == 422 and "***" in answer.text and secret not in answer.text
        wait_until(lambda: [r for r in sup.records() if r.get("event", "").startswith("reload refused")],
                   10, "the refusal logged")
        assert sup.stop() == 0
    for path in [*sorted((sup.state_dir / "logs").glob("*.log")), sup.stdout_path]:
        assert secret not in path.read_text(), path.name
