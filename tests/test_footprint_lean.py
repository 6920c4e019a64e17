"""Issue 20, third round: what was taken out of the resident supervisor keeps behaving as the
stdlib code it replaced. `run`'s plain options are parsed without argparse (as argparse
parses them, else argparse does it); the config child's answer crosses in marshal form
instead of pickle; the log files rotate without logging.handlers (which imports pickle);
the python_info metric comes from sys instead of platform; tokens use binascii instead of
base64. tests/test_footprint.py holds the running supervisor to the smaller module list."""

from __future__ import annotations

import base64
import platform
import subprocess
from pathlib import Path

import pytest

from harness import PY
from unified_system import cli
from unified_system.api.exposition import python_info
from unified_system.config import ConfigErrors, load_config, wire
from unified_system.config.apart import detached
from unified_system.tokens import token_urlsafe

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [
    [], ["run"], ["-c", "x.yaml"], ["run", "-c", "x.yaml"], ["-c", "x.yaml", "run"],
    ["--config", "x.yaml", "run", "--only", "a,b", "--verbose"], ["run", "--config=x.yaml"],
    ["--env", "production", "run"], ["run", "--only=web", "--env=prod"],
    ["run", "-c", "run"], ["run", "--verbose", "-c", "a b.yaml"],
])
def test_plain_run_is_parsed_as_argparse_parses_it(argv):
    plain = cli._plain_run(argv)
    args = cli._parser().parse_args(argv)
    assert (args.command or "run") == "run"
    assert plain is not None
    assert {k: plain.get(k) for k in ("config", "env", "only")} == {
        k: getattr(args, k, None) for k in ("config", "env", "only")}
    assert (plain.get("verbose") is True) == getattr(args, "verbose", False)


@pytest.mark.parametrize("argv", [
    ["-h"], ["run", "--help"], ["status"], ["run", "--verb"], ["--conf", "x"], ["-cx.yaml"],
    ["-c=x.yaml"], ["--verbose"], ["--only", "a"], ["run", "-c"], ["run", "-c", "-x"],
    ["run", "-c", "a", "-c", "b"], ["run", "run"], ["run", "--verbose=1"], ["run", "--config="],
    ["run", "--", "x"], ["check"], ["run", "extra"], ["--env", "a", "run", "--env", "b"],
])
def test_anything_else_goes_to_argparse(argv):
    assert cli._plain_run(argv) is None


def test_a_plain_run_imports_neither_argparse_nor_gettext(tmp_path):
    """`run` with a config that fails validation returns after parsing: what is imported
    by then is what parsing took."""
    bad = tmp_path / "services.yaml"
    bad.write_text("services:\n  web: {command: 5}\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from unified_system import cli; "
            "rc = cli.main(['run', '-c', sys.argv[2]]); "
            "print(sorted(m for m in ('argparse', 'gettext', 'pickle', 'logging.handlers') "
            "if m in sys.modules)); print(rc)")
    out = subprocess.run([PY, "-I", "-c", code, str(ROOT / "src"), str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[:2] == ["[]", str(cli.EXIT_CONFIG)], out


def test_the_config_crosses_the_wire_equal(tmp_path):
    for path in [ROOT / "services.yaml", *sorted((ROOT / "tests/fixtures").rglob("*.yaml"))]:
        try:
            loaded = load_config(path)
        except ConfigErrors as exc:
            answer = ("errors", exc.errors)
            assert wire.loads(wire.dumps(answer)) == answer
            continue
        records = detached(loaded)
        back = wire.loads(wire.dumps(("ok", records, [])))
        assert back[0] == "ok" and back[1] == records and back[1].config == records.config
        assert dict(back[1].environ) == dict(records.environ)


@pytest.mark.parametrize("value", [{1, 2}, object(), 1j])
def test_the_wire_refuses_what_it_cannot_carry(value):
    with pytest.raises(TypeError):
        wire.dumps({"services": {"a": value}})


def test_python_info_is_what_platform_says():
    assert python_info() == (platform.python_implementation(), platform.python_version(),
                             platform.python_version_tuple())


def test_tokens_are_urlsafe_base64_without_padding():
    for n in (1, 2, 3, 24, 32):
        token = token_urlsafe(n)
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == n
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_which_answers_as_shutil_which(tmp_path):
    import os
    import shutil

    from unified_system.proc.which import which

    tool = tmp_path / "bin" / "tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    plain = tmp_path / "bin" / "plain"
    plain.write_text("")                       # not executable
    (tmp_path / "bin" / "adir").mkdir(mode=0o755)   # executable, but a directory
    paths = [None, "", str(tool.parent), f"{tmp_path}/none:{tool.parent}:{tool.parent}",
             os.defpath, f":{tool.parent}"]
    for cmd in ("tool", "plain", "adir", "sh", "sleep", "no-such-program", str(tool), str(plain),
                "bin/tool", "./tool"):
        for path in paths:
            assert which(cmd, path=path) == shutil.which(cmd, path=path), (cmd, path)
