"""Metrics as Prometheus reads them: the API's GET /metrics (behind its scrape token) and a worker's own port
(on loopback) pass `promtool check metrics`, count a job the real stack ran, and a real Prometheus server
scraping both, the API with the token from a file, shows the job counter."""

import errno
import re
import shutil
import socket
import subprocess

import pytest
import requests

from devstack.processes import ApiServer, free_port, wait_until
from tests.integration.helpers import host_address, png_bytes, submit, wait_for_terminal

pytestmark = pytest.mark.integration

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
TOKEN = "metrics-test-scrape-token-0123456789"  # the test's own, never a deployment's
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def metered_api(stack_settings, worker):
    """The API with STYLEFORGE_METRICS_TOKEN set, in front of the real worker."""
    from api import create_app

    server = ApiServer(create_app(stack_settings.override(metrics_token=TOKEN)))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def finished_job(metered_api):
    url = metered_api.url
    job = submit(url, content=png_bytes(48, 40), style=png_bytes(32, 32), steps="6", max_dim="48").json()
    assert wait_for_terminal(url, job["id"])["status"] == "succeeded"
    return job["id"]


def counter(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``, from an exposition text."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and all(f'{key}="{value}"' in (match.group(1) or "") for key, value in labels.items()):
            total += float(match.group(2))
    return total


def promtool_check(text: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )


def test_the_api_and_the_worker_expose_metrics_promtool_accepts(metered_api, worker, finished_job):
    assert PROMTOOL, "promtool missing: `make test` installs Debian's prometheus package"
    api_text = requests.get(f"{metered_api.url}/metrics", headers=SCRAPE, timeout=10).text
    worker_text = requests.get(worker.metrics_url, timeout=10).text
    for text in (api_text, worker_text):
        checked = promtool_check(text)
        assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr
    assert counter(worker_text, "styleforge_jobs_total", queue="interactive", outcome="succeeded") >= 1
    assert counter(worker_text, "styleforge_optimizer_steps_total", queue="interactive") >= 1
    assert counter(worker_text, "styleforge_queue_wait_seconds_count", queue="interactive") >= 1
    assert counter(worker_text, "styleforge_style_targets_total") >= 1
    assert (
        counter(api_text, "styleforge_http_requests_total", route="/v1/jobs", method="POST", code="202") >= 1
    )
    assert 'styleforge_backlog_jobs{queue="bulk"}' in api_text and "styleforge_running_jobs" in api_text


def test_the_api_metrics_refuse_a_scrape_without_the_token(metered_api, finished_job):
    for headers in ({}, {"Authorization": "Bearer not-the-token-at-all"}):
        refused = requests.get(f"{metered_api.url}/metrics", headers=headers, timeout=10)
        assert refused.status_code == 401 and "styleforge_" not in refused.text
        assert refused.json()["error"]["field"] == "authorization"


def test_the_worker_metrics_port_listens_on_loopback_only(worker, finished_job):
    address = host_address()
    if address is None:
        pytest.skip("this host has no address besides loopback")
    port = int(worker.metrics_url.rsplit(":", 1)[1].split("/")[0])
    assert requests.get(worker.metrics_url, timeout=10).ok  # on 127.0.0.1 it answers
    with socket.socket() as sock:
        sock.settimeout(5)
        assert sock.connect_ex((address, port)) == errno.ECONNREFUSED, address


def test_a_broken_exposition_is_refused_by_promtool():
    assert PROMTOOL
    assert (
        promtool_check("styleforge_jobs_total{queue=interactive} one\n").returncode != 0
    )  # the check can fail


def test_a_real_prometheus_scraping_the_stack_shows_the_job_counter(
    metered_api, worker, finished_job, tmp_path
):
    assert PROMETHEUS, "prometheus missing: `make test` installs Debian's prometheus package"
    api_target = metered_api.url.removeprefix("http://")
    worker_target = worker.metrics_url.removeprefix("http://").removesuffix("/metrics")
    token_file = tmp_path / "metrics-token"
    token_file.write_text(TOKEN + "\n")  # as a Secret's file ends; Prometheus trims the newline
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n"
        f"  - job_name: api\n    authorization: {{type: Bearer, credentials_file: '{token_file}'}}\n"
        f"    static_configs: [{{targets: ['{api_target}']}}]\n"
        f"  - job_name: worker\n    static_configs: [{{targets: ['{worker_target}']}}]\n"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    server = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        found: list[float] = []

        def scraped() -> bool:
            query = 'sum(styleforge_jobs_total{outcome="succeeded"})'
            try:
                reply = requests.get(
                    f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=5
                )
            except requests.ConnectionError:
                return False
            result = reply.json()["data"]["result"]
            found[:] = [float(result[0]["value"][1])] if result else []
            return bool(found) and found[0] >= 1

        wait_until(scraped, timeout=60, what="Prometheus to scrape the job counter", interval=1)
        targets = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5).json()["data"]
        assert {t["labels"]["job"]: t["health"] for t in targets["activeTargets"]} == {
            "api": "up",
            "worker": "up",
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert found[0] >= 1
