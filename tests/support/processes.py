"""Real processes for end-to-end tests: celery workers, dispatchers, the CLI.

Each process runs in its own session (process group) so a test can SIGKILL it with all its children,
and logs to a file the test can wait on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


class Process:
    """A child process with a log file."""

    def __init__(self, args: list[str], *, env: dict[str, str], log_path: Path, name: str) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - kept open for the process's life
        self.popen = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def log(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, *, timeout: float = 60.0) -> None:
        """Wait until ``text`` appears in the log (fails early if the process exits)."""

        def seen() -> bool:
            if text in self.log():
                return True
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.log()[-4000:]}")
            return False

        wait_until(seen, timeout=timeout, what=f"{text!r} in the log of {self.name}")

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.popen.poll() is None

    def children(self) -> list[int]:
        """Pids of the direct children (the pool processes of a prefork worker)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """SIGKILL the process and all its children at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)
        self._log.close()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # stragglers of the group
        self._log.close()


def celery_worker_args(
    app: str, *, name: str, pool: str = "prefork", concurrency: int = 2, queues: str | None = None
) -> list[str]:
    """The command line of a real ``celery worker``."""
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "-n",
        f"{name}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    if queues:
        args += ["-Q", queues]
    return args


def cli_args(*words: str) -> list[str]:
    """The command line of ``function-runner WORDS...``."""
    return [sys.executable, "-m", "function_runner.cli", *words]
