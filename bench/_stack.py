"""The real stack for benchmarks: redis-server, moto's S3 server, the API under gunicorn, and optionally a GPU
worker, on loopback and free ports, all stopped again when the `running_stack` block ends (errors included).

The API runs as deployed: `gunicorn -c deploy/gunicorn.conf.py` (gthread, its workers and threads), bound to
127.0.0.1; its access log goes to a file, as it would to a log collector.
"""

import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/x.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO))

BUCKET = "sf-bench"


@dataclass(frozen=True)
class Stack:
    """Where the running stack answers, and the environment its processes share."""

    api_url: str
    env: dict[str, str]


class GunicornApi:
    """The API under gunicorn with deploy/gunicorn.conf.py, bound to 127.0.0.1 on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path, *, workers: int | None = None) -> None:
        from tests.servers import free_port, wait_until

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        args = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "-b", f"127.0.0.1:{port}"]
        args += [] if workers is None else ["--workers", str(workers)]
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            args, cwd=REPO, env=full_env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            wait_until(self._ready, timeout=60, what=f"gunicorn to answer /readyz (log: {log_path})")
        except BaseException:
            self.stop()  # the caller never gets an object to stop
            raise

    def _ready(self) -> bool:
        import requests

        if self._proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self._proc.returncode}; see its log")
        try:
            return requests.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except requests.RequestException:  # not up yet, or too busy starting to answer in time
            return False

    def stop(self) -> None:
        """SIGTERM (gunicorn's graceful stop), then kill if it lingers."""
        _terminate(self._proc, grace_s=35)  # above the config's graceful_timeout
        self._log.close()


class S3Process:
    """moto's S3 server in its own process (as deploy/local/stack.sh runs it), logging to a file.

    Not tests.servers.S3Server, a thread of the caller: its request log would flood the benchmark's output and
    its requests would share the benchmark process's interpreter lock (and, in job_overhead, its TensorFlow).
    """

    def __init__(self, log_path: Path) -> None:
        from tests.servers import free_port, wait_until

        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        self._proc = subprocess.Popen(args, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_until(self._ready, timeout=30, what=f"the S3 server to answer (log: {log_path})")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        import requests

        if self._proc.poll() is not None:
            raise RuntimeError(f"the S3 server exited with {self._proc.returncode}; see its log")
        try:
            return requests.get(self.endpoint, timeout=2).ok
        except requests.RequestException:  # not up yet, or too busy starting to answer in time
            return False

    def stop(self) -> None:
        """Terminate the server."""
        _terminate(self._proc, grace_s=10)
        self._log.close()


def _terminate(proc: subprocess.Popen, *, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after grace_s."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stack_environment(redis_url: str, s3_endpoint: str) -> dict[str, str]:
    """The integration tests' settings (seeded random weights, test credentials), the benchmark's bucket."""
    from tests.conftest import stack_env

    return stack_env(redis_url, s3_endpoint, BUCKET)


@contextmanager
def running_stack(workdir: Path, *, worker: bool, api_workers: int | None = None) -> Iterator[Stack]:
    """Start redis-server, the S3 server, (a GPU worker,) the API; stop them all on leaving, error or not."""
    from tests.servers import RedisServer, WorkerProcess

    with ExitStack() as stop:
        redis_server = RedisServer(workdir)
        stop.callback(redis_server.stop)
        s3_server = S3Process(workdir / "s3.log")
        stop.callback(s3_server.stop)
        env = stack_environment(redis_server.url(0), s3_server.endpoint)
        if worker:
            stop.callback(WorkerProcess(env, workdir / "worker.log", name="bench").stop)
        api = GunicornApi(env, workdir / "gunicorn.log", workers=api_workers)
        stop.callback(api.stop)
        yield Stack(api_url=api.url, env=env)


def median_ms(seconds: list[float]) -> float:
    """Median of durations in seconds, in milliseconds."""
    return statistics.median(seconds) * 1000
