"""Fixtures that run a real brook node for the Python client tests.

The binary comes from $BROOK_BIN (scripts set it to target/release/brook), defaulting to
<repo>/target/release/brook. Every test that asks for `broker` gets a fresh node listening on an
ephemeral port with its own data directory. Settings can be given per test with
`@pytest.mark.brook_opts(**{"log.retention.check.interval.ms": "100"})`.

The node's stderr goes to a file in the test's tmp dir; when a test fails its tail is attached to
the report ("brook stderr" section).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
READY = re.compile(r"^brook node (\S+) ready on (\S+):(\d+)\s*$")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def brook_bin() -> Path:
    return Path(os.environ.get("BROOK_BIN") or REPO / "target" / "release" / "brook")


class BrokerError(RuntimeError):
    pass


class Broker:
    """One brook node process over one data directory, restartable on the same port."""

    def __init__(self, binary: Path, workdir: Path, overrides: dict[str, str] | None = None):
        self.binary = binary
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "brook.stderr.log"
        self.overrides = dict(overrides or {})
        self.proc: subprocess.Popen | None = None
        self.node_id: int | None = None
        self.host: str | None = None
        self.port: int | None = None
        self.starts = 0
        self._lines: queue.Queue = queue.Queue()
        self._log_file = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        if self.host is None:
            raise BrokerError("brook has not been started")
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, port: int = 0) -> None:
        if self.running:
            raise BrokerError("brook is already running")
        cmd = [
            str(self.binary),
            "node",
            "--listeners",
            f"PLAINTEXT://127.0.0.1:{port}",
            "--log-dirs",
            str(self.data_dir),
        ]
        for key, value in self.overrides.items():
            cmd += ["-o", f"{key}={value}"]
        self.starts += 1
        self._log_file = open(self.log_path, "ab", buffering=0)
        self._log_file.write(f"===== start #{self.starts}: {' '.join(cmd)}\n".encode())
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            bufsize=1,
        )
        lines: queue.Queue = queue.Queue()
        self._lines = lines
        proc = self.proc

        def pump() -> None:
            # Keeps draining stdout for the life of the process so it can never block on a pipe.
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name="brook-stdout", daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._abort_start(f"no ready line within {START_TIMEOUT_S:.0f}s; stdout so far: {seen!r}")
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                proc.wait(timeout=5)
                self._abort_start(
                    f"exited with status {proc.returncode} before it was ready; stdout: {seen!r}"
                )
            seen.append(line.rstrip("\n"))
            m = READY.match(line)
            if m:
                self.node_id = int(m.group(1))
                self.host = m.group(2).strip("[]")
                self.port = int(m.group(3))
                return

    def _abort_start(self, why: str) -> None:
        if self.running:
            self.proc.kill()
            self.proc.wait(timeout=10)
        raise BrokerError(f"brook ({self.binary}) {why}\n--- stderr tail ---\n{self.log_tail()}")

    def kill9(self) -> None:
        """SIGKILL the node and reap it: no flush, no goodbye."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._note("killed with SIGKILL")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit within STOP_TIMEOUT_S. Returns the status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
                self._note(f"did not exit within {STOP_TIMEOUT_S:.0f}s of SIGTERM: SIGKILLed")
        self._note(f"exited with status {self.proc.returncode}")
        return self.proc.returncode

    def _note(self, text: str) -> None:
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.write(f"===== {text}\n".encode())

    def restart(self) -> None:
        """Start again over the same data directory and on the same port (clients that were
        connected before can reconnect). Stops the node first (SIGTERM) if it is running."""
        self.stop()
        port = self.port or 0
        last: Exception | None = None
        # The old port can be briefly unavailable; retry it before giving up.
        for _ in range(20):
            try:
                self.start(port=port)
                return
            except BrokerError as e:
                last = e
                if "ready" in str(e) and "exited" not in str(e):
                    raise
                time.sleep(0.25)
        raise BrokerError(f"could not restart brook on port {port}: {last}")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self._log_file is not None:
                self._log_file.close()

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        text = ANSI.sub("", text)
        return "\n".join(text.splitlines()[-lines:])


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "brook_opts(**settings): -o key=value settings for the `broker` fixture"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for b in getattr(item, "_brook_brokers", []):
            report.sections.append(
                (f"brook stderr tail ({b.log_path})", b.log_tail())
            )


@pytest.fixture
def broker(request, tmp_path):
    binary = brook_bin()
    if not binary.exists():
        pytest.fail(f"brook binary not found at {binary} (set BROOK_BIN)", pytrace=False)
    overrides: dict[str, str] = {}
    for mark in reversed(list(request.node.iter_markers("brook_opts"))):
        overrides.update({k: str(v) for k, v in mark.kwargs.items()})
    b = Broker(binary, tmp_path / "brook", overrides)
    request.node._brook_brokers = getattr(request.node, "_brook_brokers", []) + [b]
    b.start()
    try:
        yield b
    finally:
        b.close()
