"""Running the real CLI in a subprocess and checking its refusals: shared by the CLI input tests.

:func:`cli` runs each command in its own process, forked from a warm server (``warm_cli_server.py``)
that has torch imported already: the same ``snn_perception.cli.main`` with the same arguments,
working folder, environment and exit code as ``python -m snn_perception.cli``, without paying the
~1.2 s torch import hundreds of times per suite. :func:`cold_cli` starts a fresh interpreter, for
the checks that are about the interpreter's start itself; ``test_cli_run`` holds the two equal.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

SERVER = Path(__file__).with_name("warm_cli_server.py")
#: seconds a server may take to import torch and the verbs before it is given up on
START_TIMEOUT = 120.0


def _command(argv: list[str]) -> list[str]:
    """The command line a user types, as both runners report it."""
    return [sys.executable, "-m", "snn_perception.cli", *argv]


def _decode(data: bytes) -> str:
    """Text as a terminal would get it: a ``\\r`` stays a ``\\r`` (``text=True`` would turn it into
    ``\\n``, hiding exactly the progress-bar redraws some tests look for)."""
    return data.decode("utf-8", errors="replace")


class _Server:
    """One warm server process; serves one command at a time."""

    def __init__(self) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="warm_cli_", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self._expect("ready", START_TIMEOUT)

    def _expect(self, key: str, timeout: float) -> dict:
        reply: list[str] = []
        reader = threading.Thread(target=lambda: reply.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not reply or not reply[0]:
            self.close()
            log = Path(self.log.name).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the warm CLI server stopped answering (no {key!r}); its log:\n{log}")
        return json.loads(reply[0])

    def run(self, argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="cli_") as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            request = {
                "argv": argv,
                "cwd": str(Path(cwd).resolve()),
                "env": dict(os.environ),
                "out": str(out),
                "err": str(err),
                "timeout": timeout,
            }
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            reply = self._expect("rc", timeout + 60)
            stdout = _decode(out.read_bytes()) if out.exists() else ""
            stderr = _decode(err.read_bytes()) if err.exists() else ""
        command = _command(argv)
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr)
        return subprocess.CompletedProcess(command, reply["rc"], stdout, stderr)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


_idle: list[_Server] = []
_every: list[_Server] = []
_lock = threading.Lock()


def _take() -> _Server:
    """An idle server, or a new one: threads running commands side by side each get their own."""
    with _lock:
        if _idle:
            return _idle.pop()
    server = _Server()
    with _lock:
        _every.append(server)
    return server


@atexit.register
def _close_all() -> None:
    for server in _every:
        server.close()


def cli(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m snn_perception.cli ARGS`` in ``cwd``, the way a user meets it (forked warm)."""
    server = _take()
    try:
        result = server.run(list(map(str, args)), Path(cwd), timeout)
    except BaseException:
        server.close()  # its state is unknown now: the next command gets a fresh one
        raise
    with _lock:
        _idle.append(server)
    return result


def cold_cli(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """The same command in a fresh interpreter (``subprocess.run``), output decoded as :func:`cli` does."""
    proc = subprocess.run(
        _command(list(map(str, args))),
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, _decode(proc.stdout), _decode(proc.stderr))


def snapshot(root: Path) -> dict[Path, bytes]:
    """Every file under ``root`` with its bytes: equal before and after means nothing was touched."""
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def refused(proc: subprocess.CompletedProcess, *words: str, one_line: bool = False) -> None:
    """Exit code 2 and an error holding ``words``, without a traceback (``one_line``: and nothing else)."""
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], err)
    assert "Traceback" not in err, err
    if one_line:
        assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    for word in words:
        assert word in err, (word, err)
