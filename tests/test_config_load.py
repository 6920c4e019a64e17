"""Loading: path lookup, .env, overlays, interpolation + coercion, paths, defaults, freezing."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pydantic
import pytest

from unified_system.config import (
    ConfigErrors,
    Dependency,
    LoadedConfig,
    Probe,
    Service,
    load_config,
    resolve_executable,
)
from unified_system.config.schema import DEFAULT_INHERIT_ENV

ENV = {"PATH": os.environ.get("PATH", os.defpath)}


def write(directory: Path, text: str, name: str = "services.yaml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def executable(directory: Path, name: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


MINIMAL = """
services:
  app:
    command: sh
"""


def test_defaults_are_the_specs(tmp_path):
    loaded = load_config(write(tmp_path, MINIMAL), environ=ENV)
    sup, app = loaded.config.supervisor, loaded.config.services["app"]
    assert loaded.config.version == 1 and loaded.env_name is None
    assert (sup.host, sup.port, sup.api_key) == ("127.0.0.1", 8900, "")
    assert sup.state_dir == tmp_path / ".unified-system"
    assert (sup.shutdown_timeout, sup.exit_on_critical_failure, sup.watch_config) == (60.0, False, False)
    assert (sup.subreaper, sup.parent_death_signal) == (None, "SIGTERM")   # keys beyond SPEC
    assert (sup.log.level, sup.log.format, sup.log.max_bytes, sup.log.backups) == ("INFO", "auto", 10_000_000, 5)
    assert sup.notify.webhooks == () and sup.notify.events == ("fatal", "freeze", "circuit_open", "recovered")
    assert app.command == ("sh",) and app.cwd == tmp_path and app.env == {} and app.env_file == ()
    assert app.inherit_env == DEFAULT_INHERIT_ENV == ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR")
    assert (app.enabled, app.critical, app.depends_on, app.instances) == (True, True, {}, 1)
    r = app.restart
    assert (r.policy, r.reset_after, r.max_restarts, r.window, r.cooldown) == ("on-failure", 60.0, 5, 60.0, 300.0)
    assert (r.backoff.initial, r.backoff.max, r.backoff.multiplier, r.backoff.jitter) == (1.0, 60.0, 2.0, 0.1)
    assert (app.stop.signal, app.stop.timeout) == ("SIGTERM", 10.0)
    assert (app.build, app.readiness, app.startup, app.liveness, app.heartbeat) == (None,) * 5
    assert (app.limits, app.watch, app.checkpoint, app.listen) == (None, None, None, ())


def test_probe_defaults_and_liveness_period_of_5s(tmp_path):
    loaded = load_config(write(tmp_path, """
        services:
          app:
            command: sh
            readiness: {tcp: {port: 8000}}
            startup: {exec: {command: "sh -c true"}}
            liveness: {http: {url: "http://127.0.0.1:8000/health"}}
            heartbeat: {timeout: 10s}
            build: {command: sh}
            watch: {}
            checkpoint: {}
            listen: [{port: 8000}]
        """), environ=ENV)
    app = loaded.config.services["app"]
    for probe in (app.readiness, app.startup, app.liveness):
        assert isinstance(probe, Probe)
        timing = (probe.initial_delay, probe.timeout, probe.failure_threshold, probe.success_threshold)
        assert timing == (0.0, 1.0, 3, 1)
    assert (app.readiness.period, app.startup.period, app.liveness.period) == (1.0, 1.0, 5.0)
    assert (app.readiness.kind, app.startup.kind, app.liveness.kind) == ("tcp", "exec", "http")
    assert app.readiness.tcp.host == "127.0.0.1" and app.liveness.http.status is None
    assert app.startup.exec.command == ("sh", "-c", "true")
    assert app.heartbeat.hard_timeout is None
    assert (app.build.inputs, app.build.timeout) == ((), 600.0)
    assert app.watch.paths == (tmp_path,) and app.watch.debounce == 0.5
    assert app.watch.ignore == ("*.pyc", "__pycache__", "node_modules", ".git")
    assert app.checkpoint.keep == 3
    assert (app.listen[0].host, app.listen[0].name) == ("127.0.0.1", None)


def test_spec_example_loads(tmp_path):
    bin_dir = tmp_path / "bin"
    for tool in ("python", "npm"):
        executable(bin_dir, tool)
    (tmp_path / "services/backend").mkdir(parents=True)
    (tmp_path / "services/backend/package-lock.json").write_text("{}")
    fixture = Path(__file__).parent / "fixtures" / "config" / "spec_example.yaml"
    example = fixture.read_text()
    loaded = load_config(write(tmp_path, example), env_name="production",
                         environ={"PATH": str(bin_dir), "LOG_LEVEL": "DEBUG"})
    backend = loaded.config.services["backend"]
    assert backend.env == {"LOG_LEVEL": "DEBUG"}
    assert backend.depends_on == {"db": Dependency(condition="healthy", restart=False)}
    assert backend.build.timeout == 600.0 and backend.build.command == ("npm", "ci")
    assert backend.startup.period == 0.25 and backend.startup.failure_threshold == 120
    assert backend.heartbeat.hard_timeout == 30.0 and backend.restart.cooldown == 300.0
    assert backend.limits.max_memory == 512_000_000 and backend.listen[0].name == "http"
    assert backend.watch.paths == (tmp_path / "services/backend",) and backend.watch.debounce == 0.5
    assert backend.cwd == tmp_path / "services/backend"
    assert resolve_executable(backend, loaded.environ) == str(bin_dir / "python")
    assert loaded.config.services["frontend"].enabled is False


def test_depends_on_list_and_map_normalise_the_same(tmp_path):
    loaded = load_config(write(tmp_path, """
        services:
          db: {command: sh}
          cache: {command: sh}
          as_list: {command: sh, depends_on: [db, cache]}
          as_map: {command: sh, depends_on: {db: {}, cache: }}
          conditions: {command: sh, depends_on: {db: {condition: healthy, restart: true}}}
        """), environ=ENV)
    services = loaded.config.services
    assert services["as_list"].depends_on == services["as_map"].depends_on == {
        "db": Dependency(), "cache": Dependency()}
    assert services["conditions"].depends_on["db"] == Dependency(condition="healthy", restart=True)


def test_command_string_split_like_a_shell(tmp_path):
    loaded = load_config(write(tmp_path, """
        services:
          app: {command: "sh -c 'echo \\"a b\\"' --flag=1"}
          argv: {command: [sh, -c, 1]}
        """), environ=ENV)
    assert loaded.config.services["app"].command == ("sh", "-c", 'echo "a b"', "--flag=1")
    assert loaded.config.services["argv"].command == ("sh", "-c", "1")


def test_env_values_become_strings(tmp_path):
    loaded = load_config(write(tmp_path, """
        services:
          app: {command: sh, env: {DEBUG: true, OFF: false, N: 3, F: 1.5, S: text}}
        """), environ=ENV)
    assert loaded.config.services["app"].env == {
        "DEBUG": "true", "OFF": "false", "N": "3", "F": "1.5", "S": "text"}


def test_numbers_in_argv_and_env_keep_the_text_as_written(tmp_path):
    # YAML 1.1 reads 0755 as 493 and 12:30 as 750: a child must get what the file says,
    # while a number field still gets the number.
    loaded = load_config(write(tmp_path, """
        services:
          app:
            command: [chmod, 0755, f, 1_000, 12:30:00, 0x1F, 1.10, 7]
            env: {MODE: 0755, AT: 12:30, V: 1.10, N: 8080}
            listen: [{port: 0x1F90}]
        environments:
          prod: {services: {app: {env: {MODE: 0640}}}}
        """), environ=ENV)
    app = loaded.config.services["app"]
    assert app.command == ("chmod", "0755", "f", "1_000", "12:30:00", "0x1F", "1.10", "7")
    assert app.env == {"MODE": "0755", "AT": "12:30", "V": "1.10", "N": "8080"}
    assert app.listen[0].port == 8080 and type(app.listen[0].port) is int
    prod = load_config(tmp_path / "services.yaml", env_name="prod", environ=ENV).config
    assert prod.services["app"].env["MODE"] == "0640"


@pytest.mark.parametrize("given, name", [
    ("TERM", "SIGTERM"), ("SIGTERM", "SIGTERM"), ("sigint", "SIGINT"), (9, "SIGKILL"),
    ("'15'", "SIGTERM"), ("HUP", "SIGHUP"), ("QUIT", "SIGQUIT"),
])
def test_stop_signal_normalised(tmp_path, given, name):
    loaded = load_config(write(tmp_path, f"services: {{app: {{command: sh, stop: {{signal: {given}}}}}}}"),
                         environ=ENV)
    assert loaded.config.services["app"].stop.signal == name


def test_interpolated_values_are_coerced(tmp_path):
    loaded = load_config(write(tmp_path, """
        supervisor:
          port: ${API_PORT}
          api_key: ${SUPERVISOR_API_KEY:-}
          exit_on_critical_failure: ${STRICT:-false}
          shutdown_timeout: ${GRACE:-90s}
        services:
          app:
            command: "sh -c ${SCRIPT:-true}"
            enabled: ${APP_ON}
            instances: ${N:-2}
            env: {URL: "http://${HOST:-localhost}:${API_PORT}", LITERAL: "$$HOME"}
        """), environ={**ENV, "API_PORT": "9100", "APP_ON": "true", "STRICT": "1"})
    sup, app = loaded.config.supervisor, loaded.config.services["app"]
    assert (sup.port, sup.api_key, sup.exit_on_critical_failure, sup.shutdown_timeout) == (9100, "", True, 90.0)
    assert app.command == ("sh", "-c", "true") and app.enabled is True and app.instances == 2
    assert app.env == {"URL": "http://localhost:9100", "LITERAL": "$HOME"}


def test_dotenv_beside_the_file_loses_to_the_environment(tmp_path):
    (tmp_path / ".env").write_text("PORT=9200\nNAME=from-dotenv\nONLY_DOTENV=yes\n")
    loaded = load_config(write(tmp_path, """
        supervisor: {port: "${PORT}"}
        services:
          app: {command: sh, env: {NAME: "${NAME}", ONLY: "${ONLY_DOTENV}"}}
        """), environ={**ENV, "NAME": "from-env"})
    assert loaded.config.supervisor.port == 9200
    assert loaded.config.services["app"].env == {"NAME": "from-env", "ONLY": "yes"}
    assert loaded.environ["NAME"] == "from-env" and loaded.environ["ONLY_DOTENV"] == "yes"
    assert loaded.environ["PATH"] == ENV["PATH"]


OVERLAYS = """
supervisor: {port: 8900}
services:
  backend: {command: sh, env: {MODE: dev, KEEP: kept}}
  frontend: {command: sh, depends_on: [backend]}
