"""Starting and stopping the stack's processes, by PID, with a PID file each so `devstack down` finds them."""

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A process did not become ready; the message says which and where its log is."""


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    pid_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group, wait for all of it to exit, and SIGKILL what is left. Safe to call twice.

        The whole group, not only the leader: `dapr run` may exit before the daprd processes it started have
        finished shutting down (and left their Kafka consumer groups), and those must not be killed mid-way.
        """
        if self.alive():
            _signal_group(self.pid, signal.SIGTERM)
        if not _wait_for_group_exit(self.pid, self.popen, timeout):
            logger.warning("%s (pid %d) still running %.0f s after SIGTERM: killing", self.name, self.pid, timeout)
            _signal_group(self.pid, signal.SIGKILL)
        self.popen.wait()
        self.pid_path.unlink(missing_ok=True)


def start(
    name: str,
    command: Sequence[str],
    *,
    log_dir: Path,
    pid_dir: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    user: int | None = None,
    group: int | None = None,
) -> ManagedProcess:
    """Start `command` in its own process group, its output appended to `<log_dir>/<name>.log`, as `user`/`group`
    when given (root starting a server that refuses to run as root)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    pid_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(
            list(command),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole, untouched by the caller's Ctrl-C
            user=user,
            group=group,
        )
    pid_path = pid_dir / f"{name}.pid"
    pid_path.write_text(str(popen.pid))
    return ManagedProcess(name, popen, log_path, pid_path)


def run_checked(
    name: str,
    command: Sequence[str],
    *,
    log_dir: Path,
    cwd: Path,
    user: int | None = None,
    group: int | None = None,
    stdin: bytes | None = None,
) -> None:
    """Run a set-up step to completion, its output appended to `<log_dir>/<name>.log`; StartupError if it fails.
    `stdin`, when given, is its standard input (which, unlike its arguments, no other process can read)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log_file:
        completed = subprocess.run(
            list(command), cwd=cwd, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
            stdout=log_file, stderr=subprocess.STDOUT, user=user, group=group, check=False,
        )  # fmt: skip
    if completed.returncode != 0:
        raise StartupError(f"{name} failed (exit {completed.returncode}):\n{tail(log_path)}")


def stop_recorded(pid_dir: Path, timeout: float = 20.0) -> list[str]:
    """Stop every process a PID file names (a stack left running), last started first; returns the names."""
    stopped = []
    for pid_path in sorted(pid_dir.glob("*.pid"), key=lambda path: path.stat().st_mtime, reverse=True):
        pid = int(pid_path.read_text())
        if _group_exists(pid):
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _group_exists(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(pid, signal.SIGKILL)
            stopped.append(pid_path.stem)
        pid_path.unlink()
    return stopped


def wait_until(
    condition: Callable[[], bool], *, what: str, timeout: float, process: ManagedProcess | None = None
) -> None:
    """Poll `condition` until it holds; fail early if `process` exits, and with its log's tail on timeout. A process
    that failed to come up is stopped (its whole group) before the error is raised: nobody else holds it yet."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and not process.alive():
            process.stop()  # the group: what it started may outlive it
            raise StartupError(f"{process.name} exited while waiting for {what}:\n{tail(process.log_path)}")
        if time.monotonic() > deadline:
            log_hint = ""
            if process is not None:
                process.stop()
                log_hint = f"\n{tail(process.log_path)}"
            raise StartupError(f"timed out after {timeout:.0f} s waiting for {what}{log_hint}")
        time.sleep(0.1)


def tail(path: Path, lines: int = 30) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log at {path})"
    return f"--- last lines of {path} ---\n" + "\n".join(content[-lines:])


def _wait_for_group_exit(pgid: int, leader: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader.poll()  # reap the leader, or it lingers as a zombie member of its group
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
