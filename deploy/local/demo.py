"""Stylize the examples end to end through the running local stack, and save the results in ./out/."""

import json
import os
import sys
from pathlib import Path

from http_jobs import download, follow, submit

REPO = Path(__file__).resolve().parents[2]
# The default preset (quality: L-BFGS, 256 -> 128 px coarse-to-fine, a feed-forward preview) at 256 px, as a
# user who names no preset gets it.
DEMO_PARAMS = {"max_dim": 256}


def main() -> int:
    """Submit every example content image with the example style, follow progress, download results."""
    base = os.environ["STYLEFORGE_API_URL"]
    out = REPO / "out"
    out.mkdir(exist_ok=True)
    style = REPO / "examples" / "style" / "hubble_deep_field.jpg"
    contents = sorted((REPO / "examples" / "content").glob("*.png"))
    jobs = {path: submit(base, path, [style], DEMO_PARAMS) for path in contents}
    print(f"submitted {len(jobs)} jobs with style {style.name}, params {json.dumps(DEMO_PARAMS)}")
    finished = {path: follow(base, job_id, path.name) for path, job_id in jobs.items()}
    return report(finished, out)


def report(finished: dict[Path, dict], out: Path) -> int:
    """Download the results, print where they are and which weights made them."""
    failures = 0
    for content, job in finished.items():
        if job["status"] != "succeeded":
            print(f"FAILED {content.name}: {job['error']}")
            failures += 1
            continue
        target = out / f"{content.stem}_stylized.png"
        target.write_bytes(download(job))
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
