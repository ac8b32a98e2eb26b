"""Two GPU workers on one machine (one TensorFlow thread each) share one batch; then one gets kill -9 and
another SIGTERM, each in the middle of a job. Nothing is lost, each interrupted job resumes from its
checkpoint on another worker, and the exact backlog equals the truth at every sample and is empty at the end.

Every wait is on an observed state (a job running on a named worker at a step), never on a sleep.
"""

import os
import re
import signal
import threading
import time
from dataclasses import dataclass

import pytest
import redis
import requests

from devstack.env import stack_env
from devstack.processes import ApiServer, wait_until
from shared import keys
from shared.store import build_job_store
from tests.chaos.stack import WorkerPool
from tests.integration.helpers import png_bytes, sets_and_truth, wait_for_terminal

pytestmark = pytest.mark.integration

STEPS = 30
# A job is interrupted between these steps: well after its first checkpoint, well before its end.
WINDOW = (6, 20)
KILL_BY = 12  # the killed job resumes at or before this step: its next attempt still passes through WINDOW
WORKER_ENV = {
    "STYLEFORGE_TF_THREADS": "1",  # 2 workers on 2 cores: one thread each, as a deployment would set
    "STYLEFORGE_CHECKPOINT_EVERY": "3",  # by steps, not seconds: the resume points are deterministic
    "STYLEFORGE_CHECKPOINT_EVERY_S": "0",
    "STYLEFORGE_LEASE_S": "2",  # a killed worker's job is requeued within seconds
    "STYLEFORGE_REAPER_INTERVAL_S": "0.5",
    "STYLEFORGE_SHUTDOWN_GRACE_S": "20",
}


@dataclass(frozen=True)
class Running:
    """A job seen running: who runs it, how far it is, and where this attempt resumed."""

    job_id: str
    worker: str
    step: int
    checkpoint_step: int
    attempt: int
    resumed_from_step: int


FIELDS = ["status", "worker", "step", "checkpoint_step", "attempt", "resumed_from_step"]


class Stack:
    """The API, two workers (a pool that can lose and replace them) and a view of their Redis."""

    def __init__(self, redis_server, s3_server, log_dir) -> None:
        env = {**stack_env(redis_server.url(10), s3_server.endpoint, "sf-two"), **WORKER_ENV}
        self.client = redis.Redis.from_url(env["STYLEFORGE_REDIS_URL"], decode_responses=True)
        self.client.flushdb()
        from api import create_app
        from shared.config import Settings

        self.settings = Settings.from_env(env)
        self.store = build_job_store(self.settings)
        self.pool = WorkerPool(env, log_dir, size=2)
        self.api = ApiServer(create_app(self.settings))

    def running(self, job_ids) -> list[Running]:
        """The given jobs that are running now, read in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(keys.job_key(job_id), FIELDS)
        return [
            Running(job_id, worker, *(int(value or 0) for value in numbers))
            for job_id, (status, worker, *numbers) in zip(job_ids, pipe.execute(), strict=True)
            if status == "running" and worker
        ]

    def worker_of(self, job: Running):
        """The pool's process that runs ``job`` (its holder is host:pid:nonce), or None if it left."""
        return self.pool.by_pid(int(job.worker.split(":")[1]))

    def stop(self) -> None:
        self.api.stop()
        self.pool.stop()
        self.client.flushdb()


@pytest.fixture(scope="module")
def stack(redis_server, s3_server, tmp_path_factory):
    started = Stack(redis_server, s3_server, tmp_path_factory.mktemp("two"))
    yield started
    started.stop()


class Watcher:
    """Samples, until stopped: whether the backlog sets equal the truth, and which worker ran which job."""

    def __init__(self, stack: Stack, job_ids: list[str]) -> None:
        self.exact: list[bool] = []
        self.ran_on: set[tuple[str, str]] = set()
        self._stack, self._ids, self._stop = stack, job_ids, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            held, live = sets_and_truth(self._stack.store, self._ids)
            self.exact.append(held == live)
            self.ran_on |= {(job.job_id, job.worker) for job in self._stack.running(self._ids)}
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def submit_batch(api_url: str, items: int) -> list[str]:
    files = [("content", (f"set/{n}.png", png_bytes(32, 24, (60 * n, 90, 160)))) for n in range(items)]
    files.append(("style", ("style.png", png_bytes(32, 32, (20, 200, 90)))))
    form = {"preset": "seed", "steps": str(STEPS), "max_dim": "32"}
    batch = requests.post(f"{api_url}/v1/batches", files=files, data=form, timeout=30).json()
    return [item["job_id"] for item in batch["items"]]


def wait_for(stack: Stack, job_ids, what: str, accept) -> Running:
    """Poll until a running job passes ``accept`` (whose worker is still in the pool); return it."""
    found: list[Running] = []

    def check() -> bool:
        found[:] = [job for job in stack.running(job_ids) if stack.worker_of(job) and accept(job)]
        return bool(found)

    wait_until(check, timeout=90, what=what, interval=0.02)
    return found[0]


