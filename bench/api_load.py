"""API load: requests/s and latency of status reads and submissions, driven by wrk (issue 7).

Usage: python bench/api_load.py [--duration 10] [--threads 2] [--connections 16] [--api-workers N]

Starts a throwaway redis-server, moto's S3 server and the API under gunicorn (deploy/gunicorn.conf.py; its
workers and threads unless --api-workers is given), on loopback. No GPU worker: status reads need none, and
the submitted jobs simply stay queued, so the API has the machine's cores to itself (wrk aside). Two wrk runs:

- status: `GET /v1/jobs/{id}` round-robin over a few queued jobs, made first by POST;
- submit: `POST /v1/jobs`, the smallest valid job (multipart 32x32 PNG content and style, steps=1,
  max_dim=32); each request stores a job in Redis and enqueues its Celery message (the images are
  content-addressed, so S3 sees a HEAD per image and no upload after the first).

Prints a markdown table of requests/s, p50 and p99 (wrk --latency). Needs `wrk` (Debian package `wrk`).
"""

import argparse
import io
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/api_load.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO))

STATUS_JOBS = 4
BOUNDARY = "styleforge-bench-boundary"
GET_TARGET_RPS = 1000
GET_TARGET_P99_MS = 50.0
HEADER = ["| load | requests/s | p50 ms | p99 ms | target |", "|---|---|---|---|---|"]

# Round-robin over the paths in the Lua table `paths`.
GET_SCRIPT = """
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""
POST_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"
local body = assert(io.open("{body}", "rb"))
wrk.body = body:read("*a")
body:close()
"""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reported."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad_responses: int  # non-2xx/3xx answers plus socket errors


@dataclass(frozen=True)
class Load:
    """How hard wrk pushes: seconds, threads and open connections."""

    duration_s: int = 10
    threads: int = 2
    connections: int = 16


def tiny_png(seed: int) -> bytes:
    """A 32x32 RGB PNG of seeded noise."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def submission_body() -> bytes:
    """The multipart body of the smallest valid job: 32x32 content and style, one step at 32 px."""
    parts = [_field("steps", b"1"), _field("max_dim", b"32")]
    parts += [_file("content", tiny_png(1)), _file("style", tiny_png(2))]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _field(name: str, value: bytes) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"


def _file(name: str, data: bytes) -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
    return (head + "Content-Type: image/png\r\n\r\n").encode() + data + b"\r\n"


def create_jobs(api_url: str, count: int) -> list[str]:
    """Submit `count` jobs the way wrk will; their ids (they stay queued: no worker runs)."""
    import requests

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    ids = []
    for _ in range(count):
        answer = requests.post(f"{api_url}/v1/jobs", data=submission_body(), headers=headers, timeout=10)
        answer.raise_for_status()
        ids.append(answer.json()["id"])
    return ids


def run_wrk(url: str, script: Path, load: Load) -> WrkResult:
    """One wrk run with --latency; its parsed summary."""
    args = ["wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{load.duration_s}s", "--latency"]
    args += ["-s", str(script), url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=load.duration_s + 30, check=True)
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> WrkResult:
    """Requests/s, the 50th and 99th latency percentiles, and the failures, from wrk's report."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    count = re.search(r"^\s+(\d+) requests in", output, re.M)
    if rps is None or count is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failures = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=_percentile_ms(output, 50),
        p99_ms=_percentile_ms(output, 99),
        requests=int(count.group(1)),
        bad_responses=failures,
    )


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _percentile_ms(output: str, percent: int) -> float:
    found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    if found is None:
        raise RuntimeError(f"wrk printed no {percent}% latency (was --latency given?):\n{output}")
    return float(found.group(1)) * _UNIT_MS[found.group(2)]


def measure(api_url: str, workdir: Path, load: Load) -> dict[str, WrkResult]:
    """wrk against status reads of a few queued jobs, then against submissions."""
    ids = create_jobs(api_url, STATUS_JOBS)
    paths = ", ".join(f'"/v1/jobs/{job_id}"' for job_id in ids)
    get_script = workdir / "status.lua"
    get_script.write_text(f"paths = {{{paths}}}\n{GET_SCRIPT}")
    body = workdir / "submit.body"
    body.write_bytes(submission_body())
    post_script = workdir / "submit.lua"
    post_script.write_text(POST_SCRIPT.replace("{boundary}", BOUNDARY).replace("{body}", str(body)))
    return {
        "status": run_wrk(f"{api_url}/v1/jobs/{ids[0]}", get_script, load),
        "submit": run_wrk(f"{api_url}/v1/jobs", post_script, load),
    }


def table(results: dict[str, WrkResult], load: Load) -> list[str]:
    """Markdown lines: the header, one row per load, and a note for any failed request."""
    status, submit = results["status"], results["submit"]
    met = status.requests_per_s >= GET_TARGET_RPS and status.p99_ms < GET_TARGET_P99_MS
    goal = f"≥ {GET_TARGET_RPS} req/s, p99 < {GET_TARGET_P99_MS:g} ms: {'met' if met else 'MISSED'}"
    shape = f"wrk -t{load.threads} -c{load.connections} -d{load.duration_s}s"
    lines = HEADER + [
        _row(f"status `GET /v1/jobs/{{id}}` ({shape})", status, goal),
        _row(f"submit `POST /v1/jobs`, 2 × 32 px PNG ({shape})", submit, "none set"),
    ]
    for name, result in results.items():
        if result.bad_responses:
            failed = f"{result.bad_responses} of {result.requests}"
            lines += ["", f"{name}: {failed} requests failed or were not 2xx"]
    return lines


def _row(load: str, result: WrkResult, target: str) -> str:
    return f"| {load} | {result.requests_per_s:.0f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} | {target} |"


def rows(load: Load | None = None, api_workers: int | None = None) -> list[str]:
    """Start the stack, run both loads, stop the stack; the markdown table's lines, header included."""
    from bench._stack import running_stack

    load = load or Load()
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed; apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="sf-api-load-") as tmp:
        workdir = Path(tmp)
        with running_stack(workdir, worker=False, api_workers=api_workers) as stack:
            return table(measure(stack.api_url, workdir, load), load)


def main() -> int:
    """Run the benchmark from the command line and print its table."""
    from bench.report import header

    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--api-workers", type=int, default=None, help="override gunicorn's workers")
    args = parser.parse_args()
    load = Load(duration_s=args.duration, threads=args.threads, connections=args.connections)
    print("\n".join(header("API load under gunicorn")), flush=True)  # the load average before the run
    print("\n".join(rows(load, api_workers=args.api_workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