environments:
  production:
    supervisor: {port: 9000}
    services:
      backend: {env: {MODE: prod}, instances: 2}
      frontend: {enabled: false}
  staging:
"""


def test_overlay_by_env_name_deep_merges(tmp_path):
    loaded = load_config(write(tmp_path, OVERLAYS), env_name="production", environ=ENV)
    assert loaded.env_name == "production"
    cfg = loaded.config
    assert cfg.supervisor.port == 9000
    assert cfg.services["backend"].env == {"MODE": "prod", "KEEP": "kept"}
    assert cfg.services["backend"].instances == 2
    assert cfg.services["frontend"].enabled is False
    assert cfg.services["frontend"].command == ("sh",)


def test_overlay_by_node_env_and_from_dotenv(tmp_path):
    path = write(tmp_path, OVERLAYS)
    assert load_config(path, environ={**ENV, "NODE_ENV": "production"}).config.supervisor.port == 9000
    (tmp_path / ".env").write_text("NODE_ENV=production\n")
    assert load_config(path, environ=ENV).env_name == "production"
    # the environment wins over .env; an explicit name wins over both
    assert load_config(path, environ={**ENV, "NODE_ENV": "staging"}).env_name == "staging"
    assert load_config(path, env_name="staging", environ=ENV).config.supervisor.port == 8900


def test_node_env_without_an_overlay_is_silently_none(tmp_path):
    loaded = load_config(write(tmp_path, OVERLAYS), environ={**ENV, "NODE_ENV": "development"})
    assert loaded.env_name is None and loaded.config.supervisor.port == 8900


def test_unknown_explicit_env_name_is_an_error(tmp_path):
    with pytest.raises(ConfigErrors) as info:
        load_config(write(tmp_path, OVERLAYS), env_name="prodution", environ=ENV)
    (error,) = info.value.errors
    assert error.path == "environments" and error.line == 6
    assert "unknown environment 'prodution' (did you mean 'production'?)" in error.message


def test_config_path_lookup(tmp_path, monkeypatch):
    other = write(tmp_path / "elsewhere", MINIMAL, "custom.yaml")
    write(tmp_path, "services: {here: {command: sh}}")
    assert list(load_config(environ={**ENV, "UNIFIED_CONFIG": str(other)}).config.services) == ["app"]
    monkeypatch.chdir(tmp_path)
    loaded = load_config(environ=ENV)
    assert list(loaded.config.services) == ["here"]
    assert loaded.path == tmp_path / "services.yaml" and loaded.path.is_absolute()
    assert loaded.base_dir == tmp_path


def test_relative_paths_resolve_against_the_config_directory(tmp_path, monkeypatch):
    (tmp_path / "cfg/svc/src").mkdir(parents=True)
    (tmp_path / "cfg/svc.env").write_text("A=1\n")
    path = write(tmp_path / "cfg", """
        supervisor: {state_dir: state}
        services:
          app:
            command: sh
            cwd: svc
            env_file: svc.env
            watch: {paths: [src, /abs]}
        """)
    monkeypatch.chdir(tmp_path)  # a cwd other than the config's directory must not matter
    loaded = load_config(Path("cfg/services.yaml"), environ=ENV)
    app = loaded.config.services["app"]
    base = tmp_path / "cfg"
    assert loaded.config.supervisor.state_dir == base / "state"
    assert app.cwd == base / "svc" and app.env_file == (base / "svc.env",)
    assert app.watch.paths == (base / "svc/src", Path("/abs"))
    assert loaded.path == path


def test_same_file_twice_is_equal_and_frozen(tmp_path):
    path = write(tmp_path, OVERLAYS)
    first, second = load_config(path, environ=ENV), load_config(path, environ=ENV)
    assert first == second and first.config == second.config
    assert first.config.services["backend"] == second.config.services["backend"]
    with pytest.raises(pydantic.ValidationError):
        first.config.services["backend"].enabled = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        first.config = second.config  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.environ["NEW"] = "x"  # type: ignore[index]
    changed = load_config(path, env_name="production", environ=ENV)
    assert changed.config.services["frontend"] != first.config.services["frontend"]
    assert changed.config.services["frontend"].model_copy(update={"enabled": True}) == \
        first.config.services["frontend"]


def test_loaded_config_type(tmp_path):
    loaded = load_config(write(tmp_path, MINIMAL), environ=ENV)
    assert isinstance(loaded, LoadedConfig) and isinstance(loaded.config.services["app"], Service)


def test_resolve_executable_uses_the_childs_path(tmp_path):
    tool = executable(tmp_path / "private-bin", "mytool")
    executable(tmp_path / "work", "run.sh")
    (tmp_path / "work/plain.txt").write_text("")
    own = {"PATH": "/nonexistent"}
    cases = {
        "via_env": {"command": "mytool", "env": {"PATH": str(tmp_path / "private-bin")}},
        "inherited": {"command": "mytool"},
        "not_inherited": {"command": "mytool", "inherit_env": ["HOME"]},
        "via_env_file": {"command": "mytool", "inherit_env": [], "env_file": "path.env"},
        "relative": {"command": "./run.sh", "cwd": "work"},
        "not_executable": {"command": "./plain.txt", "cwd": "work"},
    }
    environ = {"PATH": str(tmp_path / "private-bin")}
    (tmp_path / "path.env").write_text(f"PATH={tmp_path / 'private-bin'}\n")
    context = {"base_dir": tmp_path}
    got = {name: resolve_executable(Service.model_validate(body, context=context),
                                    environ if name != "via_env" else own)
           for name, body in cases.items()}
    assert got == {"via_env": str(tool), "inherited": str(tool), "not_inherited": None,
                   "via_env_file": str(tool),
                   "relative": str(tmp_path / "work/run.sh"), "not_executable": None}


def test_anchors_merge_keys_and_x_extension_fields(tmp_path):
    loaded = load_config(write(tmp_path, """
        x-defaults: &defaults
          command: sh
          restart: {policy: always}
          env: {SHARED: "yes"}
        services:
          one: {<<: *defaults}
          two:
            <<: *defaults
            restart: {policy: never}
        """), environ=ENV)
    one, two = loaded.config.services["one"], loaded.config.services["two"]
    assert one.restart.policy == "always" and two.restart.policy == "never"
    assert one.command == two.command == ("sh",) and two.env == {"SHARED": "yes"}


def test_keys_beyond_spec_parse(tmp_path):
    loaded = load_config(write(tmp_path, """
        supervisor: {parent_death_signal: null}
        services:
          app:
            command: sh
            readiness: {tcp: {port: 8000}, period: 10s, start_interval: 50ms}
        """), environ=ENV)
    assert loaded.config.supervisor.parent_death_signal is None
    readiness = loaded.config.services["app"].readiness
    assert (readiness.period, readiness.start_interval) == (10.0, 0.05)
    loaded = load_config(write(tmp_path, "supervisor: {parent_death_signal: 9}\n" + MINIMAL),
                         environ=ENV)
    assert loaded.config.supervisor.parent_death_signal == "SIGKILL"
