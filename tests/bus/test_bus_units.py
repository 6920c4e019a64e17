"""Pure parts of the bus, by tables: the launcher's argv and config quoting, the fill subject."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from harness import ROOT

from .support import BOT_DIR  # noqa: F401  (puts the bot's package on sys.path)

spec = importlib.util.spec_from_file_location("nats_launch", ROOT / "services" / "nats" / "launch.py")
assert spec and spec.loader
launch = importlib.util.module_from_spec(spec)
sys.modules["nats_launch"] = launch
spec.loader.exec_module(launch)

from trading_bot.bus import subject  # noqa: E402


@pytest.mark.parametrize("flags, env, tail", [
    (["-js"], {}, ["-js"]),
    (["-js"], {"CHECKPOINT_DIR": "/s"}, ["-js", "-sd", "/s"]),
    (["-js", "-sd", "/mine"], {"CHECKPOINT_DIR": "/s"}, ["-js", "-sd", "/mine"]),   # the flag wins
    (["-js", "-c", "my.conf"], {"NATS_TOKEN": "t"}, ["-js", "-c", "my.conf"]),        # the user's config wins
])
def test_server_argv(flags, env, tail):
    assert launch.server_argv("/bin/nats-server", flags, env) == ["/bin/nats-server", *tail]


def test_a_token_becomes_a_0600_config_and_no_argument(tmp_path):
    argv = launch.server_argv("nats-server", ["-js"], {"CHECKPOINT_DIR": str(tmp_path), "NATS_TOKEN": "s3cret"})
    assert argv[-2:] == ["-c", str(tmp_path / "config" / "auth.conf")] and "s3cret" not in argv
    assert (tmp_path / "config" / "auth.conf").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("value, literal", [
    ("plain", '"plain"'),
    ('q"uote', '"q\\"uote"'),
    ("back\\slash", '"back\\\\slash"'),
    ("nl\ntab\tcr\r", '"nl\\ntab\\tcr\\r"'),
    ("bell\x07", '"bell\\x07"'),
    ("$NATS {x}", '"$NATS {x}"'),
])
def test_config_quoting(value, literal):
    assert launch.quoted(value) == literal


@pytest.mark.parametrize("symbol, subj", [
    ("SIM", "fills.SIM"), ("BTC-USD", "fills.BTC-USD"), ("a.b*>c d", "fills.a_b__c_d"), ("", "fills._"),
])
def test_fill_subject_has_one_token_whatever_the_symbol(symbol, subj):
    assert subject(symbol) == subj
