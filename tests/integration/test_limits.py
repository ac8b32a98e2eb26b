"""Rate limits and quotas against the real thing (issue 14, done-when 3): two APIs in required mode over real
HTTP, on a real redis-server database of their own, keys and quota overrides made by the real `styleforge`
command in its own process. No worker: every job stays queued, so the active-jobs quota holds still.

`limited` has low rate limits (3 submissions, 5 other requests a minute per key) and the default quotas;
`quoted` has no rate limit and low quotas (3 active jobs, 4 batch items a day, max_dim 64, 10 steps).
"""

import os
import subprocess
import sys

import pytest
import requests

from devstack.processes import REPO, ApiServer
from shared.store import connect_redis
from tests.integration.helpers import example

pytestmark = pytest.mark.integration

DB = 17  # a database of its own: no worker takes these jobs
SUBMITS, READS = 3, 5
QUOTAS = {"quota_max_active_jobs": 3, "quota_items_per_day": 4, "quota_max_dim": 64, "quota_max_steps": 10}
HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


@pytest.fixture(scope="module")
def apis(stack_settings, redis_server):
    """(limited, quoted, settings): the two APIs and the settings the CLI runs with."""
    from api import create_app
    from shared.storage import build_object_store

    settings = stack_settings.override(auth="required", redis_url=redis_server.url(DB), s3_bucket="sf-limits")
    build_object_store(settings).ensure_bucket()
    connect_redis(settings.redis_url).flushdb()
    rates = {"rate_limit_submit": f"{SUBMITS}/minute", "rate_limit_read": f"{READS}/minute"}
    limited = ApiServer(create_app(settings.override(**rates)))
    quoted = ApiServer(create_app(settings.override(**QUOTAS)))
    yield limited, quoted, settings
    limited.stop()
    quoted.stop()


def cli(settings, *argv: str) -> subprocess.CompletedProcess:
    """The real `styleforge ...` in its own process, with the Redis URL and the quota defaults of `quoted`."""
    env = {**os.environ, "STYLEFORGE_REDIS_URL": settings.redis_url}
    env |= {f"STYLEFORGE_{name.upper()}": str(value) for name, value in QUOTAS.items()}
    run = [sys.executable, "-m", "client.cli", *argv]
    return subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def bearer_for(settings, tenant: str) -> dict[str, str]:
    made = cli(settings, "keys", "create", "--tenant", tenant)
    assert made.returncode == 0, made.stderr
    return {"Authorization": f"Bearer {made.stdout.strip()}"}


def post_job(base: str, headers: dict[str, str], **params: str) -> requests.Response:
    files = {"content": ("c.png", example("content")), "style": ("s.png", example("style"))}
    data = {"preset": "seed", "steps": "2", "max_dim": "32", **params}
    return requests.post(f"{base}/v1/jobs", files=files, data=data, headers=headers, timeout=30)


def post_batch(base: str, headers: dict[str, str], items: int) -> requests.Response:
    files = [("content", (f"a/{n}.png", example("content"))) for n in range(items)]
    files.append(("style", ("s.png", example("style"))))
    data = {"preset": "seed", "steps": "2", "max_dim": "32"}
    return requests.post(f"{base}/v1/batches", files=files, data=data, headers=headers, timeout=30)


