"""Break the real stack on purpose and check that every accepted job is done exactly once.

Each case prints one line of the chaos report: jobs, faults, lost, duplicated, resumed (and from which steps).
"""

import os
import random
import signal
import threading
import time

import boto3
import pytest
import redis
import requests

from devstack.processes import wait_until
from shared import keys
from tests.chaos.conftest import BUCKET
from tests.integration.helpers import example, submit, wait_for_terminal

pytestmark = pytest.mark.chaos

JOB = {"max_dim": "32", "preset": "balanced"}


def running_at(chaos, step: int, job_ids=None):
    """(job id, worker) of a job running at or past ``step`` on a worker of the pool, or None."""
    client = redis.Redis.from_url(chaos.settings.redis_url, decode_responses=True)
    for job_id in client.smembers(keys.running_jobs_key()):
        holder = client.get(keys.job_lease_key(job_id))
        reached = int(client.hget(keys.job_key(job_id), "step") or 0)
        worker = chaos.pool.by_pid(int(holder.split(":")[1])) if holder else None
        if worker and reached >= step and (job_ids is None or job_id in job_ids):
            return job_id, worker
    return None


def wait_running_at(chaos, step: int, job_ids=None, timeout: float = 60):
    found = []
    wait_until(
        lambda: found.append(running_at(chaos, step, job_ids)) or found[-1],
        timeout=timeout,
        what=f"a job at step {step}",
    )
    return found[-1]


def audit(chaos, job_ids: list[str]) -> dict:
    """What happened to each job: final statuses, result versions, succeeded events, resume points."""
    s3 = boto3.client(
        "s3",
        endpoint_url=chaos.s3.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client = redis.Redis.from_url(chaos.settings.redis_url, decode_responses=True)
    jobs = [requests.get(f"{chaos.api.url}/v1/jobs/{job_id}", timeout=10).json() for job_id in job_ids]
    versions = [
        len(
            s3.list_object_versions(Bucket=BUCKET, Prefix=keys.result_object_key("anonymous", job_id)).get(
                "Versions", []
            )
        )
        for job_id in job_ids
    ]
    succeeded_events = [
        sum(
            1
            for _, fields in client.xrange(keys.job_events_key(job_id))
            if fields.get("status") == "succeeded" and fields["type"] == "status"
        )
        for job_id in job_ids
    ]
    resumed = [job["resumed_from_step"] for job in jobs if job["attempt"] > 1]
    backlog = set().union(*(client.smembers(keys.backlog_key(queue)) for queue in keys.GPU_QUEUES))
    return {
        "backlog_left": len(backlog & set(job_ids)),  # every job ended: none may still count
        "jobs": len(job_ids),
        "lost": sum(1 for job in jobs if job["status"] != "succeeded"),
        "duplicated": sum(1 for count in versions if count != 1)
        + sum(1 for count in succeeded_events if count != 1),
        "retried": sum(1 for job in jobs if job["attempt"] > 1),
        "resumed_from_0": sum(1 for step in resumed if step == 0),
        "resumed_steps": sorted(resumed),
        "statuses": sorted({job["status"] for job in jobs}),
    }


def report(case: str, faults: str, result: dict) -> None:
    line = (
        f"CHAOS {case:<14} {faults:<22} jobs={result['jobs']} lost={result['lost']} "
        f"duplicated={result['duplicated']} retried={result['retried']} "
        f"resumed_from_0={result['resumed_from_0']} "
        f"resumed_steps={result['resumed_steps']}"
    )
    print(line)
    report_path = os.environ.get("STYLEFORGE_CHAOS_REPORT")
    if report_path:
        with open(report_path, "a") as out:
            out.write(line + "\n")


def replace_in_background(chaos) -> threading.Thread:
    starter = threading.Thread(target=chaos.pool.add)
    starter.start()
    return starter


@pytest.mark.timeout(1200)
def test_kill_9_at_random_steps_loses_no_job_and_runs_none_twice(chaos):
    job_ids = [
        submit(chaos.api.url, content=example("content"), style=example("style"), steps="150", **JOB).json()[
            "id"
        ]
        for _ in range(30)
    ]
    rng, kills, starters = random.Random(20261127), 0, []
    while kills < 20:
        victim = wait_running_at(chaos, rng.randint(6, 140), timeout=120)
        chaos.pool.kill9(victim[1])
        kills += 1
        starters.append(replace_in_background(chaos))
    for starter in starters:
        starter.join()
    for job_id in job_ids:
        wait_for_terminal(chaos.api.url, job_id, timeout=600)
    result = audit(chaos, job_ids)
    report("kill -9", f"{kills} SIGKILLs", result)
    assert (result["lost"], result["duplicated"], result["resumed_from_0"]) == (0, 0, 0), result
    assert result["backlog_left"] == 0, result
    assert result["retried"] >= 1


def test_sigterm_checkpoints_and_another_worker_finishes_from_there(chaos):
    job_id = submit(
        chaos.api.url, content=example("content"), style=example("style"), steps="150", **JOB
    ).json()["id"]
    _, worker = wait_running_at(chaos, 20, job_ids={job_id})
    asked = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)
    worker.wait(timeout=chaos.settings.shutdown_grace_s + 10)
    exited_after = time.monotonic() - asked
    client = redis.Redis.from_url(chaos.settings.redis_url, decode_responses=True)
    assert job_id in client.smembers(keys.backlog_key(keys.INTERACTIVE_QUEUE))  # requeued: still counted
    chaos.pool.retire(worker)
    starter = replace_in_background(chaos)
    final = wait_for_terminal(chaos.api.url, job_id, timeout=300)
    starter.join()
    result = audit(chaos, [job_id])
    report("SIGTERM", f"exit in {exited_after:.1f} s", result)
    assert final["status"] == "succeeded" and final["attempt"] == 2
    assert final["resumed_from_step"] >= 20
    assert exited_after < chaos.settings.shutdown_grace_s
    assert result["duplicated"] == 0
    assert result["backlog_left"] == 0, result


def test_a_redis_restart_mid_batch_loses_no_accepted_job(chaos):
    files = [("content", (f"set/item{i}.png", example("content"))) for i in range(8)]
    files.append(("style", ("s.jpg", example("style"))))
    form = {**JOB, "steps": "100"}
    batch = requests.post(f"{chaos.api.url}/v1/batches", files=files, data=form, timeout=60).json()
    job_ids = [
        item["job_id"]
        for item in requests.get(f"{chaos.api.url}/v1/batches/{batch['id']}", timeout=10).json()["items"]
    ]
    wait_running_at(chaos, 10, job_ids=set(job_ids))
    chaos.redis.stop()
    time.sleep(3)
    chaos.redis.start()
    for job_id in job_ids:
        wait_for_terminal(chaos.api.url, job_id, timeout=600)
    result = audit(chaos, job_ids)
    report("redis restart", "3 s down (AOF)", result)
    assert result["lost"] == 0, result
    assert result["backlog_left"] == 0, result


def test_an_s3_outage_of_10_s_mid_job_does_not_fail_the_job(chaos):
    job_id = submit(
        chaos.api.url, content=example("content"), style=example("style"), steps="400", **JOB
    ).json()["id"]
    wait_running_at(chaos, 10, job_ids={job_id})
    chaos.proxy.pause()
    time.sleep(10)
    chaos.proxy.resume()
    final = wait_for_terminal(chaos.api.url, job_id, timeout=600)
    result = audit(chaos, [job_id])
    report("S3 outage", "10 s down", result)
    assert final["status"] == "succeeded", final
    assert result["duplicated"] == 0
    assert result["backlog_left"] == 0, result
