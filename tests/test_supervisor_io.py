"""Output capture, the child's environment, and refusals at `run`."""

import json
import os
import socket
import subprocess

import httpx
import psutil

from harness import PY, START, SupervisorProcess, wait_until


def test_a_log_that_cannot_be_written_loses_output_not_exits(tmp_path):
    # The child's log is on a full disk (/dev/full answers every write with ENOSPC): its
    # output is dropped and said so, and its exits and restarts go on as ever.
    logs = tmp_path / "state" / "logs"
    logs.mkdir(parents=True)
    (logs / "noisy.log").symlink_to("/dev/full")
    with SupervisorProcess(tmp_path, """
        services:
          noisy:
            command: ["{py}", "{children}/crasher.py", "3"]
            restart: {policy: always, backoff: {initial: 0s}}
    """) as sup:
        wait_until(lambda: sup.states("noisy").count("starting") >= 3, 30, "two restarts",
                   seen=lambda: sup.states("noisy"))
        errors = [r for r in sup.records() if r.get("event", "").startswith("cannot write a child's log")]
        assert errors and "No space left on device" in errors[0]["error"]
        assert sup.stop() == 0


def test_flood_is_rotated_bounded_and_never_blocks_the_child(tmp_path):
    total = 50_000_000
    with SupervisorProcess(tmp_path, f"""
        services:
          flood:
            command: ["{{py}}", "{{children}}/flood.py", "{total}"]
    """, supervisor="log: {max_bytes: 5MB, backups: 2}") as sup:
        sup.wait_state("flood", "running")
        rss_before = psutil.Process(sup.proc.pid).memory_info().rss
        logs = sup.state_dir / "logs"
        def ended(path):
            try:  # the file may be rotated away between glob and read
                return b"flood done" in path.read_bytes()[-200:]
            except FileNotFoundError:
                return False

        wait_until(lambda: any(ended(p) for p in logs.glob("flood.log*")), 60, "the flood to finish")
        rss_after = psutil.Process(sup.proc.pid).memory_info().rss
        files = sorted(p.name for p in logs.glob("flood.log*"))
        assert files == ["flood.log", "flood.log.1", "flood.log.2"]
        assert sum(p.stat().st_size for p in logs.glob("flood.log*")) <= 15_000_000
        assert rss_after - rss_before < 30_000_000, (rss_before, rss_after)
        # The console got its 1 MB/s share and a note; the rest went pipe-to-file (splice).
        # a console thread writes the note: wait for it rather than read once
        wait_until(lambda: "bytes of fast output not shown here" in sup.output(), 10,
                   "the console's note", seen=lambda: sup.output()[-2000:])
        assert "flood | " in sup.output()
        assert sup.stop() == 0


def test_child_environment_is_an_allowlist_plus_the_protocol(tmp_path):
    dump = tmp_path / "env.json"
    (tmp_path / "extra.env").write_text("FROM_FILE=1\nOVERRIDE=file\n")
    with SupervisorProcess(tmp_path, f"""
        services:
          svc:
            command: ["{{py}}", "{{children}}/envdump.py", "{dump}"]
            env: {{OVERRIDE: env, PLAIN: "x"}}
            env_file: [extra.env]
            inherit_env: [PATH]
            heartbeat: {{timeout: 3s}}
            checkpoint: {{keep: 2}}
    """, env={"LEAKY_SECRET": "nope", "HOME": "/root"}) as sup:
        wait_until(dump.exists, 10, "env dump")
        env = json.loads(dump.read_text())
        assert "LEAKY_SECRET" not in env and "HOME" not in env
        assert env["PATH"] == os.environ["PATH"]
        assert env["FROM_FILE"] == "1" and env["OVERRIDE"] == "env" and env["PLAIN"] == "x"
        assert env["UNIFIED_SERVICE"] == "svc" and env["UNIFIED_INSTANCE"] == "0"
        assert env["WATCHDOG_USEC"] == "3000000"
        assert env["CHECKPOINT_DIR"] == str(sup.state_dir / "checkpoints" / "svc")
        assert os.path.exists(env["NOTIFY_SOCKET"])
        assert env["UNIFIED_HEARTBEAT_URL"].endswith("/api/services/svc/heartbeat")
        assert len(env["UNIFIED_TOKEN"]) >= 20
        assert sup.stop() == 0


