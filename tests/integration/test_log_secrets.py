"""Secrets and keys never appear in logs (issue 14, part 6): a full run against the real stack in required
mode, every process logging to a file, then every log grepped for every secret of the run.

The processes: the API (`styleforge api`, its own process and log), the GPU worker (`styleforge worker`), the
webhook worker (`celery ... -Q webhooks`), and the real `styleforge keys` and `styleforge wait` commands
(their stderr and stdout kept apart: a key printed once on stdout is the command's answer, not a log). The
run: keys made, listed and revoked; requests with no key, a wrong secret and a revoked key (401); a job with a
webhook whose URL holds a token of the receiver's and that answers 500 once (a retry); the job's presigned
URLs fetched by the API's caller and by the CLI; /metrics scraped with the token and with a wrong one.
The secrets: each full key and its secret part, the webhook signing secret, the receiver's URL token, the AWS
secret access key, the metrics token, and the X-Amz-Signature of every presigned URL handed out.
"""

import base64
import os
import secrets
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from devstack.env import stack_env
from devstack.processes import REPO, ApiProcess, WorkerProcess, wait_until
from tests.conftest import WEBHOOK_WORKER
from tests.integration.helpers import png_bytes
from tests.log_scan import find_leaks, read_logs

pytestmark = pytest.mark.integration

DB = 13  # a database of its own: its own broker too, so only this run's processes take its tasks
BUCKET = "sf-log-secrets"


class Receiver:
    """A webhook endpoint on 127.0.0.1 that answers 500 to its first request, then 200, and keeps bodies."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(self.rfile.read(int(self.headers.get("content-length", 0))))
                self.send_response(500 if len(receiver.bodies) == 1 else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.token = secrets.token_urlsafe(24)  # a receiver's own secret in its URL, as Slack's hooks carry
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook?token={self.token}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def run_secrets() -> dict[str, str]:
    """Fresh secrets for this run, each unlike any other text a log could hold."""
    return {
        "AWS_SECRET_ACCESS_KEY": "awsSecret" + secrets.token_urlsafe(30),
        "STYLEFORGE_WEBHOOK_SECRET": "whsec_" + base64.b64encode(os.urandom(32)).decode(),
        "STYLEFORGE_METRICS_TOKEN": secrets.token_urlsafe(32),
    }


class Run:
    """The logged stack of one run: its environment, log folder and processes."""

    def __init__(self, redis_server, s3_server, logs: Path) -> None:
        self.secrets = run_secrets()
        self.logs = logs
        self.env = {
            **stack_env(redis_server.url(DB), s3_server.endpoint, BUCKET),
            **self.secrets,
            "AWS_ACCESS_KEY_ID": "sf-log-secrets",
            "STYLEFORGE_AUTH": "required",
            "STYLEFORGE_WEBHOOK_ALLOWLIST": "127.0.0.1",
            "STYLEFORGE_WEBHOOK_BACKOFF_S": "0.2",
        }
        self.api = ApiProcess(self.env, logs / "api.log")
        self.workers = [
            WorkerProcess(self.env, logs / "worker.log", name="logs"),
            WorkerProcess(self.env, logs / "hooks.log", name="logs-hooks", command=WEBHOOK_WORKER),
        ]

    def cli(self, name: str, *argv: str, **env: str) -> subprocess.CompletedProcess:
        """A real `styleforge` command; its stderr (its log) kept in the run's folder, its stdout returned."""
        done = subprocess.run(
            [sys.executable, "-m", "client.cli", *argv],
            cwd=REPO,
            env={**os.environ, **self.env, "STYLEFORGE_API_URL": self.api.url, **env},
            capture_output=True,
            text=True,
            timeout=180,
        )
        (self.logs / f"cli-{name}.stderr").write_text(done.stderr)
        assert done.returncode == 0, done.stderr
        return done

    def stop(self) -> None:
        for process in (self.api, *self.workers):
            process.stop()


@pytest.fixture(scope="module")
def run(redis_server, s3_server, tmp_path_factory):
    logged = Run(redis_server, s3_server, tmp_path_factory.mktemp("logged-run"))
    yield logged
    logged.stop()


def signature(url: str) -> str:
    (value,) = parse_qs(urlsplit(url).query)["X-Amz-Signature"]
    return value


