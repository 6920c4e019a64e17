"""The running supervisor's copy of the config: records made in another process, read
like the models, equal when the models are, and never pydantic in the supervisor itself."""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from harness import SupervisorProcess
from unified_system.config import ConfigErrors, load_config
from unified_system.config.apart import forked, helper_argv, helper_env, read_answer
from unified_system.config.loader import as_records
from unified_system.config.view import ConfigRecord, ProbeRecord, Record, replace

ENV = {"PATH": os.environ.get("PATH", os.defpath)}
CONFIG = """
supervisor:
  port: 8911
services:
  db:
    command: ["sleep", "60"]
    env: {A: "1"}
    readiness: {tcp: {port: 5432}}
    listen: [{port: 5433}]
  web:
    command: ["sleep", "60"]
    depends_on: {db: {condition: healthy}}
    watch: {paths: [src]}
    liveness: {exec: {command: ["true"]}}
"""


def write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def walk_equal(model: object, record: object) -> None:
    """Every field of the model reads the same on the record, all the way down."""
    for name in type(model).model_fields:  # type: ignore[attr-defined]
        got, want = getattr(record, name), getattr(model, name)
        if isinstance(want, BaseModel):
            walk_equal(want, got)
        elif isinstance(want, dict):
            assert list(got) == list(want), name
            for key in want:
                if isinstance(want[key], BaseModel):
                    walk_equal(want[key], got[key])
                else:
                    assert got[key] == want[key] and type(got[key]) is type(want[key]), (name, key)
        elif isinstance(want, tuple) and want and isinstance(want[0], BaseModel):
            for a, b in zip(want, got, strict=True):
                walk_equal(a, b)
        else:
            assert got == want and type(got) is type(want), name


def test_records_read_like_the_models(tmp_path):
    loaded = load_config(write(tmp_path), environ=ENV)
    records = as_records(loaded)
    walk_equal(loaded.config, records.config)
    assert isinstance(records.config, ConfigRecord)
    assert list(records.config.enabled()) == ["db", "web"]
    db, web = records.config.services["db"], records.config.services["web"]
    assert isinstance(db.readiness, ProbeRecord) and db.readiness.kind == "tcp"
    assert web.liveness.kind == "exec" and web.watch.paths == (tmp_path / "src",)
    assert (records.path, records.env_name, dict(records.environ)) == \
        (loaded.path, loaded.env_name, dict(loaded.environ))


def test_records_are_frozen_equal_by_value_and_pickle(tmp_path):
    path = write(tmp_path)
    one, two = as_records(load_config(path, environ=ENV)), as_records(load_config(path, environ=ENV))
    assert one.config == two.config and one.config.services["web"] == two.config.services["web"]
    assert one.config.services["db"] != one.config.services["web"]
    with pytest.raises(AttributeError, match="frozen"):
        one.config.services["db"].command = ("x",)
    with pytest.raises(AttributeError, match="no field 'nope'"):
        one.config.nope  # noqa: B018
    again = pickle.loads(pickle.dumps(one))
    assert again == one and again.environ["PATH"] == ENV["PATH"]
    with pytest.raises(TypeError):
        again.environ["X"] = "1"  # type: ignore[index]


def test_replace_on_records_and_models(tmp_path):
    loaded = load_config(write(tmp_path), environ=ENV)
    records = as_records(loaded)
    web = records.config.services["web"]
    changed = replace(records.config, services={"web": web})
    assert list(changed.services) == ["web"] and list(records.config.services) == ["db", "web"]
    assert isinstance(changed, ConfigRecord)
    assert list(replace(loaded.config, services={}).services) == []   # the pydantic model too
    with pytest.raises(AttributeError, match="no field"):
        web.replace(colour="red")
    assert Record({"a": 1}) != ProbeRecord({"a": 1})   # the kind of record is part of its value


def test_forked_returns_records_while_this_process_works(tmp_path):
    path = write(tmp_path)
    seen: list[int] = []
    got = forked(lambda: load_config(path, environ=ENV), lambda answered: seen.append(os.getpid()))
    assert seen == [os.getpid()]   # `meanwhile` ran here, not in the child
    assert got == as_records(load_config(path, environ=ENV))
    assert "pydantic" not in type(got.config).__module__