def in_window(job: Running) -> bool:
    return WINDOW[0] <= job.step <= WINDOW[1]


def test_a_saved_style_used_by_20_jobs_over_two_workers_computes_its_targets_once_per_level_size(stack):
    # Issue 15, done-when 3. The first two jobs start together on the two workers: one takes the targets'
    # lock (worker/target_locks.py) and computes, the other waits and loads what it stored.
    style = requests.post(
        f"{stack.api.url}/v1/styles",
        files={"style": ("s.png", png_bytes(48, 48, (250, 30, 90)))},
        data={"name": "house"},
        timeout=30,
    ).json()
    form = {"preset": "seed", "steps": "2", "max_dim": "64", "levels": "2", "style_id": style["id"]}
    content = png_bytes(64, 64, (30, 120, 200))  # square: its coarse level keeps a 32 px short side
    job_ids = [
        requests.post(
            f"{stack.api.url}/v1/jobs", files={"content": ("c.png", content)}, data=form, timeout=30
        ).json()["id"]
        for _ in range(20)
    ]
    jobs = [wait_for_terminal(stack.api.url, job_id, timeout=180) for job_id in job_ids]
    assert {job["status"] for job in jobs} == {"succeeded"}, [job["error"] for job in jobs]
    assert len({job["worker"].split(":")[1] for job in jobs}) == 2  # both workers ran some
    # The style is scaled to each level's longest side (style_scale 1): one computation per level size.
    sides = [max(level["width"], level["height"]) for level in jobs[0]["plan"]["levels"]]
    assert sides == [32, 64]
    computed = re.findall(r"style targets (\S+) computed for (\d+)x(\d+)", stack.pool.logs())
    assert sorted(max(int(w), int(h)) for _, w, h in computed) == sides, computed
    assert sum(job["targets"] == "computed" for job in jobs) <= len(sides)  # the jobs report it
    assert sum(job["targets"] == "reused" for job in jobs) >= 20 - len(sides)


def test_two_workers_share_a_batch_and_lose_nothing_to_kill_9_or_sigterm(stack):
    job_ids = submit_batch(stack.api.url, items=3)
    watcher = Watcher(stack, job_ids)
    try:
        seen = [job.worker for job in stack.running(job_ids)]
        wait_until(
            lambda: seen.extend(job.worker for job in stack.running(job_ids)) or len(set(seen)) == 2,
            timeout=90,
            what="both workers to take an item",
            interval=0.02,
        )
        kill_9_mid_job(stack, job_ids)
        sigterm_mid_job(stack, job_ids)
        finals = [wait_for_terminal(stack.api.url, job_id, timeout=120) for job_id in job_ids]
    finally:
        watcher.stop()
    assert [final["status"] for final in finals] == ["succeeded"] * len(job_ids)
    assert len({worker for _, worker in watcher.ran_on}) == 3  # the first two, then the replacement
    assert watcher.exact and all(watcher.exact), f"{watcher.exact.count(False)} inexact samples"
    assert sets_and_truth(stack.store, job_ids) == ({queue: set() for queue in keys.GPU_QUEUES},) * 2


def kill_9_mid_job(stack: Stack, job_ids) -> None:
    """kill -9 a worker whose job checkpointed; once its lease expires, another worker resumes the job."""
    victim = wait_for(
        stack,
        job_ids,
        "a job checkpointed mid-run",
        lambda j: in_window(j) and j.step <= KILL_BY and j.checkpoint_step,
    )
    stack.pool.kill9(stack.worker_of(victim))
    replacement = threading.Thread(target=stack.pool.add)
    replacement.start()
    try:  # the record says running on the dead worker until the reaper requeues it (the backlog holds it)
        resumed = resumed_elsewhere(stack, victim, "the killed worker's job to run elsewhere")
    finally:
        replacement.join()
    assert resumed.resumed_from_step >= victim.checkpoint_step > 0, (victim, resumed)


def sigterm_mid_job(stack: Stack, job_ids) -> None:
    """SIGTERM a worker mid-job: it pauses, checkpoints, requeues and exits; another worker resumes it."""
    # Past its attempt's start: the pause checkpoints work done since, not the point it resumed from.
    victim = wait_for(
        stack, job_ids, "a job mid-run to stop", lambda j: in_window(j) and j.step > j.resumed_from_step
    )
    worker = stack.worker_of(victim)
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=stack.settings.shutdown_grace_s + 10) == 0
    stack.pool.retire(worker)
    resumed = resumed_elsewhere(stack, victim, "the stopped worker's job to run elsewhere")
    assert resumed.resumed_from_step >= victim.step > 0, (victim, resumed)  # it paused at or past that step


def resumed_elsewhere(stack: Stack, victim: Running, what: str) -> Running:
    """The victim's job running again, in a later attempt, on another worker."""
    return wait_for(
        stack, [victim.job_id], what, lambda j: j.worker != victim.worker and j.attempt > victim.attempt
    )
