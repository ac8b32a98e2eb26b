"""Zip memory: the API's memory growth while it streams a big batch's results.zip (issue 4, done-criterion 2).

Usage: python bench/zip_memory.py [--items 200] [--item-kb 512] [--budget-mb 50]

Starts a throwaway redis-server, moto's S3 server and the API as its own process (`styleforge api`), with
no worker. It submits a real batch of N tiny PNGs (32x32, steps=1), then SIMULATES the worker's output: for
every job it uploads a result of about --item-kb KB (random noise, stored as a valid PNG) to
jobs/{id}/result.png and marks the job succeeded in Redis. So the zip is N x item-kb (about 100 MB by
default), over the memory budget: an implementation that built the zip in memory would grow by at least the
zip's size. It then downloads GET /v1/batches/{id}/results.zip in 64 KB chunks while sampling the API
process's VmRSS every 20 ms, checks the zip, prints a table, and exits non-zero when the growth reaches the
budget or the zip is wrong.
"""

import argparse
import datetime
import io
import logging
import os
import platform
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/zip_memory.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO))

BUCKET = "sf-zip-bench"
CHUNK = 64 * 1024
SAMPLE_EVERY_S = 0.02
MB = 1024 * 1024


@dataclass
class ZipMemoryResult:
    """What one run measured; sizes in bytes."""

    items: int
    item_kb: int
    zip_bytes: int
    entries: int
    names_match: bool
    testzip_ok: bool
    rss_before: int
    rss_max: int
    hwm_before: int
    hwm_after: int
    samples: int
    download_s: float
    setup_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def growth(self) -> int:
        """Largest RSS seen during the download minus the RSS just before it."""
        return max(self.rss_max - self.rss_before, 0)

    @property
    def zip_valid(self) -> bool:
        """The zip reads back, has one entry per item, under the items' relative paths."""
        return self.testzip_ok and self.entries == self.items and self.names_match


def read_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in bytes, from /proc/<pid>/status."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, amount, _unit = line.split()
                values[name.rstrip(":")] = int(amount) * 1024  # the kernel reports kB
    return values["VmRSS"], values["VmHWM"]


class RssSampler:
    """Samples a process's VmRSS in a thread and keeps the largest value seen."""

    def __init__(self, pid: int, every_s: float = SAMPLE_EVERY_S) -> None:
        self._pid = pid
        self._every = every_s
        self._stop = threading.Event()
        self.max_rss = 0
        self.samples = 0
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()  # one last reading after the final chunk

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._every)

    def _sample(self) -> None:
        rss, _ = read_memory(self._pid)
        self.max_rss = max(self.max_rss, rss)
        self.samples += 1


def result_png(item_kb: int, seed: int) -> tuple[bytes, int, int]:
    """A valid RGB PNG of random noise of about item_kb KB (noise is incompressible), with its size."""
    import numpy as np
    from PIL import Image

    side = max(int((item_kb * 1024 / 3) ** 0.5), 1)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=0)  # noise would not shrink anyway
    return buffer.getvalue(), side, side


def api_env(redis_url: str, s3_endpoint: str, items: int) -> dict[str, str]:
    """The API's environment: the harness's stack in the bench's bucket, batch limits that fit its batch."""
    from devstack.env import stack_env

    return {**stack_env(redis_url, s3_endpoint, BUCKET), "STYLEFORGE_BATCH_MAX_ITEMS": str(max(items, 1000))}


def noise_png(width: int, height: int, seed: int) -> bytes:
    """A valid RGB PNG of seeded random noise, as an upload."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def item_path(index: int) -> str:
    """The relative path of one content image inside the batch."""
    return f"dir{index % 10}/img{index}.png"


def submit_batch(base_url: str, items: int) -> str:
    """POST /v1/batches with N distinct 32x32 noise PNGs and one style; the batch id."""
    import requests

    files = [("content", (item_path(i), noise_png(32, 32, seed=i))) for i in range(items)]
    files.append(("style", ("style.png", noise_png(48, 48, seed=10**6))))
    form = {"steps": "1", "max_dim": "32"}
    response = requests.post(f"{base_url}/v1/batches", files=files, data=form, timeout=120)
    if response.status_code != 202:
        raise RuntimeError(f"batch refused: {response.status_code} {response.text[:500]}")
    return response.json()["id"]


def simulate_worker(base_url: str, batch_id: str, settings, item_kb: int) -> list[dict]:
    """Upload a ~item_kb KB result per job and mark it succeeded, as a worker would; the batch's items."""
    import requests

    from shared import keys
    from shared.lifecycle import Lifecycle
    from shared.storage import build_object_store
    from shared.store import build_job_store

    batch = requests.get(f"{base_url}/v1/batches/{batch_id}?limit=1000", timeout=30).json()
    items = batch["items"]
    objects = build_object_store(settings)
    lifecycle = Lifecycle(store=build_job_store(settings))

    def finish(index_item: tuple[int, dict]) -> None:
        index, item = index_item
        data, width, height = result_png(item_kb, seed=index)
        key = keys.result_object_key("anonymous", item["job_id"], "png")
        objects.put(key, data, "image/png")
        lifecycle.start(item["job_id"])
        lifecycle.succeed(item["job_id"], result_key=key, result_width=width, result_height=height)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(finish, enumerate(items)))
    return items


