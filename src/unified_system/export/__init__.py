"""Deployment exporters: `export systemd` (a unit file) and `export kubernetes` (manifests).

`run_export(kind, loaded, out_dir)` writes the files and returns their paths; without
out_dir they go to `<directory of services.yaml>/deploy/<kind>/`. Anything the target
cannot express raises ExportError with a message for the operator.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from unified_system.config.loader import LoadedConfig
from unified_system.export.common import ExportError

__all__ = ["KINDS", "ExportError", "default_out_dir", "run_export"]

KINDS = ("systemd", "kubernetes")


def default_out_dir(kind: str, loaded: LoadedConfig) -> Path:
    return loaded.base_dir / "deploy" / kind


class _Dumper(yaml.SafeDumper):
    """No &id001 anchors for the label maps shared by a Deployment and its pods."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _yaml_file(header: list[str], docs: list[dict]) -> str:
    body = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         width=100)
    return "".join(f"# {line}\n".replace("# \n", "#\n") for line in header) + body


def render(kind: str, loaded: LoadedConfig, image: str | None = None) -> dict[str, str]:
    """{file name: text} for `kind`, without touching the disk."""
    if kind == "systemd":
        from unified_system.export.systemd import UNIT_NAME, render_unit

        return {UNIT_NAME: render_unit(loaded)}
    if kind == "kubernetes":
        from unified_system.export.kubernetes import DEFAULT_IMAGE, leaked_secrets, manifests

        env = f" --env {loaded.env_name}" if loaded.env_name else ""
        documents = manifests(loaded, image or DEFAULT_IMAGE)
        # name secrets.example.yaml only when it is written
        apply = ("Apply: kubectl apply -f <this directory> after creating the Secrets "
                 "(secrets.example.yaml)." if "secrets.example.yaml" in documents
                 else "Apply: kubectl apply -f <this directory>.")
        header = [f"Written by `unified-system export kubernetes{env}` from {loaded.path}.",
                  apply,
                  "In a pod, services must listen on 0.0.0.0, not 127.0.0.1: loopback binds and "
                  "--fd/fd:// arguments are rewritten (docs/deploy.md).",
                  "What has no Kubernetes equivalent: the unified-system.io/notes annotation.",
                  ""]
        secrets_header = ["Example Secrets: fill in the values and apply, or create them with",
                          "  kubectl create secret generic NAME --from-literal=KEY=value",
                          "Never commit a filled-in copy.", ""]
        files = {name: _yaml_file(secrets_header if name == "secrets.example.yaml" else header,
                                  docs)
                 for name, docs in documents.items()}
        # both forms: YAML may fold a long value across lines, JSON never does
        leaks = leaked_secrets(loaded, "".join(files.values()) +
                               json.dumps(documents, ensure_ascii=False))
        if leaks:  # a secret's value inlined somewhere (a URL, an argument): refuse
            raise ExportError(f"the value of {', '.join(leaks)} would be written into the "
                              f"manifests; reference it only through the variable")
        return files
    raise ExportError(f"unknown export kind {kind!r}: choose one of {', '.join(KINDS)}")


def run_export(kind: str, loaded: LoadedConfig, out_dir: Path | None = None, *,
               image: str | None = None) -> list[Path]:
    """Write the `kind` export into out_dir (default: default_out_dir) and list the files."""
    files = render(kind, loaded, image)  # everything is rendered before anything is written
    target = Path(out_dir) if out_dir is not None else default_out_dir(kind, loaded)
    try:
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in files.items():
            path = target / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise ExportError(f"cannot write into {target}: {exc}") from None
    return written
