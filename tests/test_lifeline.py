"""The guard that signals the services when the supervisor dies, even by SIGKILL."""

import signal

import psutil

from harness import SupervisorProcess, wait_until


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def guards(sup) -> list[psutil.Process]:
    """By its command line, there from its exec (it names itself unified-guard a little later)."""
    found = []
    for proc in psutil.Process(sup.proc.pid).children():
        try:
            if any(arg.endswith(("proc/guard.py", "proc/guard.sh")) for arg in proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def family(tmp_path) -> str:
    return f"""
        services:
          fam:
            command: ["{{py}}", "{{children}}/family.py", "{tmp_path}/grandchild.pid"]
          plain:
            command: ["{{py}}", "{{children}}/sleeper.py"]
    """


def grandchild(tmp_path) -> int:
    path = tmp_path / "grandchild.pid"
    return int(wait_until(lambda: path.exists() and path.read_text(), what="the grandchild's pid"))


def test_a_killed_supervisor_takes_its_services_and_their_groups_with_it(tmp_path):
    sup = SupervisorProcess(tmp_path, family(tmp_path)).start()
    try:
        fam, plain = sup.wait_state("fam", "running")["pid"], sup.wait_state("plain", "running")["pid"]
        grand = grandchild(tmp_path)
        assert len(guards(sup)) == 1
        sup.proc.kill()
        sup.proc.wait(5)
        # SIGTERM to each group: PR_SET_PDEATHSIG would have reached fam and plain, not grand
        wait_until(lambda: gone(fam) and gone(plain) and gone(grand), 5, "the services to die")
    finally:
        sup.close()


def test_no_guard_without_a_parent_death_signal(tmp_path):
    with SupervisorProcess(tmp_path, family(tmp_path), supervisor="parent_death_signal: null") as sup:
        sup.wait_state("plain", "running")
        wait_until(lambda: not guards(sup), what="the unneeded guard to exit")
        assert sup.stop() == 0


def test_a_lost_guard_does_not_stop_supervision(tmp_path):
    with SupervisorProcess(tmp_path, family(tmp_path)) as sup:
        plain = sup.wait_state("plain", "running")["pid"]
        grandchild(tmp_path)
        guard = guards(sup)[0]
        guard.kill()
        psutil.Process(plain).send_signal(signal.SIGKILL)   # a restart writes to the dead guard
        sup.wait_state("plain", "running", count=2)
        assert sup.stop() == 0