def test_instances_each_get_their_index(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          pool:
            command: ["{py}", "{children}/sleeper.py"]
            instances: 3
    """) as sup:
        wait_until(lambda: sup.states("pool").count("running") >= 3, 10, "3 instances")
        running = {r["instance"] for r in sup.records() if r.get("state") == "running"}
        assert running == {0, 1, 2}
        assert sup.stop() == 0


def test_run_refuses_a_busy_listen_port_naming_the_holder(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        sup = SupervisorProcess(tmp_path, f"""
            services:
              web:
                command: ["{{py}}", "{{children}}/sleeper.py"]
                listen: [{{port: {port}}}]
        """)
        result = subprocess.run([PY, str(START), "run", "-c", str(sup.config_path)],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2
        assert str(port) in result.stderr and str(os.getpid()) in result.stderr
    finally:
        holder.close()


def test_run_and_check_refuse_bad_config_listing_every_error(tmp_path):
    cfg = tmp_path / "services.yaml"
    cfg.write_text(
        "services:\n"
        "  a:\n"
        "    command: [sleep, '1']\n"
        "    restart: {polcy: always}\n"
        "  c:\n"
        "    command: [definitely-not-a-program-xyz]\n"
        "  b:\n"
        "    command: [sleep, '1']\n"
        "    depends_on: [nope]\n")
    for command in ("check", "run"):
        result = subprocess.run([PY, str(START), command, "-c", str(cfg)],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, result
        err = result.stderr
        assert "definitely-not-a-program-xyz" in err
        assert "did you mean 'policy'" in err and f"{cfg}:4:" in err
        assert "nope" in err


def test_check_prints_the_start_order_as_waves(tmp_path):
    cfg = tmp_path / "services.yaml"
    cfg.write_text(
        "services:\n"
        "  db: {command: [sleep, '1']}\n"
        "  api: {command: [sleep, '1'], depends_on: {db: {condition: healthy}}, "
        "readiness: {tcp: {port: 1}}}\n"
        "  web: {command: [sleep, '1'], depends_on: [api]}\n")
    result = subprocess.run([PY, str(START), "check", "-c", str(cfg)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("wave 1: db") for line in lines)
    assert any("api" in line and "db healthy" in line for line in lines)
    assert any("web" in line and "api started" in line for line in lines)


def test_a_flood_beyond_the_console_budget_loses_no_byte_of_the_log(tmp_path):
    total = 20_000_000
    with SupervisorProcess(tmp_path, f"""
        services:
          flood:
            command: ["{{py}}", "{{children}}/flood.py", "{total}"]
    """, supervisor="log: {max_bytes: 1GB}") as sup:
        log = sup.state_dir / "logs" / "flood.log"
        wait_until(lambda: log.exists() and b"flood done" in log.read_bytes()[-100:], 60,
                   "the flood to finish")
        data = log.read_bytes()
        written = int(data.rsplit(b"flood done ", 1)[1].split()[0])
        assert len(data) == written + len(f"flood done {written}\n")   # every byte, in order
        assert data[:written] == (b"x" * 99 + b"\n") * (written // 100)
        wait_until(lambda: "fast output not shown here" in sup.output(), 10, "the console's note")
        assert sup.stop() == 0


def test_a_spawn_that_fails_on_our_side_is_fatal_with_the_reason(tmp_path):
    # CHECKPOINT_DIR cannot be made (a file is in the way): that service is fatal, saying why,
    # and the others start all the same.
    (tmp_path / "state" / "checkpoints").mkdir(parents=True)
    (tmp_path / "state" / "checkpoints" / "saver").write_text("")
    with SupervisorProcess(tmp_path, """
        services:
          saver: {command: ["{py}", "{children}/sleeper.py"], checkpoint: {keep: 2}, critical: false}
          other: {command: ["{py}", "{children}/sleeper.py"]}
    """) as sup:
        fatal = sup.wait_state("saver", "fatal")
        assert "File exists" in fatal["note"]
        sup.wait_state("other", "running")
        assert sup.stop() == 0


def test_a_program_gone_at_spawn_is_looked_for_again_at_the_next_start(tmp_path):
    # `tool` is there when the config is checked, gone when `late` is first spawned (after
    # `gate` is ready), and back before the operator's start: that start must find it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "tool"
    tool.write_text(f"#!{PY}\nimport signal\nprint('tool up', flush=True)\nsignal.pause()\n")
    tool.chmod(0o755)
    go = tmp_path / "go"
    with SupervisorProcess(tmp_path, f"""
        services:
          gate:
            command: ["{{py}}", "{{children}}/sleeper.py"]
            readiness: {{exec: {{command: [test, -f, "{go}"]}}, period: 100ms}}
          late:
            command: [tool]
            env: {{PATH: "{bin_dir}:/usr/bin:/bin"}}
            depends_on: {{gate: {{condition: healthy}}}}
            critical: false
    """) as sup:
        sup.wait_api()
        sup.wait_state("gate", "starting")  # and not ready: `go` is not there yet
        tool.rename(tmp_path / "tool.away")
        go.write_text("")
        assert "not found" in sup.wait_state("late", "fatal", timeout=30)["note"]
        (tmp_path / "tool.away").rename(tool)
        answer = httpx.post(f"{sup.api_url}/api/services/late/start",
                            headers={"X-API-Key": sup.api_key()}, timeout=10)
        assert answer.status_code == 202, answer.text
        sup.wait_state("late", "running", timeout=30)
        assert sup.stop() == 0
