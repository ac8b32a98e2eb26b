"""Start real servers for tests: redis-server, moto's S3 server, the API over HTTP, a Celery worker."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll check() until it is true, or fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A throwaway redis-server on a free port, persisting nothing."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed; run `make deps` (apt-get install redis-server)"
            )
        self.port = free_port()
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(lambda: _port_open(self.port), timeout=20, what="redis-server to listen")

    def url(self, db: int = 0) -> str:
        """Connection URL for one logical database."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        """Terminate the server."""
        self._proc.terminate()
        self._proc.wait(timeout=10)


class S3Server:
    """moto's S3-compatible HTTP server on a free port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        wait_until(lambda: _port_open(self.port), timeout=20, what="the S3 server to listen")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server thread."""
        self._server.stop()


class ApiServer:
    """The Flask app served over real HTTP from a background thread."""

    def __init__(self, app) -> None:
        from werkzeug.serving import make_server

        self.port = free_port()
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Shut the server down."""
        self._server.shutdown()


class WorkerProcess:
    """`styleforge worker` in its own process, logging to a file tests can read."""

    def __init__(
        self, env: dict[str, str], log_path: Path, name: str = "w1", command: list[str] | None = None
    ) -> None:
        """Start `command` (default: `styleforge worker`, a GPU worker) and wait until Celery says ready."""
        self.log_path = log_path
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        args = [sys.executable, "-m", *(command or ["client.cli", "worker"]), "--hostname", f"{name}@%h"]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            args, cwd=REPO, env=full_env, stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_until(self._ready, timeout=180, what=f"the worker to be ready (log: {log_path})", interval=0.5)

    def _ready(self) -> bool:
        if self._proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self._proc.returncode}:\n{self.log()}")
        return " ready." in self.log()

    @property
    def pid(self) -> int:
        """The worker's process id (the solo pool runs jobs in this very process)."""
        return self._proc.pid

    def wait(self, timeout: float = 30) -> int:
        """Wait for the process to exit; its exit code."""
        return self._proc.wait(timeout=timeout)

    def log(self) -> str:
        """Everything the worker has printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Warm shutdown, then kill if it lingers."""
        self._proc.terminate()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
