"""Issue 20: what stays resident in a running supervisor. The modules it has imported, read
from the process itself (tests/children/modules_dump.py writes sys.modules on SIGUSR2), are
held to an allowlist, so that a heavy import (pydantic, structlog with asyncio, httpx, rich)
cannot creep back into the process that runs for weeks. Measured in bench/RESULTS.md
("Footprint"); this test checks names, never sizes or times."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx

from harness import CHILDREN, ROOT, SupervisorProcess, free_port, wait_until

sys.path.insert(0, str(ROOT / "bench"))
from _cleanpy import clean_python  # noqa: E402

# This sandbox's site hook imports certifi, tempfile, shutil, urllib... into every
# interpreter, which would hide those imports here: the supervisor runs on a Python that
# starts as a user's does (bench/_cleanpy.py), so nothing is taken for the site's own.
PY = clean_python()

# Top-level modules a running supervisor may hold beyond what a bare interpreter of this
# machine starts with (its site may import more: those are allowed too, as found below).
# Each was measured (bench/RESULTS.md "Footprint"); add to it only with a figure.
ALLOWED = frozenset("""
    unified_system __future__
    http urllib binascii
    json _json copy dataclasses inspect dis opcode _opcode ast _ast
    token tokenize linecache traceback textwrap string _string
    logging concurrent queue _queue threading subprocess _posixsubprocess select selectors
    socket _socket array fcntl mmap resource signal errno pwd
    ctypes _ctypes heapq _heapq locale _locale glob gc
    h11
    urllib ipaddress random bisect fnmatch
    collections contextlib copyreg enum functools importlib keyword math operator re reprlib
    struct types typing warnings weakref pathlib ntpath
    _bisect _random _sha512 _struct _typing _weakrefset
""".split())
# The third and fourth lines: what a bare interpreter holds here but its site's hook loads
# (a user's interpreter loads them for us). ipaddress: urllib.parse imports it (Python
# 3.11.4 on), and the API's routes and the http probes parse URLs with it. random: the
# backoff's jitter. fnmatch: the file watch's ignores.
# What must never be resident: each was, before issue 20, or would be by an easy mistake.
FORBIDDEN = ("pydantic", "pydantic_core", "annotated_types", "structlog", "asyncio", "rich",
             "pygments", "httpx", "httpcore", "anyio", "yaml", "dotenv", "watchdog",
             "prometheus_client", "wsgiref", "psutil", "email", "socketserver",
             "ssl", "hashlib", "hmac", "secrets",   # these four map OpenSSL
             "html", "datetime",                    # 0.45, 0.35 MB for an error page, a crash
                                                    # dump's name
             "tempfile", "shutil",                  # 0.9 MB with bz2, lzma, zlib: one temp
                                                    # file and one private dir (issue 20, 4th)
             # 0.6 MB with logging.handlers (which imports it), 0.43 MB, 0.14, 0.1 MB: the
             # config child's answer, `run`'s argv, python_info, a token (issue 20, third round)
             "pickle", "logging.handlers", "argparse", "gettext", "platform", "base64")


def bare_modules() -> set[str]:
    out = subprocess.run([PY, "-c", "import sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in out.split()}


class Dumping(SupervisorProcess):
    """`run` through tests/children/modules_dump.py: the same main(), plus a SIGUSR2 dump."""

    def start(self) -> Dumping:
        self.dump = self.dir / "modules.txt"
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([PY, str(CHILDREN / "modules_dump.py"), "run",
                                      "-c", str(self.config_path)],
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     env={**self.env, "MODULES_DUMP": str(self.dump)}, cwd=self.dir)
        return self

    def modules(self) -> set[str]:
        if self.dump.exists():
            self.dump.unlink()
        os.kill(self.proc.pid, signal.SIGUSR2)
        wait_until(self.dump.exists, 10, "the module list")
        return set(self.dump.read_text().split())


def test_a_running_supervisor_imports_only_the_allowlist(tmp_path):
    port = free_port()
    config = f"""
        services:
          web:
            command: ["{{py}}", "{{children}}/http_health.py", "{port}", "{tmp_path}/fail"]
            readiness: {{http: {{url: "http://127.0.0.1:{port}/health"}}, period: 200ms}}
            liveness: {{tcp: {{port: {port}}}, period: 200ms}}
          sleeper:
            command: ["{{py}}", "{{children}}/sleeper.py"]
            depends_on: {{web: {{condition: healthy}}}}
    """
    with Dumping(tmp_path, config) as sup:
        sup.wait_state("sleeper", "running", timeout=30)
        # The late modules (API, metrics, sampler) are loaded. Not wait_api(): its GET
        # /api/diagnostics imports psutil, as it may, on first use.
        wait_until(lambda: any(r.get("event") == "control API listening" for r in sup.records()),
                   30, "the control API")
        assert httpx.get(sup.api_url + "/metrics", timeout=10).status_code == 200
        # a reload validates in a helper process: pydantic stays out of this one
        answer = httpx.post(sup.api_url + "/api/reload", headers=sup.auth(), timeout=30)
        assert answer.status_code == 200, answer.text
        names = sup.modules()
        assert sup.stop() == 0
    tops = {name.split(".")[0] for name in names} - bare_modules()   # this machine's site's own
    assert not tops & set(FORBIDDEN), sorted(tops & set(FORBIDDEN))
    submodules = {name for name in FORBIDDEN if "." in name}   # logging.handlers
    assert not names & submodules, sorted(names & submodules)
    extra = tops - ALLOWED - set(sys.builtin_module_names)
    assert not extra, f"imported by the resident supervisor, not in the allowlist: {sorted(extra)}"