def download_zip(url: str, dest: Path, pid: int) -> tuple[int, RssSampler, float]:
    """Stream the zip to a file in 64 KB chunks while sampling the API's RSS; (bytes, sampler, seconds)."""
    import requests

    total = 0
    started = time.perf_counter()
    with RssSampler(pid) as sampler, requests.get(url, stream=True, timeout=120) as response:
        response.raise_for_status()
        with open(dest, "wb") as out:
            for chunk in response.iter_content(chunk_size=CHUNK):
                total += len(chunk)
                out.write(chunk)  # to disk, not memory: the bench holds one chunk at a time
    return total, sampler, time.perf_counter() - started


def run(items: int = 200, item_kb: int = 512) -> ZipMemoryResult:
    """Start the stack, build the batch, download its zip while measuring the API; stop everything."""
    from devstack.processes import ApiProcess, RedisServer, S3Server
    from shared.config import Settings

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server would log every request
    started = time.perf_counter()
    stopping = []
    with tempfile.TemporaryDirectory(prefix="sf-zip-bench-") as tmp:
        workdir = Path(tmp)
        try:
            redis_server = RedisServer(workdir)
            stopping.append(redis_server)
            s3_server = S3Server()
            stopping.append(s3_server)
            env = api_env(redis_server.url(0), s3_server.endpoint, items)
            api = ApiProcess(env, workdir / "api.log")
            stopping.append(api)
            settings = Settings.from_env(env)

            batch_id = submit_batch(api.url, items)
            batch_items = simulate_worker(api.url, batch_id, settings, item_kb)
            setup_s = time.perf_counter() - started

            rss_before, hwm_before = read_memory(api.pid)
            dest = workdir / "results.zip"
            zip_url = f"{api.url}/v1/batches/{batch_id}/results.zip"
            zip_bytes, sampler, download_s = download_zip(zip_url, dest, api.pid)
            _, hwm_after = read_memory(api.pid)

            with zipfile.ZipFile(dest) as archive:
                testzip_ok = archive.testzip() is None
                names = sorted(archive.namelist())
            expected = sorted(item["path"] for item in batch_items)  # inputs are .png, results too
            return ZipMemoryResult(
                items=items,
                item_kb=item_kb,
                zip_bytes=zip_bytes,
                entries=len(names),
                names_match=names == expected,
                testzip_ok=testzip_ok,
                rss_before=rss_before,
                rss_max=max(sampler.max_rss, rss_before),
                hwm_before=hwm_before,
                hwm_after=hwm_after,
                samples=sampler.samples,
                download_s=download_s,
                setup_s=setup_s,
            )
        finally:
            for server in reversed(stopping):
                server.stop()


def report(result: ZipMemoryResult, command: str, budget_mb: float) -> str:
    """The result as a small markdown table, with the date, machine and command."""
    cores = f"{os.cpu_count()} cores"
    machine = f"{platform.node()} ({platform.machine()}, {cores}, Python {platform.python_version()})"
    growth_mb = result.growth / MB
    rows = [
        ("date", datetime.datetime.now().isoformat(timespec="seconds")),
        ("machine", machine),
        ("command", f"`{command}`"),
        ("items", f"{result.items} (results simulated: {result.item_kb} KB noise PNG each, no worker)"),
        ("zip bytes", f"{result.zip_bytes:,} ({result.zip_bytes / MB:.1f} MB)"),
        (
            "zip check",
            f"testzip ok={result.testzip_ok}, entries={result.entries}, paths={result.names_match}",
        ),
        ("API RSS before", f"{result.rss_before / MB:.1f} MB"),
        ("API max RSS during", f"{result.rss_max / MB:.1f} MB ({result.samples} samples, every 20 ms)"),
        ("growth", f"{growth_mb:.1f} MB (budget < {budget_mb:g} MB)"),
        ("API VmHWM before/after", f"{result.hwm_before / MB:.1f} / {result.hwm_after / MB:.1f} MB"),
        ("growth / zip size", f"{result.growth / max(result.zip_bytes, 1):.3f}"),
        (
            "download",
            f"{result.download_s:.1f} s ({result.zip_bytes / MB / max(result.download_s, 1e-9):.0f} MB/s)",
        ),
        ("set-up (servers, batch, results)", f"{result.setup_s:.1f} s"),
    ]
    lines = ["| measure | value |", "|---|---|"] + [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print its table; non-zero when the growth reaches the budget or the zip is wrong."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--item-kb", type=int, default=512)
    parser.add_argument("--budget-mb", type=float, default=50.0)
    args = parser.parse_args(argv)
    result = run(items=args.items, item_kb=args.item_kb)
    command = " ".join(["python", *sys.argv] if argv is None else ["python bench/zip_memory.py", *argv])
    print(report(result, command, args.budget_mb))
    ok = result.growth < args.budget_mb * MB and result.zip_valid
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
