"""Plain command lines, parsed without argparse, to the values argparse would give.

argparse (with the gettext it imports) costs a client command ~10 ms and the resident
supervisor ~0.3 MB. So `run` and the client commands read a plain command line here, and
hand anything else to argparse, whose help and error messages stay the only ones: an
abbreviation, a joined short option (`-cFILE`), `-c=FILE`, `--`, a repeated option, an
empty value or one that starts with `-`, an unknown word. Being strict costs nothing: what
is refused here is parsed by argparse, never answered differently.
"""

from __future__ import annotations

TYPE_CHECKING = False   # typing costs a client ~15 ms to import; mypy knows this name
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# An option: (its dest, whether it takes a value, whether it may come before the command word).
Option = tuple[str, bool, bool]


def parse(argv: Sequence[str], command: str, options: Mapping[str, Option], *,
          names: int = 0, implied: bool = False) -> dict[str, object] | None:
    """`argv` as argparse parses `command` with `options` and `names` positional words
    after it (found["names"]), if the line is plain; None for anything else. `implied`:
    the command word may be left out (`run` is the default command)."""
    found: dict[str, object] = {}
    words: list[str] = []
    after = False
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if not token.startswith("-"):
            if token == command and not after:
                after = True
            elif after:
                words.append(token)
            else:
                return None
            continue
        name, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
        option = options.get(name)
        if option is None:
            return None
        dest, takes_value, anywhere = option
        if dest in found or not (after or anywhere):
            return None
        if not takes_value:
            if eq:
                return None
            found[dest] = True
            continue
        if not eq:
            if i >= len(argv):
                return None
            value, i = argv[i], i + 1
        if not value or value.startswith("-"):
            return None
        found[dest] = value
    if not (after or implied) or len(words) != names:
        return None
    found["names"] = words
    return found


def text(found: Mapping[str, object], dest: str) -> str | None:
    """An option's value, or None when it was not given."""
    value = found.get(dest)
    return value if isinstance(value, str) else None
