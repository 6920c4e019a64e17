"""Every class of config error, at the right file:line:col, and all of them at once."""

from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import psutil
import pytest

from unified_system.config import ConfigError, ConfigErrors, busy_listen_ports, load_config
from unified_system.config.checks import not_held

ENV = {"PATH": os.environ.get("PATH", os.defpath)}
FIXTURES = Path(__file__).parent / "fixtures" / "config"


def errors_of(tmp_path: Path, text: str, **kwargs) -> list[ConfigError]:
    path = tmp_path / "services.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(ConfigErrors) as info:
        load_config(path, environ=kwargs.pop("environ", ENV), **kwargs)
    return info.value.errors


def one_error(tmp_path: Path, text: str, **kwargs) -> ConfigError:
    errors = errors_of(tmp_path, text, **kwargs)
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def where(error: ConfigError) -> tuple[int, int, str]:
    return error.line, error.column, error.path


def test_error_text_format(tmp_path):
    error = one_error(tmp_path, """
        services:
          app: {command: sh, restart: {policy: sometimes}}
        """)
    assert str(error) == (f"{tmp_path / 'services.yaml'}:2:40: services.app.restart.policy: "
                          "Input should be 'always', 'on-failure' or 'never', got 'sometimes'")


def test_yaml_syntax_error_has_its_line(tmp_path):
    error = one_error(tmp_path, """
        services:
          app:
            command: [sh
            cwd: .
        """)
    assert error.line in (3, 4) and error.message.startswith("YAML syntax error")
    error = one_error(tmp_path, "services:\n  app:\n    command: sh\n   bad: indent\n")
    assert error.line == 4 and "YAML syntax error" in error.message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigErrors) as info:
        load_config(tmp_path / "nope.yaml", environ=ENV)
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: file not found"


@pytest.mark.parametrize("text, expected", [
    ("services:\n  app:\n    command: sh\n    restart:\n      polcy: always\n",
     (5, 7, "services.app.restart.polcy", "unknown key 'polcy' (did you mean 'policy'?)")),
    ("services:\n  app: {command: sh, dependson: [x]}\n",
     (2, 22, "services.app.dependson", "unknown key 'dependson' (did you mean 'depends_on'?)")),
    ("supervisor:\n  log: {levl: INFO}\nservices: {app: {command: sh}}\n",
     (2, 9, "supervisor.log.levl", "unknown key 'levl' (did you mean 'level'?)")),
    ("services:\n  app:\n    command: sh\n    liveness: {tcp: {port: 1}, perod: 2s}\n",
     (4, 32, "services.app.liveness.perod", "unknown key 'perod' (did you mean 'period'?)")),
    ("services:\n  app:\n    command: sh\n    listen: [{port: 1, hots: x}]\n",
     (4, 24, "services.app.listen[0].hots", "unknown key 'hots' (did you mean 'host'?)")),
    ("services:\n  app: {command: sh, zzz: 1}\n",
     (2, 22, "services.app.zzz", "unknown key 'zzz'")),
    ("versio: 1\nservices: {app: {command: sh}}\n",
     (1, 1, "versio", "unknown key 'versio' (did you mean 'version'?)")),
])
def test_unknown_key_with_hint(tmp_path, text, expected):
    error = one_error(tmp_path, text)
    assert (*where(error), error.message) == expected


