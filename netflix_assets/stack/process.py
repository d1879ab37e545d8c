"""Process bookkeeping for the stack: pid files, liveness, ports, waiting."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from netflix_assets.stack.errors import StackError


def create_once(path: Path, text: str, mode: int = 0o644) -> str:
    """Writes `text` to `path` unless it exists, and returns what `path` holds. The text goes to
    a draft unique to this call and is hard-linked into place, so a reader never sees the file
    half-written and callers racing each other (threads or processes) all read one value."""
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text()


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int | None, marker: str) -> bool:
    """True when pid runs and its command line contains marker; a recycled pid is not ours."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state = Path(f"/proc/{pid}/stat")
    if state.exists() and ") Z " in state.read_text():
        return False
    return marker in cmdline(pid)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def spawn(
    cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start a detached process (own session, so a Ctrl-C in the caller leaves it running)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    return proc.pid


def terminate(pid: int, timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if the process has not gone after timeout_s."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return check()


def log_tail(log: Path, chars: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return "(no log)"


def run(
    cmd: list[str], what: str, timeout_s: float, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a setup command (initdb, psql, pg_ctl, Maven, Kafka's storage tool) to completion,
    never longer than timeout_s: a hung one (a server that accepts and never answers, a stalled
    download) becomes a StackError naming the step, not a `stack up` that waits forever. The
    command runs in its own process group, which is killed whole (runuser's psql child too).
    A non-zero exit is returned for the caller to explain."""
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(input_text, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise StackError(
            f"{what} did not finish within {timeout_s:.0f}s and was stopped ({cmd[0]}); "
            f"is the service it talks to hung? output so far:\n{(stdout + stderr)[-1500:]}"
        ) from exc
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def stop_daemons(daemons: dict[str, subprocess.Popen], last: str, timeout_s: float) -> None:
    """Stops a cluster's daemons, `last` (its coordinator) after the others: SIGTERM, and
    SIGKILL for one still there after timeout_s. Emptied as it goes."""
    for name in sorted(daemons, key=lambda n: n == last):
        daemon = daemons.pop(name)
        if daemon.poll() is not None:
            continue
        daemon.terminate()
        try:
            daemon.wait(timeout_s)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
