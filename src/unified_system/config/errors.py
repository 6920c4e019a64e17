"""ConfigError / ConfigErrors: every problem of a config file, each with its place."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

Loc = tuple[str | int, ...]


def hint(word: str, choices: Collection[str]) -> str:
    """The did-you-mean of an unknown name, or ""."""
    import difflib  # only when a name is wrong; the supervisor imports this module too

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def dotted(loc: Loc) -> str:
    """('services', 'web', 'listen', 0, 'port') -> 'services.web.listen[0].port'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class ConfigError:
    """One problem. line/column are 1-based; 0 means the place is not known."""

    file: str
    line: int
    column: int
    path: str
    message: str
    loc: Loc = ()

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        """For API answers (POST /api/reload -> 422)."""
        return {"file": self.file, "line": self.line, "column": self.column,
                "path": self.path, "message": self.message}


class ConfigErrors(Exception):
    """Raised with every error found in one run, in file order."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors: list[ConfigError] = sorted(
            errors, key=lambda e: (e.file, e.line, e.column, e.path))
        super().__init__(self.errors)  # args stay picklable: ConfigErrors(errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)