@pytest.mark.parametrize("body, path, fragment", [
    ("restart: {policy: sometimes}", "restart.policy", "'always', 'on-failure' or 'never', got 'sometimes'"),
    ("limits: {max_memory: 12XB}", "limits.max_memory", "invalid size '12XB'"),
    ("stop: {timeout: -1s}", "stop.timeout", "duration must not be negative, got '-1s'"),
    ("stop: {signal: SIGNOPE}", "stop.signal", "unknown signal 'SIGNOPE'"),
    ("stop: {signal: 999}", "stop.signal", "unknown signal number 999"),
    ("instances: 0", "instances", "greater than or equal to 1, got 0"),
    ("listen: [{port: 70000}]", "listen[0].port", "less than or equal to 65535, got 70000"),
    ("heartbeat: {timeout: 10s, hard_timeout: 5s}", "heartbeat.hard_timeout",
     "hard_timeout (5s) must be greater than timeout (10s)"),
    ("readiness: {period: 1s}", "readiness", "exactly one of http, tcp, exec, notify (got none)"),
    ("readiness: {tcp: {port: 1}, http: {url: 'http://x'}}", "readiness",
     "exactly one of http, tcp, exec, notify (got http and tcp)"),
    ("liveness: {notify: true}", "liveness.notify", "notify is allowed for readiness probes only"),
    ("startup: {notify: true}", "startup.notify", "notify is allowed for readiness probes only"),
    ("liveness: {tcp: {port: 1}, start_interval: 10ms}", "liveness.start_interval",
     "start_interval is for readiness probes only"),
    ("readiness: {tcp: {port: 1}, start_interval: 0s}", "readiness.start_interval", "greater than 0"),
    ("readiness: {http: {url: 'localhost:80'}}", "readiness.http.url", "must start with http://"),
    ("restart: {backoff: {jitter: 2}}", "restart.backoff.jitter", "less than or equal to 1"),
    ("depends_on: {db: {condition: ready}}", "depends_on.db.condition", "got 'ready'"),
    ("enabled: maybe", "enabled", "valid boolean, unable to interpret input, got 'maybe'"),
    ("env: {A: }", "env.A", "null value"),
    ("checkpoint: {keep: 0}", "checkpoint.keep", "greater than or equal to 1"),
    ("listen: [{port: 8080, host: ''}]", "listen[0].host", "at least 1 character"),
    ("readiness: {tcp: {port: 1, host: ''}}", "readiness.tcp.host", "at least 1 character"),
])
def test_bad_values(tmp_path, body, path, fragment):
    error = one_error(tmp_path, f"services:\n  app:\n    command: sh\n    {body}\n")
    assert error.path == f"services.app.{path}" and error.line == 4
    assert fragment in error.message, error.message


def test_missing_command_and_empty_command(tmp_path):
    errors = errors_of(tmp_path, """
        services:
          nocmd: {cwd: .}
          empty: {command: []}
          blank: {command: ""}
        """)
    assert [(e.line, e.path) for e in errors] == [
        (2, "services.nocmd.command"), (3, "services.empty.command"), (4, "services.blank.command")]
    assert errors[0].message == "missing required key 'command'"


def test_missing_executable_on_childs_path(tmp_path):
    errors = errors_of(tmp_path, """
        services:
          app:
            command: no-such-program-xyz --flag
            build: {command: [also-missing-xyz]}
            readiness: {exec: {command: "missing-probe-xyz"}}
          private:
            command: [sh]
            env: {PATH: /nonexistent}
          local: {command: ./start.sh}
        """)
    assert [(e.line, e.column, e.path) for e in errors] == [
        (3, 14, "services.app.command[0]"), (4, 23, "services.app.build.command[0]"),
        (5, 33, "services.app.readiness.exec.command[0]"), (7, 15, "services.private.command[0]"),
        (9, 20, "services.local.command[0]")]
    assert errors[0].message == f"executable 'no-such-program-xyz' not found on the child's PATH ({ENV['PATH']})"
    assert "(/nonexistent)" in errors[3].message
    assert errors[4].message == f"executable './start.sh' does not exist ({tmp_path / './start.sh'})"


def test_missing_cwd_and_env_file(tmp_path):
    (tmp_path / "file").write_text("")
    errors = errors_of(tmp_path, """
        services:
          a: {command: sh, cwd: missing/dir}
          b: {command: sh, cwd: file}
          c: {command: sh, env_file: [nope.env]}
          off: {command: no-such-program-xyz, cwd: missing, enabled: false}
        """)
    assert [(e.line, e.path, e.message) for e in errors] == [
        (2, "services.a.cwd", f"cwd '{tmp_path / 'missing/dir'}' does not exist"),
        (3, "services.b.cwd", f"cwd '{tmp_path / 'file'}' is not a directory"),
        (4, "services.c.env_file[0]", f"env_file '{tmp_path / 'nope.env'}' does not exist"),
    ]


def test_an_unreadable_env_file_is_an_error_not_a_traceback(tmp_path):
    (tmp_path / "bad.env").write_bytes(b"A=1\nB=\xff\n")
    error = one_error(tmp_path, "services:\n  c: {command: sh, env_file: [bad.env]}\n")
    assert (error.line, error.path) == (2, "services.c.env_file[0]")
    assert error.message == f"cannot read '{tmp_path / 'bad.env'}': not UTF-8 text (byte 0xff at offset 6)"
    (tmp_path / ".env").write_bytes(b"\xfe")  # the .env beside services.yaml
    error = one_error(tmp_path, "services: {}\n")
    assert error.file == str(tmp_path / ".env")
    assert error.message == "cannot read: not UTF-8 text (byte 0xfe at offset 0)"


