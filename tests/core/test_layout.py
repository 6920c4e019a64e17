"""The owner's shape, held: no module in core/ over 300 lines (a concern that outgrows that
is cut in two, as lifecycle was into breaker.py and rollout.py), and no owner.py base."""

from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "unified_system" / "core"


def test_no_module_in_core_exceeds_300_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in CORE.glob("*.py")}
    assert sizes and not {name: n for name, n in sizes.items() if n > 300}


def test_the_owner_has_no_shared_base_class():
    assert not (CORE / "owner.py").exists()
    assert "Mixin" not in "".join(p.read_text() for p in CORE.glob("*.py"))
