"""Per-job overhead: what the API, queue, worker and storage add to a job's engine time (issue 7).

Usage: python bench/job_overhead.py [--jobs 5] [--wait events|poll]

Starts a throwaway redis-server, moto's S3 server, a real GPU worker (`styleforge worker`, seeded random
weights as in the integration tests) and the API under gunicorn, on loopback. One warm-up job goes through
first (the worker's first job traces the engine's tf.function), then N jobs of 1 step at 64 px, one after
another: each is submitted over HTTP, and its end is seen on its event stream (`GET /v1/jobs/{id}/events`,
server-sent events; `--wait poll` GETs the job every 10 ms instead, which on 2 cores takes CPU from the
worker being measured). Every job has its own style image, so the worker computes its style targets each
time, as the in-process engine call does.

The engine's own time is measured in this process right after each job (the worker idle meanwhile):
`stylize_job` with the options the worker builds (`worker/job_options.py`, from the job record's params
and plan), the same decoded images and the same weights, after a warm-up call. Overhead = end-to-end -
engine, per job. Prints a markdown table of medians.
"""

import argparse
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/job_overhead.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO))

SIZE = 64
PARAMS = {"steps": "1", "max_dim": str(SIZE)}
POLL_S = 0.01
TERMINAL = ("succeeded", "failed", "canceled")
SEEN_BY = {"events": "its event stream", "poll": f"polled every {POLL_S * 1000:g} ms"}
JOB_TIMEOUT_S = 60
TARGET_MS = 200.0


@dataclass(frozen=True)
class JobTiming:
    """One job's timings in seconds: the client's clock for sent/seen, the record's for the rest."""

    end_to_end: float  # POST sent -> `succeeded` seen
    submit: float  # POST sent -> created_at (the API's validation and storage before the record)
    queue_wait: float  # created_at -> started_at (enqueue, Celery delivery, lease, checkpoint probe)
    worker: float  # started_at -> finished_at (fetch, decode, engine, encode, upload, records)
    seen_after: float  # finished_at -> `succeeded` seen by polling
    to_first_report: (
        float  # started_at -> step 0 reported (inputs fetched and decoded, targets, first losses)
    )
    after_last_report: float  # last step reported -> finished_at (encode, upload the result, record)


def png(seed: int) -> bytes:
    """A SIZE x SIZE RGB PNG of seeded noise."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def run_job(session, api_url: str, content: bytes, style: bytes, wait: str) -> tuple[JobTiming, dict]:
    """Submit one job and wait for `succeeded` (following its events, or polling); its timings and JSON."""
    sent = time.time()
    files = {"content": ("content.png", content, "image/png"), "style": ("style.png", style, "image/png")}
    answer = session.post(f"{api_url}/v1/jobs", files=files, data=PARAMS, timeout=30)
    answer.raise_for_status()
    url = f"{api_url}/v1/jobs/{answer.json()['id']}"
    seen = follow_events(session, url) if wait == "events" else poll(session, url)
    job = session.get(url, timeout=10).json()
    created, started, finished = (_epoch(job[name]) for name in ("created_at", "started_at", "finished_at"))
    reports = progress_times(session, url)
    timing = JobTiming(
        end_to_end=seen - sent,
        submit=created - sent,
        queue_wait=started - created,
        worker=finished - started,
        seen_after=seen - finished,
        to_first_report=reports[0] - started,
        after_last_report=finished - reports[-1],
    )
    return timing, job


def follow_events(session, url: str) -> float:
    """Read the job's event stream (SSE) until its terminal event: when `succeeded` arrived."""
    with session.get(f"{url}/events", stream=True, timeout=JOB_TIMEOUT_S) as stream:
        for event in _events(stream.iter_lines(chunk_size=None, decode_unicode=True)):
            if event["status"] in TERMINAL:
                return _succeeded(event["status"], url, time.time())
    raise RuntimeError(f"{url}/events ended before the job did")


def poll(session, url: str) -> float:
    """GET the job every POLL_S until it ends: when `succeeded` was seen."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        status = session.get(url, timeout=10).json()["status"]
        if status in TERMINAL:
            return _succeeded(status, url, time.time())
        time.sleep(POLL_S)
    raise TimeoutError(f"{url} did not end within {JOB_TIMEOUT_S} s")


def _succeeded(status: str, url: str, seen: float) -> float:
    if status != "succeeded":
        raise RuntimeError(f"{url} ended {status}; see the worker's log")
    return seen


def progress_times(session, url: str) -> list[float]:
    """The `ts` of a finished job's progress events, oldest first, from its event stream (which then ends)."""
    events = _events(session.get(f"{url}/events", timeout=10).text.splitlines())
    return [event["ts"] for event in events if event["type"] == "progress"]