def test_unknown_and_disabled_dependencies(tmp_path):
    errors = errors_of(tmp_path, """
        services:
          backend: {command: sh}
          bot: {command: sh, depends_on: [backend, bakend]}
          web:
            command: sh
            depends_on:
              off: {condition: healthy}
          off: {command: sh, enabled: false}
        """)
    assert [(e.line, e.column, e.path, e.message) for e in errors] == [
        (3, 44, "services.bot.depends_on.bakend", "unknown dependency 'bakend' (did you mean 'backend'?)"),
        (7, 7, "services.web.depends_on.off", "depends on disabled service 'off'"),
    ]


def test_cycle_named_as_a_path_each_once():
    with pytest.raises(ConfigErrors) as info:
        load_config(FIXTURES / "cycle.yaml", environ=ENV)
    assert [(e.line, e.path, e.message) for e in info.value.errors] == [
        (4, "services.a.depends_on.b", "dependency cycle: a -> b -> c -> a"),
        (7, "services.selfish.depends_on.selfish", "dependency cycle: selfish -> selfish"),
    ]


def test_duplicate_listen_ports(tmp_path):
    errors = errors_of(tmp_path, """
        supervisor: {port: 8900}
        services:
          a: {command: sh, listen: [{port: 8000}, {port: 8001, host: 0.0.0.0}]}
          b: {command: sh, listen: [{port: 8000, host: 127.0.0.1}]}
          c: {command: sh, listen: [{port: 8001, host: 10.0.0.1}, {port: 8000, host: 10.0.0.1}]}
          d: {command: sh, listen: [{port: 8900}]}
          e: {command: sh, readiness: {tcp: {port: 8000}}}
          off: {command: sh, enabled: false, listen: [{port: 8000}]}
        """)
    assert [(e.line, e.path, e.message) for e in errors] == [
        (4, "services.b.listen[0].port", "port 8000 on 127.0.0.1 is already claimed by services.a.listen[0]"),
        (5, "services.c.listen[0].port", "port 8001 on 10.0.0.1 is already claimed by services.a.listen[1]"),
        (6, "services.d.listen[0].port",
         "port 8900 on 127.0.0.1 is already claimed by the control API (supervisor.port)"),
    ]


@pytest.mark.parametrize("name", ["-lead", "has space", "a/b", "x" * 64, "é"])
def test_bad_service_name(tmp_path, name):
    error = one_error(tmp_path, f"services:\n  '{name}': {{command: sh}}\n")
    assert (error.line, error.column) == (2, 3) and error.path == f"services.{name}"
    assert repr(name) in error.message


def test_good_service_names(tmp_path):
    path = tmp_path / "services.yaml"
    names = ["a", "A1", "9lives", "web.v2", "my_svc-1", "x" * 63]
    path.write_text("services:\n" + "".join(f"  '{n}': {{command: sh}}\n" for n in names))
    assert list(load_config(path, environ=ENV).config.services) == names


def test_required_variable_error_has_file_and_line(tmp_path):
    errors = errors_of(tmp_path, """
        supervisor:
          api_key: ${SUPERVISOR_API_KEY:?set SUPERVISOR_API_KEY in .env}
        services:
          app: {command: sh, listen: [{port: "${PORT:?}"}]}
        """)
    assert [(e.line, e.column, e.path, e.message) for e in errors] == [
        (2, 12, "supervisor.api_key",
         "required variable SUPERVISOR_API_KEY is missing a value: set SUPERVISOR_API_KEY in .env"),
        (4, 38, "services.app.listen[0].port", "required variable PORT is missing a value"),
    ]


def test_overlay_errors_point_into_the_overlay(tmp_path):
    errors = errors_of(tmp_path, """
        services:
          app: {command: sh}
        environments:
          production:
            services:
              app: {restart: {policy: sometimes}}
        """, env_name="production")
    assert [(e.line, e.path) for e in errors] == [(6, "services.app.restart.policy")]


@pytest.mark.parametrize("depth", [100, 600, 5000])
def test_absurd_nesting_is_an_error_not_a_traceback(tmp_path, depth):
    error = one_error(tmp_path, "services: {}\nx-deep: " + "[" * depth + "]" * depth + "\n")
    assert (error.line, error.message) == (2, "nested more than 64 levels deep")


