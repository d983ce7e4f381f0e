"""A process that never became ready is not left behind: `wait_until` stops it (its whole group) before it raises,
since the caller never got hold of it (a `dapr run` that timed out once stayed up and held the stack's ports)."""

import sys
from pathlib import Path

import psutil
import pytest
from devstack.processes import StartupError, start, wait_until

NEVER_READY = [
    sys.executable,
    "-c",
    "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; time.sleep(600)'])",
]
"""A process that starts a child of its own and never gets ready, as `dapr run` starts its daprd."""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_process_that_never_gets_ready_is_stopped_with_what_it_started(tmp_path: Path) -> None:
    process = start("never-ready", NEVER_READY, log_dir=tmp_path, pid_dir=tmp_path, cwd=tmp_path)
    children: set[int] = set()

    def ready() -> bool:
        children.update(child.pid for child in psutil.Process(process.pid).children(recursive=True))
        return False

    with pytest.raises(StartupError, match="timed out after 3 s waiting for readiness"):
        wait_until(ready, what="readiness", timeout=3, process=process)

    assert children  # the child had started before the deadline
    assert not process.alive()
    assert [pid for pid in children if not gone(pid)] == []
