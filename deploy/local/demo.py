"""Stylize the examples end to end through the running local stack, and save the results in ./out/."""

import json
import os
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
# ~256 px and 150 Adam steps keep the demo within a few minutes on a 2-core CPU.
DEMO_PARAMS = {"max_dim": 256, "steps": 150}
# The seed preset's style weight (1e-2) is tuned to ImageNet activations; on the HED stand-in and on random
# weights the style term is too weak to move the image, so the demo raises it for those (see README).
# Give up on a job after this long (the worker may have died): the demo must end.
JOB_TIMEOUT_S = 600
STYLE_WEIGHT_FOR = {"imagenet": 1e-2, "hed": 1000.0, "random": 1.0}


def main() -> int:
    """Submit every example content image with the example style, follow progress, download results."""
    base = os.environ["STYLEFORGE_API_URL"]
    out = REPO / "out"
    out.mkdir(exist_ok=True)
    style = sorted((REPO / "examples" / "style").glob("*.*"))[0]
    contents = sorted((REPO / "examples" / "content").glob("*.*"))
    params = {**DEMO_PARAMS, "style_weight": STYLE_WEIGHT_FOR.get(os.environ.get("DEMO_WEIGHTS", ""), 1e-2)}
    jobs = {path: submit(base, path, style, params) for path in contents}
    print(f"submitted {len(jobs)} jobs with style {style.name}, params {json.dumps(params)}")
    finished = {path: follow(base, job_id, path.name) for path, job_id in jobs.items()}
    return report(finished, out)


def submit(base: str, content: Path, style: Path, params: dict) -> str:
    """POST one job; return its id."""
    files = {"content": (content.name, content.read_bytes()), "style": (style.name, style.read_bytes())}
    response = requests.post(f"{base}/v1/jobs", files=files, data={"params": json.dumps(params)}, timeout=60)
    if response.status_code != 202:
        raise SystemExit(f"submitting {content.name} failed ({response.status_code}): {response.text}")
    return response.json()["id"]


def follow(base: str, job_id: str, label: str) -> dict:
    """Print progress until the job is terminal; return its final JSON."""
    last = None
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = requests.get(f"{base}/v1/jobs/{job_id}", timeout=30).json()
        line = _progress_line(job, label)
        if line != last:
            print(line, flush=True)
            last = line
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(1)
    raise SystemExit(f"{label}: no result after {JOB_TIMEOUT_S} s; see run/worker.log")


def _progress_line(job: dict, label: str) -> str:
    progress = job["progress"]
    loss = job["losses"].get("total")
    loss_text = f" loss {loss:.4g}" if loss is not None else ""
    return f"  {label}: {job['status']} step {progress['step']}/{progress['total_steps']}{loss_text}"


def report(finished: dict[Path, dict], out: Path) -> int:
    """Download the results, print where they are and which weights made them."""
    failures = 0
    for content, job in finished.items():
        if job["status"] != "succeeded":
            print(f"FAILED {content.name}: {job['error']}")
            failures += 1
            continue
        target = out / f"{content.stem}_stylized.png"
        target.write_bytes(requests.get(job["result"]["url"], timeout=60).content)
        first, last = job["initial_losses"]["total"], job["losses"]["total"]
        print(
            f"{content.name} -> {target} ({job['result']['width']}x{job['result']['height']}, "
            f"loss {first:.4g} -> {last:.4g})\n  URL: {job['result']['url']}"
        )
    weights = {job["weights"]["mode"]: job["weights"]["note"] for job in finished.values()}
    for mode, note in weights.items():
        print(f"weights used: {mode} ({note})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
