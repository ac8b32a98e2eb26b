"""The stack's processes: redis-server, moto's S3 server, the API and Celery workers, each on a free port (or
none), each waited on until ready and stopped again by its `stop()`.

Two kinds: threads of the caller (`S3Server`, `ApiServer`), cheap and quick for tests, and child processes
logging to a file (`S3Process`, `ApiProcess`, `GunicornApi`, `WorkerProcess`), whose memory, CPU and request
logs are their own.
"""

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


def port_open(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    """GET url answers 2xx (False while the server is not up, or too busy starting to answer in time)."""
    import requests

    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


class RedisServer:
    """A throwaway redis-server on a free port that stops and starts again on the same port.

    It persists nothing, or with ``aof`` keeps an append-only file (`appendfsync everysec`) in ``workdir``, so
    a restart finds the data again.
    """

    def __init__(self, workdir: Path, *, aof: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed; run `make deps` (apt-get install redis-server)"
            )
        self.port = free_port()
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if aof else ["--appendonly", "no"]
        self._args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        # 32 logical databases (Redis' default 16): a test stack that must see no other test's keys takes one.
        self._args += [*persistence, "--dir", str(workdir), "--databases", "32"]
        self._proc: subprocess.Popen | None = None
        self.start()

    def url(self, db: int = 0) -> str:
        """Connection URL for one logical database."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start the server (again) and wait until it listens."""
        self._proc = subprocess.Popen(self._args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port), timeout=20, what="redis-server to listen")

    def stop(self) -> None:
        """SIGTERM (redis fsyncs its AOF, if any, and exits), then wait until the port is free."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=20)
        wait_until(lambda: not port_open(self.port), timeout=10, what="redis-server to stop listening")


class S3Server:
    """moto's S3-compatible HTTP server on a free port, in a thread of the caller."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        wait_until(lambda: port_open(self.port), timeout=20, what="the S3 server to listen")
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


class LoggedProcess:
    """A child process run from the repository root with its output in a log file.

    Subclasses start it with `_start` and name how long `stop` waits after SIGTERM before SIGKILL.
    """

    name = "process"
    grace_s = 10.0

    def _start(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            args, cwd=REPO, env=full_env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def _wait_ready(self, check: Callable[[], bool], *, timeout: float, interval: float = 0.2) -> None:
        """Wait until check() holds; on failure (or exit) stop the process, since no caller can."""
        what = f"the {self.name} to be ready (log: {self.log_path})"
        try:
            wait_until(lambda: self._running() and check(), timeout=timeout, what=what, interval=interval)
        except BaseException:
            self.stop()
            raise

    def _running(self) -> bool:
        if self._proc.poll() is not None:
            raise RuntimeError(f"the {self.name} exited with {self._proc.returncode}:\n{self.log()}")
        return True

    @property
    def pid(self) -> int:
        """The process id."""
        return self._proc.pid

    def wait(self, timeout: float = 30) -> int:
        """Wait for the process to exit; its exit code."""
        return self._proc.wait(timeout=timeout)

    def log(self) -> str:
        """Everything the process has printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers past grace_s."""
        self._proc.terminate()
        try:
            self._proc.wait(timeout=self.grace_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()


class S3Process(LoggedProcess):
    """moto's S3 server in its own process (as deploy/local/stack.sh runs it), on a free port.

    Not `S3Server`, a thread of the caller, where a benchmark is measured: its request log would flood the
    benchmark's output and its requests would share the caller's interpreter lock.
    """

    name = "S3 server"

    def __init__(self, log_path: Path) -> None:
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self._start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], log_path)
        self._wait_ready(lambda: http_ok(self.endpoint), timeout=30)


class ApiProcess(LoggedProcess):
    """The API in its own process, `styleforge api`, on a free port; ready once /readyz answers."""

    name = "API"
    grace_s = 15.0

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._start(self._command(), log_path, env)
        self._wait_ready(lambda: http_ok(f"{self.url}/readyz"), timeout=60)

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "client.cli", "api", "--port", str(self.port)]


class GunicornApi(ApiProcess):
    """The API as deployed: gunicorn with deploy/gunicorn.conf.py (gthread), bound to 127.0.0.1."""

    name = "API under gunicorn"
    grace_s = 35.0  # above the config's graceful_timeout

    def __init__(self, env: dict[str, str], log_path: Path, *, workers: int | None = None) -> None:
        self._workers = workers
        super().__init__(env, log_path)

    def _command(self) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "deploy/gunicorn.conf.py",
            "-b",
            f"127.0.0.1:{self.port}",
        ]
        return args + ([] if self._workers is None else ["--workers", str(self._workers)])


class WorkerProcess(LoggedProcess):
    """`styleforge worker` (a GPU worker), or another Celery command, in its own process."""

    grace_s = 30.0

    def __init__(
        self, env: dict[str, str], log_path: Path, name: str = "w1", command: list[str] | None = None
    ) -> None:
        """Start `command` (default `styleforge worker`) as Celery node `name@host`; wait until ready."""
        self.name = f"worker {name}"
        args = [sys.executable, "-m", *(command or ["client.cli", "worker"]), "--hostname", f"{name}@%h"]
        self._start(args, log_path, {**env, "TF_CPP_MIN_LOG_LEVEL": "2"})
        self._wait_ready(lambda: " ready." in self.log(), timeout=180, interval=0.5)