def test_structure_errors(tmp_path):
    assert one_error(tmp_path, "- a\n- b\n").message == "expected a mapping with 'services' at the top level"
    assert one_error(tmp_path, "version: 1\n").message == "missing required key 'services'"
    assert one_error(tmp_path, "version: 2\nservices: {}\n").path == "version"
    error = one_error(tmp_path, "services:\n  app: {command: sh}\n  app: {command: sh}\n")
    assert (error.line, error.message) == (3, "duplicate key 'app' (first at line 2)")
    assert one_error(tmp_path, "services:\n  app:\n").message == "expected a mapping, got None"
    error = one_error(tmp_path, "supervisor: {host: ''}\nservices: {}\n")  # an unset ${HOST}
    assert (error.path, error.line) == ("supervisor.host", 1) and "at least 1 character" in error.message
    error = one_error(tmp_path, "supervisor: {state_dir: ''}\nservices: {}\n")
    assert (error.path, error.message) == ("supervisor.state_dir", "state_dir must not be empty")
    error = one_error(tmp_path, "supervisor: {notify: {events: [fatal, fatall]}}\nservices: {}\n")
    assert error.message == "unknown event 'fatall' (did you mean 'fatal'?)"
    error = one_error(tmp_path, "supervisor: {notify: {webhooks: [example.com]}}\nservices: {}\n")
    assert error.message == "url must start with http:// or https://, got 'example.com'"
    (tmp_path / "services.yaml").write_text("version: '${V:-1}'\nservices: {}\n")  # coerced after ${}
    assert load_config(tmp_path / "services.yaml", environ=ENV).config.version == 1


def test_one_file_with_many_errors_reports_all_of_them():
    path = FIXTURES / "many_errors.yaml"
    with pytest.raises(ConfigErrors) as info:
        load_config(path, environ={"PATH": "/usr/bin:/bin"})
    got = [(e.line, e.path) for e in info.value.errors]
    assert got == [
        (3, "supervisor.port"),
        (4, "supervisor.log.levl"),
        (9, "services.backend.restart.polcy"),
        (15, "services.bot.restart.policy"),
        (18, "services.node.limits.max_memory"),
        (19, "services.node.heartbeat.timeout"),
        (21, "services.ghost.command[0]"),
        (24, "services.lost.cwd"),
        (27, "services.needy.depends_on.backnd"),
        (30, "services.twin.listen[0].port"),
        (31, "services.Bad_Name!"),
        (33, "services.loop1.depends_on.loop2"),
    ]
    text = str(info.value)
    assert text.count("\n") == len(got) - 1
    assert text.splitlines()[0].startswith(f"{path}:3:9: supervisor.port: ")


def test_busy_listen_port_names_the_holder(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        path = tmp_path / "services.yaml"
        path.write_text(f"services:\n  app:\n    command: sh\n    listen: [{{port: {port}}}]\n"
                        f"  off: {{command: sh, enabled: false, listen: [{{port: {port}}}]}}\n")
        loaded = load_config(path, environ=ENV)  # load_config itself does not bind
        (error,) = busy_listen_ports(loaded)
        assert (error.line, error.column, error.path) == (4, 21, "services.app.listen[0].port")
        me = psutil.Process()
        assert error.message == f"port {port} on 127.0.0.1 is in use by pid {me.pid} ({me.name()})"
        assert len(busy_listen_ports(loaded.config)) == 1
    finally:
        holder.close()
    assert busy_listen_ports(loaded) == []


def test_a_reload_forgives_only_the_ports_each_service_already_holds(tmp_path):
    path = tmp_path / "services.yaml"
    path.write_text("services:\n  web: {command: sh, listen: [{port: 8080}]}\n"
                    "  api: {command: sh, listen: [{port: 80}, {port: 8081}]}\n")
    config = load_config(path, environ=ENV).config

    def busy(name: str, index: int) -> ConfigError:
        return ConfigError(str(path), 0, 0, "", f"port {config.services[name].listen[index].port} is in use",
                           ("services", name, "listen", index, "port"))

    errors = [busy("web", 0), busy("api", 0), busy("api", 1)]
    # web holds 8080 itself; api's 80 is new, though "80" is in web's message; api's 8081 is
    # held, but by web: a port moves between services only once its old holder is gone
    assert not_held(errors, config, {("web", 8080), ("web", 8081)}) == errors[1:]
    assert not_held(errors, config, set()) == errors
