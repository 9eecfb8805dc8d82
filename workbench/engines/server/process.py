"""A server process of one trial: started on 127.0.0.1 and a free port, watched until ready, stopped.

The server is a child of the trial worker in its own process group, with PR_SET_PDEATHSIG, so
kill -9 of `tune` kills the worker (the executor's death signal) and the worker's death kills the
server: no server outlives a study. Its output goes to `server.log` in the trial folder; a server
that exits at start, dies or hangs fails only its trial, with the last lines of that log as cause.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from workbench.types import EngineError


class ServerError(EngineError):
    """The server exited, never became ready, or stopped answering."""

    kind = "engine_error"


class ServerTimeout(ServerError):
    kind = "timeout"


def free_port() -> int:
    """A port nobody listens on now (the kernel's choice for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Nobody listens on the port (closed connections in TIME_WAIT do not hold it: a server reuses it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    """In the server: the kernel kills it when the worker dies, even by kill -9."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback URLs only
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read() if e.fp else b""
    except (OSError, ValueError):
        return 0, b""


class ServerProcess:
    """One server: `start`, `wait_ready`, `check_alive`, `stop`; its log is kept for failures."""

    def __init__(self, command: list[str], port: int, log_path: Path, env: dict[str, str] | None = None):
        self.command, self.port, self.log_path = command, port, log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing after this returns
        logf.write(("$ " + " ".join(self.command) + "\n").encode())
        logf.flush()
        try:
            self.proc = subprocess.Popen(
                self.command,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except OSError as e:
            raise ServerError(f"the server could not be started ({e}): {' '.join(self.command)}") from e
        finally:
            logf.close()

    def check_alive(self, what: str = "the server") -> None:
        """Raise with the log's tail when the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            rc = self.proc.returncode
            how = f"was killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}"
            raise ServerError(f"{what} {how}; last lines of {self.log_path.name}:\n{tail(self.log_path)}")

    def wait_ready(
        self, health_path: str, timeout_s: float, probe: Callable[[], None] | None = None
    ) -> float:
        """Poll health until 200, then run `probe` (one real request); return the seconds it took."""
        t0 = time.monotonic()
        url = self.base_url + health_path
        while True:
            self.check_alive("the server")
            status, _ = http_get(url)
            if status == 200:
                break
            if time.monotonic() - t0 > timeout_s:
                raise ServerTimeout(
                    f"the server did not become ready within {timeout_s:g} s (GET {health_path} gave "
                    f"{status or 'no answer'}); last lines of {self.log_path.name}:\n{tail(self.log_path)}"
                )
            time.sleep(0.2)
        if probe is not None:
            try:
                probe()
            except Exception as e:
                self.check_alive("the server")
                raise ServerError(
                    f"the server answered {health_path} but failed its first request ({e}); last lines of "
                    f"{self.log_path.name}:\n{tail(self.log_path)}"
                ) from e
        return time.monotonic() - t0

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM the server's process group, SIGKILL what is left after `grace_s`; wait for the port."""
        proc = self.proc
        if proc is None:
            return None
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children that ignored the leader's exit
        deadline = time.monotonic() + 10
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        return proc.returncode
