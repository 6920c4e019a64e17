"""Log rotation and console line framing, on real files."""

import errno

from unified_system.proc.console import LineFramer
from unified_system.proc.logfile import RotatingLog, tail


def test_rotation_keeps_backups_and_bounds_disk(tmp_path):
    log = RotatingLog(tmp_path / "svc.log", max_bytes=1000, backups=3)
    for i in range(100):
        log.write(f"line {i:04d} ".encode() + b"x" * 80 + b"\n")
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["svc.log", "svc.log.1", "svc.log.2", "svc.log.3"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    assert tail(tmp_path / "svc.log", 1)[0].startswith("line 0099")


def test_rotation_without_backups_truncates(tmp_path):
    log = RotatingLog(tmp_path / "svc.log", max_bytes=100, backups=0)
    for _ in range(10):
        log.write(b"y" * 60 + b"\n")
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["svc.log"]
    assert (tmp_path / "svc.log").stat().st_size <= 100


def test_tail_reads_last_lines(tmp_path):
    path = tmp_path / "a.log"
    path.write_text("".join(f"{i}\n" for i in range(50)))
    assert tail(path, 3) == ["47", "48", "49"]
    assert tail(tmp_path / "missing.log", 3) == []


def test_framer_emits_only_whole_prefixed_lines():
    framer = LineFramer(b"svc | ")
    assert framer.frame(b"hel") == b""
    assert framer.frame(b"lo\nwor") == b"svc | hello\n"
    assert framer.frame(b"ld\na\nb\n") == b"svc | world\nsvc | a\nsvc | b\n"
    assert framer.frame(b"tail") == b""
    assert framer.flush() == b"svc | tail\n"


def test_framer_bounds_a_line_without_newline():
    framer = LineFramer(b"p | ")
    out = framer.frame(b"z" * (LineFramer.MAX_PARTIAL + 10))
    assert out.startswith(b"p | zzz") and out.endswith(b"\n")
    assert framer.flush() == b""


def test_a_full_disk_drops_and_counts_output_and_recovers(tmp_path):
    path = tmp_path / "svc.log"
    path.symlink_to("/dev/full")  # every write: ENOSPC
    log = RotatingLog(path, max_bytes=1 << 20, backups=1)
    log.write(b"lost\n")
    log.write(b"lost too\n")
    assert (log.dropped, log.error.errno) == (14, errno.ENOSPC)
    log.close()
    path.unlink()
    log = RotatingLog(path, max_bytes=1 << 20, backups=1)  # space again
    log.write(b"kept\n")
    assert path.read_bytes() == b"kept\n" and log.error is None
    log.close()
