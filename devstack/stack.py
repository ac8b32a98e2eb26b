"""The whole stack as deployed, for benchmarks: redis-server, moto's S3 server in its own process, the API
under gunicorn (`-c deploy/gunicorn.conf.py`: gthread, its workers and threads, access log to a file, as to a
log collector) and optionally a GPU worker, all stopped again when the `running_stack` block ends, errors
included."""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.env import stack_env
from devstack.processes import GunicornApi, RedisServer, S3Process, WorkerProcess


@dataclass(frozen=True)
class Stack:
    """Where the running stack answers, and the environment its processes share."""

    api_url: str
    env: dict[str, str]


@contextmanager
def running_stack(
    workdir: Path, *, bucket: str, worker: bool, api_workers: int | None = None
) -> Iterator[Stack]:
    """Start redis-server, the S3 server, (a GPU worker,) the API; stop them all on leaving, error or not."""
    with ExitStack() as stop:
        redis_server = RedisServer(workdir)
        stop.callback(redis_server.stop)
        s3_server = S3Process(workdir / "s3.log")
        stop.callback(s3_server.stop)
        env = stack_env(redis_server.url(0), s3_server.endpoint, bucket)
        if worker:
            stop.callback(WorkerProcess(env, workdir / "worker.log", name="bench").stop)
        api = GunicornApi(env, workdir / "gunicorn.log", workers=api_workers)
        stop.callback(api.stop)
        yield Stack(api_url=api.url, env=env)