def get_jobs(base: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{base}/v1/jobs", headers=headers, timeout=10)


def error_of(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "field"}
    return error


def test_the_submission_past_the_limit_gets_429_with_retry_after_ratelimit_headers_and_our_error(apis):
    limited, _, settings = apis
    key = bearer_for(settings, "rate-a")

    accepted = [post_job(limited.url, key) for _ in range(SUBMITS)]
    refused = post_job(limited.url, key)

    assert [r.status_code for r in accepted] == [202] * SUBMITS
    assert [r.headers["RateLimit-Remaining"] for r in accepted] == [str(n) for n in reversed(range(SUBMITS))]
    assert {r.headers["RateLimit-Limit"] for r in accepted} == {str(SUBMITS)}
    assert not any("Retry-After" in r.headers for r in accepted)
    error = error_of(refused, 429)
    assert error["code"] == "rate_limited" and error["limit"] == {"name": "submit", "limit": "3 per 1 minute"}
    assert "submissions" in error["message"] and error["field"] is None
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 0 <= int(refused.headers["RateLimit-Reset"]) <= 60


def test_reads_are_limited_apart_from_submissions_and_each_key_has_its_own_buckets(apis):
    limited, _, settings = apis
    key, other_key = bearer_for(settings, "rate-b"), bearer_for(settings, "rate-b")
    assert post_job(limited.url, key).status_code == 202  # one submission: the reads' bucket is untouched

    reads = [get_jobs(limited.url, key) for _ in range(READS)]
    refused = get_jobs(limited.url, key)
    submitted = post_job(limited.url, key)
    other = get_jobs(limited.url, other_key)

    assert [r.status_code for r in reads] == [200] * READS
    assert [r.headers["RateLimit-Limit"] for r in reads] == [str(READS)] * READS
    error = error_of(refused, 429)
    assert error["code"] == "rate_limited" and error["limit"]["name"] == "read"
    assert int(refused.headers["Retry-After"]) >= 1
    assert submitted.status_code == 202 and submitted.headers["RateLimit-Remaining"] == str(SUBMITS - 2)
    assert other.status_code == 200 and other.headers["RateLimit-Remaining"] == str(READS - 1)


def test_health_openapi_metrics_and_the_web_page_are_not_limited(apis):
    limited, _, _ = apis
    paths = ["/healthz", "/openapi.json", "/metrics", "/web/app.js"]
    answers = [requests.get(f"{limited.url}{path}", timeout=10) for path in paths * (READS + 1)]

    assert not any(r.status_code == 429 for r in answers)  # /metrics may want a token of its own: not ours
    assert not any(name in r.headers for r in answers for name in HEADERS)


def test_the_active_jobs_quota_refuses_the_job_past_it_until_one_is_canceled(apis):
    _, quoted, settings = apis
    key = bearer_for(settings, "quota-active")
    jobs = [post_job(quoted.url, key) for _ in range(3)]
    assert [r.status_code for r in jobs] == [202] * 3

    refused = post_job(quoted.url, key)
    refused_batch = post_batch(quoted.url, key, 1)
    canceled = requests.post(f"{quoted.url}/v1/jobs/{jobs[0].json()['id']}/cancel", headers=key, timeout=10)
    accepted = post_job(quoted.url, key)

    error = error_of(refused, 429)
    assert error["code"] == "quota_exceeded" and "Retry-After" not in refused.headers
    assert error["quota"] == {"name": "max_active_jobs", "limit": 3, "used": 3, "requested": 1}
    assert error_of(refused_batch, 429)["quota"]["name"] == "max_active_jobs"
    assert canceled.status_code == 200 and accepted.status_code == 202, accepted.text


def test_the_items_per_day_quota_counts_a_batch_s_items_and_refuses_the_next_batch(apis):
    _, quoted, settings = apis
    key = bearer_for(settings, "quota-items")
    override = cli(settings, "quotas", "set", "--tenant", "quota-items", "--max-active", "50")
    assert override.returncode == 0, override.stderr

    first = post_batch(quoted.url, key, 3)
    refused = post_batch(quoted.url, key, 2)
    fits = post_batch(quoted.url, key, 1)

    assert first.status_code == 202, first.text
    error = error_of(refused, 429)
    assert error["code"] == "quota_exceeded"
    assert error["quota"] == {"name": "items_per_day", "limit": 4, "used": 3, "requested": 2}
    assert 1 <= int(refused.headers["Retry-After"]) <= 24 * 3600
    assert fits.status_code == 202, fits.text  # the refused batch's items were given back


def test_max_dim_and_steps_caps_answer_403_naming_the_field(apis):
    _, quoted, settings = apis
    key = bearer_for(settings, "quota-caps")

    too_large = post_job(quoted.url, key, max_dim="100")
    too_long = post_job(quoted.url, key, steps="11")
    levels = post_job(quoted.url, key, steps="6", levels="2", max_dim="64")  # 6 + 6 steps over two levels
    within = post_job(quoted.url, key, steps="10", max_dim="64")

    large = error_of(too_large, 403)
    assert large["field"] == "max_dim" and large["quota"] == {"name": "max_dim", "limit": 64, "used": 100}
    long = error_of(too_long, 403)
    assert long["field"] == "steps" and long["quota"] == {"name": "max_steps", "limit": 10, "used": 11}
    assert error_of(levels, 403)["quota"] == {"name": "max_steps", "limit": 10, "used": 12}
    assert within.status_code == 202, within.text


def test_the_quotas_command_s_override_holds_from_the_next_request_and_reset_undoes_it(apis):
    _, quoted, settings = apis
    key = bearer_for(settings, "quota-admin")
    assert post_job(quoted.url, key, max_dim="128").status_code == 403

    raised = cli(settings, "quotas", "set", "--tenant", "quota-admin", "--max-dim", "128")
    allowed = post_job(quoted.url, key, max_dim="128")
    shown = cli(settings, "quotas", "show", "--tenant", "quota-admin")
    reset = cli(settings, "quotas", "reset", "--tenant", "quota-admin")
    refused_again = post_job(quoted.url, key, max_dim="128")
    bad = cli(settings, "quotas", "set", "--tenant", "quota-admin", "--max-dim", "0")

    assert raised.returncode == 0, raised.stderr
    assert allowed.status_code == 202, allowed.text
    lines = {line.split()[0]: line.split()[1:] for line in shown.stdout.splitlines()[1:]}
    assert lines["max_dim"][:2] == ["128", "(override)"]
    assert lines["max_active_jobs"] == ["3", "(default)", "used", "1"]
    assert reset.returncode == 0 and refused_again.status_code == 403
    assert bad.returncode == 2 and "at least 1" in bad.stderr
