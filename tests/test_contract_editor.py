"""The editor's view: the real yaml-language-server (what VS Code's YAML extension, Neovim and
Helix run) reads services.yaml's modeline, loads docs/services.schema.json, and flags the
mistakes `check` refuses, while the repository's services.yaml gets no diagnostic at all."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from harness import ROOT, wait_until

EDITOR = ROOT / "tests" / "editor"
SERVER = EDITOR / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
MODELINE = "# yaml-language-server: $schema=docs/services.schema.json\n"

pytestmark = pytest.mark.skipif(
    not SERVER.exists() or shutil.which("node") is None,
    reason="yaml-language-server not installed: (cd tests/editor && npm ci), as .ci/run does")


class LanguageServer:
    """A minimal LSP client over stdio: requests, notifications, and the server's messages."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(["node", str(SERVER), "--stdio"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=root)
        self.messages: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}
        self._ids = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            headers: dict[str, str] = {}
            while (line := out.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            if not headers:
                return
            message = json.loads(out.read(int(headers["content-length"])))
            if message.get("method") == "textDocument/publishDiagnostics":
                self.diagnostics[message["params"]["uri"]] = message["params"]["diagnostics"]
            elif message.get("method") == "workspace/configuration":
                items = message["params"]["items"]
                self._send({"id": message["id"], "result": [self.settings() for _ in items]})
            elif "id" in message and "method" in message:   # other requests: no opinion
                self._send({"id": message["id"], "result": None})
            self.messages.put(message)

    @staticmethod
    def settings() -> dict[str, Any]:
        return {"validate": True, "completion": True, "hover": True,
                "schemaStore": {"enable": False}, "schemas": {}}

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any], timeout: float = 60) -> Any:
        self._ids += 1
        ident = self._ids
        self._send({"id": ident, "method": method, "params": params})
        seen: list[dict[str, Any]] = []

        def answered() -> dict[str, Any] | None:
            while not self.messages.empty():
                message = self.messages.get()
                if message.get("id") == ident and "method" not in message:
                    return message
                seen.append(message)
            return None
        return wait_until(answered, timeout, f"an answer to {method}", seen=lambda: seen[-3:])

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send({"method": method, "params": params})

    def open(self, path: Path) -> str:
        uri = path.as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "yaml", "version": 1, "text": path.read_text()}})
        return uri

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.request("shutdown", {}, timeout=10)
                self.notify("exit", {})
                self.proc.wait(10)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def editor(tmp_path):
    """A project as a user has it: services.yaml files beside docs/services.schema.json."""
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "services.schema.json", tmp_path / "docs")
    server = LanguageServer(tmp_path)
    try:
        server.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(),
                                      "capabilities": {"workspace": {"configuration": True},
                                                       "textDocument": {"publishDiagnostics": {}}}})
        server.notify("initialized", {})
        server.notify("workspace/didChangeConfiguration", {"settings": {"yaml": server.settings()}})
        yield server, tmp_path
    finally:
        server.close()


def diagnostics_of(server: LanguageServer, uri: str) -> list[dict[str, Any]]:
    wait_until(lambda: uri in server.diagnostics, 60, f"diagnostics for {uri}",
               seen=lambda: list(server.diagnostics))
    return server.diagnostics[uri]


def test_the_editor_flags_what_check_refuses_and_passes_services_yaml(editor):
    server, project = editor
    bad = project / "bad.yaml"
    bad.write_text(MODELINE + "version: 1\nservices:\n  web:\n    command: [sh]\n"
                   "    restart: {polcy: always, window: 10 seconds}\n    instances: many\n")
    found = diagnostics_of(server, server.open(bad))
    said = " ".join(d["message"] for d in found)
    assert "polcy" in said, found
    lines = {d["range"]["start"]["line"] for d in found}
    assert {5, 6} <= lines, found   # the restart line and the instances line (0-based)
    assert any("10 seconds" in d["message"] or d["range"]["start"]["character"] > 30 for d in found), found

    good = project / "services.yaml"
    text = (ROOT / "services.yaml").read_text()
    assert text.startswith(MODELINE)
    good.write_text(text)
    assert diagnostics_of(server, server.open(good)) == []
