"""Small HTTP helpers shared by the demo and the gallery scripts: submit, follow, download."""

import json
import os
import time
from pathlib import Path

import requests

# Give up on a job after this long (the worker may have died): the scripts must end.
JOB_TIMEOUT_S = 900


def auth_headers() -> dict[str, str]:
    """The local stack's API key (STYLEFORGE_API_KEY, from run/api_key) as a Bearer; none in open mode."""
    key = os.environ.get("STYLEFORGE_API_KEY", "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


def submit(base: str, content: Path, styles: list[Path], params: dict) -> str:
    """POST one job (one content, one or more styles); return its id."""
    files = [("content", (content.name, content.read_bytes()))]
    files += [("style", (style.name, style.read_bytes())) for style in styles]
    data = {"params": json.dumps(params)}
    response = requests.post(f"{base}/v1/jobs", files=files, data=data, headers=auth_headers(), timeout=60)
    if response.status_code != 202:
        raise SystemExit(f"submitting {content.name} failed ({response.status_code}): {response.text}")
    return response.json()["id"]


def follow(base: str, job_id: str, label: str, *, every_line: bool = True) -> dict:
    """Print progress until the job is terminal; return its final JSON."""
    last = None
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = requests.get(f"{base}/v1/jobs/{job_id}", headers=auth_headers(), timeout=30).json()
        line = progress_line(job, label)
        if line != last and (every_line or job["status"] != "running"):
            print(line, flush=True)
            last = line
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(1)
    raise SystemExit(f"{label}: no result after {JOB_TIMEOUT_S} s; see run/worker.log")


def progress_line(job: dict, label: str) -> str:
    """One line: status, step and total loss."""
    progress = job["progress"]
    loss = job["losses"].get("total")
    loss_text = f" loss {loss:.4g}" if loss is not None else ""
    return f"  {label}: {job['status']} step {progress['step']}/{progress['total_steps']}{loss_text}"


def download(job: dict) -> bytes:
    """The result bytes of a succeeded job, through its presigned URL (which needs no key, and S3 would
    refuse one sent beside its signature)."""
    response = requests.get(job["result"]["url"], timeout=60)
    response.raise_for_status()
    return response.content
