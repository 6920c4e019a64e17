"""Issue 16, item 3: rotated child logs went past max_bytes (1 MB gave 1,048,320-byte files):
after rotating, the copy and splice paths moved a whole chunk into the fresh file.
Now no file passes its limit; a line longer than a whole file is cut, and marked."""

import pytest

from harness import SupervisorProcess, wait_until
from unified_system.proc.logfile import SPLICE_TAIL

CUT = b" [line cut here: longer than the log's max_bytes]\n"


@pytest.mark.parametrize("max_bytes", [10_000, 100_000, 1_000_000], ids=["10KB", "100KB", "1MB"])
def test_a_flood_never_takes_a_log_file_past_max_bytes(tmp_path, max_bytes):
    total = 12 * max_bytes + (4 << 20)   # the 10 KB case too sees 1 MiB blocks and the splice path
    with SupervisorProcess(tmp_path, f"""
        services:
          flood:
            command: ["{{py}}", "{{children}}/flood_lines.py", "{total}", "{max_bytes * 3 // 2}",
                      "{total - 3 * max_bytes}"]
    """, supervisor=f"log: {{max_bytes: {max_bytes}, backups: 6}}") as sup:
        sup.wait_state("flood", "running", timeout=60)
        logs = sup.state_dir / "logs"

        def done() -> bool:
            try:   # between exists() and the read, a rotation may rename the file
                return b"flood done" in (logs / "flood.log").read_bytes()
            except FileNotFoundError:
                return False
        wait_until(done, 120, "the flood to end", seen=lambda: sorted(p.name for p in logs.glob("flood.log*")))
        files = list(logs.glob("flood.log*"))
        sizes = {p.name: p.stat().st_size for p in files}
        assert max(sizes.values()) <= max_bytes, sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
        data = {p.name: p.read_bytes() for p in files}
        # A cut the supervisor makes (when it copies) is marked, at the very end of a full file
        cut = [d for d in data.values() if CUT in d]
        assert all(d.endswith(CUT) and len(d) == max_bytes for d in cut), [(len(d), d[-80:]) for d in cut]
        if max_bytes <= SPLICE_TAIL:   # always copied, never spliced: the long line is cut here
            assert cut
        assert sup.stop() == 0