def test_forked_tells_this_process_when_the_child_has_answered(tmp_path):
    path = write(tmp_path)
    polls: list[bool] = []

    def meanwhile(answered) -> None:   # as `run` does: more work only while the child is busy
        deadline = time.monotonic() + 30
        while not answered():
            polls.append(False)
            assert time.monotonic() < deadline, "the child never answered"
            select.select([], [], [], 0.005)
        polls.append(True)

    assert forked(lambda: load_config(path, environ=ENV), meanwhile).config.services["db"]
    assert polls[-1] is True


def test_forked_passes_an_exit_code_and_a_crash_through(tmp_path, capfd):
    assert forked(lambda: 2, lambda answered: None) == 2
    assert forked(lambda: 1 / 0, lambda answered: None) == 1
    assert "ZeroDivisionError" in capfd.readouterr().err


def test_reload_helper_answers_records_or_every_error(tmp_path):
    path = write(tmp_path)
    done = subprocess.run(helper_argv(path, None), env=helper_env(), capture_output=True,
                          cwd=tmp_path, timeout=60)
    loaded, busy = read_answer(done.returncode, done.stdout, done.stderr)
    assert loaded.config == as_records(load_config(path)).config and busy == []
    write(tmp_path, CONFIG.replace("depends_on: {db:", "depends_on: {dbb:").replace("8911", "x"))
    done = subprocess.run(helper_argv(path, None), env=helper_env(), capture_output=True,
                          cwd=tmp_path, timeout=60)
    with pytest.raises(ConfigErrors) as caught:
        read_answer(done.returncode, done.stdout, done.stderr)
    messages = [f"{e.line}: {e.path}: {e.message}" for e in caught.value.errors]
    assert any(m.startswith("3: supervisor.port") for m in messages), messages
    assert any("dbb" in m and "did you mean 'db'" in m for m in messages), messages


def test_reload_helper_failure_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match=r"config helper failed \(exit 1\): .*Boom"):
        read_answer(1, b"", b"Traceback...\nBoom: it broke\n")


def test_the_running_supervisor_never_loads_pydantic(tmp_path):
    with SupervisorProcess(tmp_path, """
        services:
          a:
            command: ["{py}", "{children}/sleeper.py"]
            readiness: {exec: {command: ["true"]}}
    """) as sup:
        sup.wait_state("a", "running")
        sup.wait_api()
        # pydantic_core is a shared library: mapped into any process that imported it
        assert "pydantic" not in Path(f"/proc/{sup.proc.pid}/maps").read_text()
        assert sup.stop() == 0


# --- pydantic plugins never see the config ---------------------------------------------

SPY = """
import os
from pathlib import Path

Path(os.environ["SPY_MARKER"]).write_text("loaded")


class _Plugin:
    def new_schema_validator(self, *args, **kwargs):
        return None, None, None


plugin = _Plugin()
"""


def spy_plugin(tmp_path: Path) -> dict[str, str]:
    """An installed pydantic plugin (an entry point in group `pydantic`) that leaves a
    marker file when pydantic loads it; the environment that makes it visible."""
    site = tmp_path / "site"
    dist = site / "spy_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: spy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pydantic]\nspy = spyplugin:plugin\n")
    (site / "spyplugin.py").write_text(SPY)
    search = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": search, "SPY_MARKER": str(tmp_path / "marker")}


@pytest.mark.parametrize("setting", [None, "logfire"])
def test_pydantic_plugins_never_see_the_config_and_the_environment_is_kept(
        tmp_path: Path, setting: str | None) -> None:
    # A plugin is handed every value validated: api_key and env secrets included.
    env = spy_plugin(tmp_path)
    env.pop("PYDANTIC_DISABLE_PLUGINS", None)
    if setting is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = setting
    marker = tmp_path / "marker"
    model = "from pydantic import BaseModel\nclass M(BaseModel):\n    x: int\n"
    subprocess.run(["python", "-c", model], env=env, check=True, timeout=60)
    assert marker.exists(), "the spy plugin is visible to pydantic"
    marker.unlink()
    path = write(tmp_path, "supervisor: {api_key: s3cret}\nservices:\n  a: {command: [sleep, '1']}\n")
    check = ("import os, sys\nfrom unified_system.config import load_config\n"
             "load_config(sys.argv[1])\nprint(os.environ.get('PYDANTIC_DISABLE_PLUGINS'))\n")
    out = subprocess.run(["python", "-c", check, str(path)], env=env, check=True, timeout=60,
                         capture_output=True, text=True).stdout
    assert not marker.exists()
    assert out.strip() == str(setting)