def _events(lines) -> Iterator[dict]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line.removeprefix("data: "))


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def run_jobs(
    api_url: str, content: bytes, styles: list[bytes], env: dict[str, str], wait: str
) -> tuple[list[JobTiming], list[float]]:
    """A warm-up job and engine call with the first style, then per other style a job and an engine call.

    Each job's engine time is taken right after it, while the worker idles, so both see the same machine
    (a shared 2-core box's load drifts within a minute). Returns (job timings, engine seconds), in pairs.
    """
    import requests

    with requests.Session() as session:
        _, job = run_job(session, api_url, content, styles[0], wait)  # the worker's first job traces
        engine = InProcessEngine(job, content, env)
        engine.seconds(styles[0])  # likewise this process's first call
        timings, seconds = [], []
        for style in styles[1:]:
            timings.append(run_job(session, api_url, content, style, wait)[0])
            seconds.append(engine.seconds(style))
    return timings, seconds


class InProcessEngine:
    """`stylize_job` in this process with what the worker would use: options, decoded images, weights."""

    def __init__(self, job: dict, content: bytes, env: dict[str, str]) -> None:
        """Build the options from the job record's params and plan, as `worker/job_options.py` does."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as the worker runs: no C++ info lines
        from shared import images
        from shared.config import Settings
        from shared.params import StyleParams
        from shared.plan import Plan
        from worker.engine.vgg import load_extractor
        from worker.job_options import stylize_options

        settings = Settings.from_env(env)
        self._extractor = load_extractor(settings.vgg_weights, seed=settings.random_weights_seed)
        params = StyleParams.from_json(json.dumps(job["params"]))
        plan = Plan.from_dict(job["plan"])
        self._options = stylize_options(params, plan, style_count=1, progress_every=settings.progress_every)
        self._content, self._alpha = images.decode_image_with_alpha(content, max_dim=params.max_dim)
        self._style_dim = max(16, round(params.max_dim * params.style_scale))  # as the worker decodes styles

    def seconds(self, style: bytes) -> float:
        """Wall time of one engine run on this style (decoding excluded: the worker's overhead)."""
        from shared import images
        from worker.engine.pipeline import stylize_job

        decoded = images.decode_image(style, max_dim=self._style_dim)
        started = time.perf_counter()
        stylize_job(self._extractor, self._content, [decoded], options=self._options, alpha=self._alpha)
        return time.perf_counter() - started


def table(timings: list[JobTiming], engine: list[float], wait: str = "events") -> list[str]:
    """Markdown lines: the header and one row per measure, each the median over the jobs."""
    from bench._stack import median_ms

    def median(name: str) -> float:
        return median_ms([getattr(timing, name) for timing in timings])

    engine_ms = median_ms(engine)
    overhead_ms = median_ms(
        [timing.end_to_end - seconds for timing, seconds in zip(timings, engine, strict=True)]
    )
    verdict = f"< {TARGET_MS:g} ms: {'met' if overhead_ms < TARGET_MS else 'MISSED'}"
    measures = [
        (f"end-to-end: POST sent → `succeeded` seen ({SEEN_BY[wait]})", median("end_to_end"), ""),
        ("submit: POST sent → `created_at`", median("submit"), ""),
        ("queue wait: `created_at` → `started_at`", median("queue_wait"), ""),
        ("worker: `started_at` → `finished_at`", median("worker"), ""),
        ("seen: `finished_at` → `succeeded` seen", median("seen_after"), ""),
        ("worker, to step 0 reported (fetch, decode, targets, first losses)", median("to_first_report"), ""),
        ("worker, after last step reported (encode, upload result, record)", median("after_last_report"), ""),
        ("engine alone: `stylize_job` in-process, same options, images and weights", engine_ms, ""),
        (
            "worker − engine (medians): fetch, decode, records, encode, upload",
            median("worker") - engine_ms,
            "",
        ),
        ("**overhead: end-to-end − engine**", overhead_ms, verdict),
    ]
    header = f"| per job, median of {len(timings)} (1 step, {SIZE} px) | ms | target |"
    return [header, "|---|---|---|"] + [f"| {name} | {ms:.1f} | {goal} |" for name, ms, goal in measures]


def rows(jobs: int = 5, wait: str = "events") -> list[str]:
    """Start the stack, time the jobs and the engine, stop the stack; the table's lines, header included."""
    from bench._stack import running_stack

    content, styles = png(0), [png(seed) for seed in range(1, jobs + 2)]
    with tempfile.TemporaryDirectory(prefix="sf-job-overhead-") as tmp:
        with running_stack(Path(tmp), worker=True) as stack:
            return table(*run_jobs(stack.api_url, content, styles, stack.env, wait), wait)


def main() -> int:
    """Run the benchmark from the command line and print its table."""
    from bench.report import header

    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5, help="timed jobs, after one warm-up job")
    parser.add_argument("--wait", choices=sorted(SEEN_BY), default="events", help="how the end is seen")
    args = parser.parse_args()
    print("\n".join(header("per-job overhead")), flush=True)  # the load average before the run
    print("\n".join(rows(args.jobs, args.wait)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