def refused_requests(url: str, key: str, revoked: str) -> list[int]:
    key_id, secret = key.split("_", 2)[1:]
    wrong = f"sf_{key_id}_{secret[::-1]}"
    headers = [{}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": f"Bearer {revoked}"}]
    return [requests.get(f"{url}/v1/jobs", headers=h, timeout=10).status_code for h in headers]


def stylize_with_webhook(url: str, key: str, receiver: Receiver) -> dict:
    auth = {"Authorization": f"Bearer {key}"}
    files = {"content": ("c.png", png_bytes(48, 40)), "style": ("s.png", png_bytes(32, 32, (20, 90, 160)))}
    form = {"preset": "seed", "steps": "6", "max_dim": "48", "webhook": receiver.url}
    created = requests.post(f"{url}/v1/jobs", files=files, data=form, headers=auth, timeout=30)
    assert created.status_code == 202, created.text
    job: dict = {}

    def finished() -> bool:
        job.update(requests.get(f"{url}/v1/jobs/{created.json()['id']}", headers=auth, timeout=10).json())
        return job["status"] in ("succeeded", "failed", "canceled")

    wait_until(finished, timeout=180, what="the job to finish", interval=0.5)
    assert job["status"] == "succeeded", job
    return job


def test_no_secret_of_a_full_run_appears_in_any_log(run):
    keys = made_keys(run)
    assert refused_requests(run.api.url, keys["logs-a"], keys["logs-b"]) == [401, 401, 401]
    receiver = Receiver()
    try:
        job = stylize_with_webhook(run.api.url, keys["logs-a"], receiver)
        completed = lambda: any(b"job.completed" in body for body in receiver.bodies)  # noqa: E731
        wait_until(completed, timeout=60, what="the job.completed webhook")
    finally:
        receiver.stop()
    urls = fetch_results(run, job["id"], keys["logs-a"])
    scrape_metrics(run)
    run.stop()  # every process flushes and closes its log

    logs = read_logs(run.logs)
    assert_the_logs_saw_the_run(logs, job["id"])
    assert find_leaks(logs, secrets_of_the_run(run, keys, receiver, urls)) == []


def made_keys(run: Run) -> dict[str, str]:
    """Two keys made, listed and one revoked with the real `styleforge keys`: tenant -> the full key."""
    made = {}
    for tenant in ("logs-a", "logs-b"):
        made[tenant] = run.cli(f"keys-create-{tenant}", "keys", "create", "--tenant", tenant).stdout.strip()
    run.cli("keys-list", "keys", "list")
    run.cli("keys-revoke", "keys", "revoke", made["logs-b"].split("_")[1])
    return made


def fetch_results(run: Run, job_id: str, key: str) -> set[str]:
    """The result's presigned URLs, each handed out by the API and fetched; `styleforge wait` downloads it."""
    auth = {"Authorization": f"Bearer {key}"}
    urls = set()
    for _ in range(2):
        url = requests.get(f"{run.api.url}/v1/jobs/{job_id}", headers=auth, timeout=10).json()["result"][
            "url"
        ]
        assert requests.get(url, timeout=30).ok
        urls.add(url)
    run.cli("wait", "wait", job_id, "--out", str(run.logs.parent / "result.png"), STYLEFORGE_API_KEY=key)
    return urls


def scrape_metrics(run: Run) -> None:
    url, token = f"{run.api.url}/metrics", run.secrets["STYLEFORGE_METRICS_TOKEN"]
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).ok
    wrong = {"Authorization": "Bearer not-the-metrics-token"}
    assert requests.get(url, headers=wrong, timeout=10).status_code == 401


def secrets_of_the_run(run: Run, keys: dict[str, str], receiver: Receiver, urls: set[str]) -> dict[str, str]:
    """Every secret the run used or handed out, by a name the failure message may show."""
    found = dict(run.secrets)
    for tenant, key in keys.items():
        found[f"API key of {tenant}"] = key
        found[f"secret part of {tenant}'s key"] = key.split("_", 2)[2]
    found["webhook secret's key (base64)"] = run.secrets["STYLEFORGE_WEBHOOK_SECRET"].removeprefix("whsec_")
    found["the receiver's URL token"] = receiver.token
    for n, url in enumerate(sorted(urls)):
        found[f"signature of presigned URL {n}"] = signature(url)
    return found


def assert_the_logs_saw_the_run(logs: dict[str, str], job_id: str) -> None:
    """The scan read real logs of this run: the API's requests, the job, the webhook's retry and delivery."""
    assert " 401 " in logs["api.log"] and "POST /v1/jobs" in logs["api.log"]
    assert job_id in logs["worker.log"] and "succeeded" in logs["worker.log"]
    assert "retrying" in logs["hooks.log"] and "delivered" in logs["hooks.log"]
    assert "key" in logs["cli-keys-create-logs-a.stderr"]
