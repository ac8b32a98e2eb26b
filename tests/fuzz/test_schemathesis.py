"""Schemathesis against the live API: requests generated from GET /openapi.json, sent over real HTTP.

The API runs with no worker on its own Redis database and bucket, in front of the real redis-server and S3
server. A canceled job and a canceled batch are seeded first, so that part of the generated requests reach
records that exist (their SSE streams and results zip end at once, so nothing blocks); the rest get random
ids. Every response must be no server error (5xx) and must match the document: its status, content type
and body schema.

A second run is the schemathesis CLI itself, `schemathesis run --checks all`, with a fresh random seed each
time: every check it has (positive data accepted, negative data refused, Allow on 405, ...), all its
phases (coverage, fuzzing, stateful), and the repository's schemathesis.toml. Its seed is printed, and
named in a failure's message; STYLEFORGE_FUZZ_SEED=<seed> replays that run.
"""

import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.processes import REPO, ApiServer
from shared.storage import build_object_store
from tests.integration.helpers import example

pytestmark = pytest.mark.fuzz

# Generated requests per operation (positive and negative data together); 12 operations take parameters,
# so this makes well over 500 requests.
EXAMPLES_PER_OPERATION = 50
MIN_REQUESTS = 500
REQUEST_TIMEOUT_S = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The seeded CLI run: test cases per operation and phase. 20 makes about 2,200 requests (the coverage phase
# adds its own, the stateful phase its scenarios), in about a minute on 2 busy cores.
CLI_MAX_EXAMPLES = 20
CLI_MIN_REQUESTS = 1500
CLI_TIMEOUT_S = 240
# Flask's own /static route, should an app ever have one again (create_app turns it off: the page's files are
# served, and documented, under /web/).
UNDOCUMENTED = {"static"}


@dataclass
class Tally:
    """What the run sent and what failed."""

    requests: int = 0
    server_errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def record(self, case: schemathesis.Case, response) -> None:
        """Count one request; remember it when the server answered 5xx."""
        self.requests += 1
        if response.status_code >= 500:
            self.server_errors.append(f"{response.status_code} {case.method} {case.formatted_path}")


@pytest.fixture(scope="module")
def fuzz_api(stack_settings, redis_server) -> Iterator[tuple[ApiServer, object]]:
    """The API over HTTP with no worker, on Redis db 6 and bucket sf-fuzz; yields (server, app)."""
    from api import create_app

    settings = stack_settings.override(redis_url=redis_server.url(6), s3_bucket="sf-fuzz")
    build_object_store(settings).ensure_bucket()
    app = create_app(settings)
    server = ApiServer(app)
    yield server, app
    server.stop()


@pytest.fixture(scope="module")
def seeded_ids(fuzz_api) -> dict[str, str]:
    """A canceled job and a canceled batch, as path parameters."""
    base = fuzz_api[0].url
    style = ("style", ("s.jpg", example("style")))
    job = requests.post(
        f"{base}/v1/jobs", files=[("content", ("c.png", example("content"))), style], timeout=30
    )
    batch = requests.post(
        f"{base}/v1/batches", files=[("content", ("a/c.png", example("content"))), style], timeout=30
    )
    assert job.status_code == 202 and batch.status_code == 202, (job.text, batch.text)
    ids = {"job_id": job.json()["id"], "batch_id": batch.json()["id"]}
    assert requests.post(f"{base}/v1/jobs/{ids['job_id']}/cancel", timeout=10).status_code == 200
    assert requests.post(f"{base}/v1/batches/{ids['batch_id']}/cancel", timeout=10).status_code == 200
    return ids


def test_the_document_describes_every_route_the_app_serves(fuzz_api):
    server, app = fuzz_api
    document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    served = {
        (rule.rule.replace("<path:", "{").replace("<", "{").replace(">", "}"), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in UNDOCUMENTED
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == served


def test_generated_requests_get_no_server_error_and_match_the_document(fuzz_api, seeded_ids, capsys):
    server, _ = fuzz_api
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            _fuzz(_strategy(operation, seeded_ids), server.url, tally)
        except (Exception, BaseExceptionGroup) as err:  # every operation runs; failures are reported below
            tally.failures.append(f"{operation.label}:\n{err}")
    with capsys.disabled():
        print(f"\nschemathesis: {tally.requests} requests, {len(tally.server_errors)} server errors (5xx)")
    assert not tally.failures, "\n\n".join(tally.failures)  # each with the curl command that reproduces it
    assert not tally.server_errors, "\n".join(tally.server_errors[:50])
    assert tally.requests >= MIN_REQUESTS


def test_a_randomly_seeded_run_of_every_check_finds_no_failure(fuzz_api, capsys):
    server, _ = fuzz_api
    seed = int(os.environ.get("STYLEFORGE_FUZZ_SEED") or random.SystemRandom().randrange(2**31))
    command = _cli_command(f"{server.url}/openapi.json", seed)
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )
    generated = re.search(r"(\d+) generated", done.stdout)
    requests_sent = int(generated.group(1)) if generated else 0
    with capsys.disabled():
        print(f"\nschemathesis --checks all --seed {seed}: {requests_sent} requests, exit {done.returncode}")
    replay = (
        f"seed {seed}: replay with STYLEFORGE_FUZZ_SEED={seed}, or from the repository root against a live"
        f" API:\n  schemathesis {' '.join(command[3:])}"
    )
    assert done.returncode == 0, f"{replay}\n\n{_report(done.stdout)}{done.stderr[-2000:]}"
    assert requests_sent >= CLI_MIN_REQUESTS, f"{replay}\n\n{done.stdout[-3000:]}"


def _cli_command(schema_url: str, seed: int) -> list[str]:
    """`schemathesis run --checks all`, to run from the repository root so that it reads schemathesis.toml."""
    return [
        *(sys.executable, "-m", "schemathesis.cli", "--no-color", "run", schema_url),
        *("--checks", "all", "--seed", str(seed), "--max-examples", str(CLI_MAX_EXAMPLES)),
        *("--workers", "1", "--request-timeout", str(REQUEST_TIMEOUT_S), "--generation-database", "none"),
    ]


def _report(stdout: str) -> str:
    """The CLI's FAILURES or ERRORS section (each failure with its curl command), else its last lines."""
    starts = [index for index in (stdout.find(" FAILURES "), stdout.find(" ERRORS ")) if index >= 0]
    return stdout[min(starts) : min(starts) + 20_000] if starts else stdout[-3000:]


NAMELESS_PART = (
    b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
    b'--b\r\nContent-Disposition: form-data; name="colour"\r\n\r\nblue\r\n--b--\r\n'
)
# Requests that answered 500 (or 503) before their fixes (found by schemathesis, or while triaging what it
# found); each must now answer 400.
CRAFTED = {
    "a multipart part without a name": (
        "POST",
        "/v1/jobs",
        {"data": NAMELESS_PART, "headers": {"Content-Type": "multipart/form-data; boundary=b"}},
    ),
    "params nested beyond the JSON decoder's recursion limit": (
        "POST",
        "/v1/batches",
        {"files": {"params": (None, "[" * 100_000)}},
    ),
    "a superscript digit as limit": ("GET", "/v1/jobs", {"params": {"limit": "\u00b2"}}),
    "a 5000-digit limit": ("GET", "/v1/batches", {"params": {"limit": "9" * 5000}}),
    "an empty object key": ("POST", "/v1/batches", {"json": {"styles": [""], "prefix": "a/"}}),
    "an object key with a lone surrogate": (
        "POST",
        "/v1/batches",
        {"json": {"styles": ["\ud800"], "prefix": "a"}},
    ),
    "an Arabic-Indic digit as Last-Event-ID": (
        "GET",
        "/v1/jobs/{job_id}/events",
        {"params": {"last_event_id": "\u0661-0"}},
    ),
}


@pytest.mark.parametrize("what", sorted(CRAFTED))
def test_requests_that_once_got_a_server_error_answer_400(fuzz_api, seeded_ids, what):
    method, path, kwargs = CRAFTED[what]
    url = fuzz_api[0].url + path.format(**seeded_ids)
    response = requests.request(method, url, timeout=REQUEST_TIMEOUT_S, **kwargs)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_input"


def _strategy(operation, seeded_ids: dict[str, str]) -> st.SearchStrategy:
    """Positive and negative cases with generated ids, plus positive cases on the seeded records."""
    strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]
    fixed = {name: value for name, value in seeded_ids.items() if f"{{{name}}}" in operation.path}
    if fixed:
        strategies.append(operation.as_strategy(path_parameters=fixed))
    return st.one_of(strategies)


def _fuzz(strategy: st.SearchStrategy, base_url: str, tally: Tally) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests every run: a CI failure reproduces
        suppress_health_check=list(HealthCheck),
    )
    def send(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
        tally.record(case, response)
        case.validate_response(response, checks=CHECKS)

    send()
