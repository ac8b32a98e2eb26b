"""Scaling: jobs per minute with 1 and with 2 GPU workers on this machine, and what one job costs Redis
(issue 13).

Usage: python bench/scaling.py [--jobs 8] [--cost-jobs 10]

Starts a throwaway redis-server, moto's S3 server and the API under gunicorn (devstack's stack), then GPU
workers (`styleforge worker`, seeded random weights) at one TensorFlow thread each
(`STYLEFORGE_TF_THREADS=1`): the machine has 2 cores, so 2 workers at 1 thread each use what 1 worker at
TensorFlow's default (a thread per core) would. Throughput rounds, side by side: 1 worker, 2 workers, 1 worker
again, each a batch of ``--jobs`` items (48 px, 20 Adam steps, one style) timed from the POST to an empty
backlog (`SCARD sf:backlog:bulk`), after a warm-up item on each worker (its first job traces the compiled
step); then 1 worker at TensorFlow's default threads, for reference.

Redis cost: with one worker, `CONFIG RESETSTAT`, a batch of ``--cost-jobs`` items, then `INFO commandstats`
(calls per command), minus this script's own calls and minus the same stack's idle rate (measured over an
idle window: BRPOP timeouts, the reaper, Celery's events), divided by the jobs; twice, at 4 and at 20 steps,
so the cost splits into a fixed part per job and a part per step (cancel probes, HGET) and per progress
report (the rest). `MEMORY USAGE` of each finished job's keys (and its share of its batch's), and the
`used_memory` delta. Last, `redis-benchmark` on the same redis-server: the throughput one Redis gives here.
"""

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/scaling.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO))

SIZE = 48
STEPS = 20
COST_STEPS = (4, 20)
# The paper estimate: a 300-step job at the deployment defaults (shared/config.py, worker/recovery.py).
MODEL_STEPS = 300
MODEL_PROGRESS_EVERY = 10  # STYLEFORGE_PROGRESS_EVERY
MODEL_CHECKPOINT_STEPS, MODEL_CHECKPOINT_S = 100, 30.0  # STYLEFORGE_CHECKPOINT_EVERY(_S)
MODEL_RENEW_S = 10.0  # a lease renewal every third of STYLEFORGE_LEASE_S (30 s)
CANCEL_PROBE_S = 0.02  # CancelCheck: at most one HGET per 20 ms
MODEL_DURATIONS_S = (6, 15, 60, 300)  # a 300-step job at 20, 50, 200 and 1,000 ms per step
REDIS_BUDGET = 100_000  # simple commands/s one single-threaded Redis serves, conservatively
IDLE_S = 10.0
POLL_S = 0.25
BENCH_ONLY = {"info", "config", "memory", "scard", "scan"}  # this script's own calls (its SCARD polls)
BENCHMARK_TESTS = "get,set,hset,lpush,sadd"
SCAN_SIZES = (10_000, 100_000)  # backlog ids for the reaper-scan timing
RUNNING_SCAN = 1_000  # running jobs whose leases one reaper pass checks (1,000 GPUs busy)
SCAN_DB = 1  # the synthetic ids live apart from the stack's database 0


@dataclass(frozen=True)
class Round:
    """One throughput round: how many workers at how many threads, and what they did."""

    workers: int
    threads: int
    jobs: int
    seconds: float
    per_worker: tuple[int, ...]  # items each worker ran, most first
    clients: int  # Redis connections open at the end (the API's, the workers', this script's one)
    worker_cores: float  # CPU seconds the workers used per second of the round: what they got of the cores

    @property
    def jobs_per_min(self) -> float:
        return self.jobs / self.seconds * 60


@dataclass(frozen=True)
class Cost:
    """Redis commands per job (idle rate and this script's calls removed) and bytes per job."""

    steps: int
    calls: dict[str, float]  # command -> calls per job
    key_bytes: dict[str, float]  # key kind -> MEMORY USAGE per job
    used_memory: float  # used_memory delta per job

    @property
    def total(self) -> float:
        return sum(self.calls.values())


def png(seed: int) -> bytes:
    """A SIZE x SIZE RGB PNG of seeded noise."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


class Bench:
    """The running stack, its Redis, and the GPU workers started on it."""

    def __init__(self, stack, workdir: Path, stop: ExitStack) -> None:
        import redis

        self.stack, self._workdir, self._stop = stack, workdir, stop
        self.redis = redis.Redis.from_url(stack.env["STYLEFORGE_REDIS_URL"], decode_responses=True)
        self.port = self.redis.connection_pool.connection_kwargs["port"]
        self.workers: list = []
        self.started_workers = 0
        self.progress_every = int(stack.env["STYLEFORGE_PROGRESS_EVERY"])  # the harness's, devstack/env.py
        self._seed = 100

    def add_worker(self, threads: int):
        """Start one GPU worker at ``threads`` TensorFlow threads (0: TensorFlow's default)."""
        from devstack.processes import WorkerProcess

        self.started_workers += 1
        name = f"w{self.started_workers}"
        env = {**self.stack.env, "STYLEFORGE_TF_THREADS": str(threads)}
        worker = WorkerProcess(env, self._workdir / f"{name}.log", name=name)
        self._stop.callback(worker.stop)
        self.workers.append(worker)
        return worker

    def worker_cpu_s(self) -> float:
        """CPU seconds (user + system, all threads) the running workers have used so far."""
        ticks = 0
        for worker in self.workers:
            fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
        return ticks / os.sysconf("SC_CLK_TCK")

    def remove_worker(self, worker) -> None:
        """SIGTERM an idle worker and wait for it to exit."""
        worker.stop()
        self.workers.remove(worker)

    def batch(self, items: int, steps: int) -> list[str]:
        """Submit one batch of ``items`` distinct contents and one style; its job ids."""
        import requests

        files = [("content", (f"set/{n}.png", png(self._seed + n))) for n in range(items)]
        files.append(("style", ("style.png", png(1))))
        self._seed += items
        form = {"preset": "seed", "steps": str(steps), "max_dim": str(SIZE)}
        answer = requests.post(f"{self.stack.api_url}/v1/batches", files=files, data=form, timeout=60)
        answer.raise_for_status()
        return [item["job_id"] for item in answer.json()["items"]]

    def drain(self, timeout: float = 600) -> None:
        """Wait until the bulk backlog is empty: every item ended (SCARD polls, left out of the cost)."""
        from shared import keys

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.redis.scard(keys.backlog_key(keys.BULK_QUEUE)):
                return
            time.sleep(POLL_S)
        raise TimeoutError(f"the backlog did not empty within {timeout:.0f} s")

    def outcomes(self, job_ids: list[str]) -> list[tuple[str, str]]:
        """(status, worker) of each job."""
        from shared import keys

        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(keys.job_key(job_id), ["status", "worker"])
        return [tuple(reply) for reply in pipe.execute()]


def run_batch(bench: Bench, items: int, steps: int) -> tuple[list[str], float, Counter]:
    """One batch to its end: its job ids, seconds from POST to an empty backlog, items per worker."""
    started = time.perf_counter()
    job_ids = bench.batch(items, steps)
    bench.drain()
    seconds = time.perf_counter() - started
    outcomes = bench.outcomes(job_ids)
    failed = [status for status, _ in outcomes if status != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} item(s) did not succeed: {failed}; see the workers' logs")
    return job_ids, seconds, Counter(worker for _, worker in outcomes)


def warm_up(bench: Bench) -> None:
    """One item on every worker (its first job traces the compiled step for the bucket)."""
    for _ in range(3):
        _, _, per_worker = run_batch(bench, len(bench.workers), STEPS)
        if len(per_worker) == len(bench.workers):
            return
    raise RuntimeError(f"warm-up items did not reach every worker: {dict(per_worker)}")


def throughput(bench: Bench, jobs: int, threads: int) -> Round:
    """A timed batch on the workers running now."""
    cpu = bench.worker_cpu_s()
    _, seconds, per_worker = run_batch(bench, jobs, STEPS)
    cores = (bench.worker_cpu_s() - cpu) / seconds
    counts = tuple(sorted(per_worker.values(), reverse=True))
    clients = bench.redis.info("clients")["connected_clients"]
    workers = len(bench.workers)
    return Round(workers, threads, jobs, seconds, per_worker=counts, clients=clients, worker_cores=cores)


def rounds(bench: Bench, jobs: int) -> list[Round]:
    """1 worker, 2 workers, 1 worker again (at 1 thread each), then 1 worker at TensorFlow's default."""
    first = bench.add_worker(1)
    warm_up(bench)
    done = [throughput(bench, jobs, 1)]
    second = bench.add_worker(1)
    warm_up(bench)
    done.append(throughput(bench, jobs, 1))
    bench.remove_worker(second)
    done.append(throughput(bench, jobs, 1))
    bench.remove_worker(first)
    bench.add_worker(0)
    warm_up(bench)
    done.append(throughput(bench, jobs, 0))
    return done


def commandstats(client) -> Counter:
    """Calls per command since the last CONFIG RESETSTAT, this script's own left out."""
    calls = Counter()
    for name, stats in client.info("commandstats").items():
        command = name.removeprefix("cmdstat_")
        if command.split("|")[0] not in BENCH_ONLY:  # Redis 7 names subcommands `config|resetstat`
            calls[command] = stats["calls"]
    return calls


def idle_rate(bench: Bench) -> dict[str, float]:
    """Calls per second per command of the stack doing nothing (workers waiting on the queues)."""
    bench.redis.config_resetstat()
    time.sleep(IDLE_S)
    return {name: calls / IDLE_S for name, calls in commandstats(bench.redis).items()}


def cost(bench: Bench, jobs: int, steps: int, idle: dict[str, float]) -> Cost:
    """What ``jobs`` items of ``steps`` steps cost Redis, per job."""
    keys_before = set(bench.redis.scan_iter(count=1000))
    bench.redis.config_resetstat()
    before = bench.redis.info("memory")["used_memory"]
    started = time.perf_counter()
    job_ids, _, _ = run_batch(bench, jobs, steps)
    seconds = time.perf_counter() - started
    calls = commandstats(bench.redis)
    used = bench.redis.info("memory")["used_memory"] - before
    per_job = {name: max(0.0, count - idle.get(name, 0.0) * seconds) / jobs for name, count in calls.items()}
    sizes = key_bytes(bench, job_ids)
    added = set(bench.redis.scan_iter(count=1000)) - keys_before
    sizes["every key the batch added (SCAN)"] = (
        sum(bench.redis.memory_usage(key) or 0 for key in added) / jobs
    )
    return Cost(steps, {k: v for k, v in per_job.items() if v >= 0.05}, sizes, used / jobs)


def key_bytes(bench: Bench, job_ids: list[str]) -> dict[str, float]:
    """MEMORY USAGE per job of each kind of key a finished job leaves (its batch's shared by its items)."""
    from shared import keys

    batch_id = bench.redis.hget(keys.job_key(job_ids[0]), "batch_id")
    kinds = {
        "sf:job:{id} hash": [keys.job_key(job_id) for job_id in job_ids],
        "sf:job:{id}:events stream": [keys.job_events_key(job_id) for job_id in job_ids],
        "sf:job:{id}:steps zset": [keys.job_steps_key(job_id) for job_id in job_ids],
        "sf:batch:{id} hash": [keys.batch_key(batch_id)],
        "sf:batch:{id}:events stream": [keys.batch_events_key(batch_id)],
        "sf:batch:{id}:jobs list": [keys.batch_jobs_key(batch_id)],
    }
    return {
        kind: sum(bench.redis.memory_usage(key) or 0 for key in names) / len(job_ids)
        for kind, names in kinds.items()
    }


def redis_benchmark(port: int) -> dict[str, float]:
    """redis-benchmark's requests/s per test on this redis-server (50 clients, no pipelining)."""
    args = ["redis-benchmark", "-p", str(port), "-q", "-n", "50000", "-c", "50", "-t", BENCHMARK_TESTS]
    output = subprocess.run(args, capture_output=True, text=True, timeout=300, check=True).stdout
    found = {}
    for line in output.replace("\r", "\n").splitlines():
        name, _, rest = line.partition(":")
        if "requests per second" in rest:
            found[name.strip()] = float(rest.split("requests per second")[0].split()[-1])
    return found


def reaper_scans(redis_url: str) -> list[str]:
    """Time the reaper's two O(n) parts on synthetic ids in another database: pruning a backlog of n queued
    jobs (SMEMBERS, then EXISTS per id, pipelined) and checking the lease of each of n running jobs (EXISTS
    per id, one round trip each)."""
    import redis

    from shared import keys
    from shared.leases import LeaseStore
    from shared.store import JobStore

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = JobStore(client=client, ttl_s=3600, events_maxlen=10)
    leases = LeaseStore(client=client, holder="bench", lease_s=600)
    lines = []
    for size in SCAN_SIZES:
        ids = _synthetic_jobs(client, size)
        started = time.perf_counter()
        store.prune_backlog(keys.BULK_QUEUE)
        prune_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        held = sum(leases.is_leased(job_id) for job_id in ids[:RUNNING_SCAN])
        lease_ms = (time.perf_counter() - started) * 1000
        lines.append(
            f"| {size:,} | {prune_ms:.0f} ms ({size + 1:,} commands) | {held:,} running: {lease_ms:.0f} ms |"
        )
        client.flushdb()
    head = "| backlog ids | one prune of the backlog | lease checks of the running jobs |"
    return [head, "|---|---|---|", *lines]


def _synthetic_jobs(client, size: int) -> list[str]:
    """``size`` queued job records (one field each) in the bulk backlog, the first RUNNING_SCAN leased."""
    from shared import keys

    ids = [f"scan{index:07d}" for index in range(size)]
    for start in range(0, size, 10_000):
        pipe = client.pipeline(transaction=False)
        chunk = ids[start : start + 10_000]
        for job_id in chunk:
            pipe.hset(keys.job_key(job_id), "status", "queued")
        pipe.sadd(keys.backlog_key(keys.BULK_QUEUE), *chunk)
        pipe.execute()
    pipe = client.pipeline(transaction=False)
    for job_id in ids[:RUNNING_SCAN]:
        pipe.set(keys.job_lease_key(job_id), "bench", px=600_000)
    pipe.execute()
    return ids


def round_table(done: list[Round]) -> list[str]:
    """Markdown: each round, and the 2-worker ratio to the mean of the 1-worker rounds around it."""
    lines = [
        f"| workers × TF threads | jobs ({SIZE} px, {STEPS} steps) | seconds | jobs/min | items per worker |"
        " worker CPU, cores | Redis clients |",
        "|---|---|---|---|---|---|---|",
    ]
    for one in done:
        threads = one.threads or "default (2)"
        per = " / ".join(str(count) for count in one.per_worker)
        rate = f"{one.seconds:.1f} | {one.jobs_per_min:.1f}"
        cores = f"{one.worker_cores:.2f}"
        lines.append(f"| {one.workers} × {threads} | {one.jobs} | {rate} | {per} | {cores} | {one.clients} |")
    single = [one.jobs_per_min for one in done if one.workers == 1 and one.threads == 1]
    pair = next(one.jobs_per_min for one in done if one.workers == 2)
    ratio = pair / (sum(single) / len(single))
    lines += ["", f"**2 workers / 1 worker (1 TF thread each): {ratio:.2f}x** (1-worker rounds: "]
    lines[-1] += ", ".join(f"{rate:.1f}" for rate in single) + " jobs/min). The ceiling is 2.0x on 2 idle"
    lines[-1] += " cores; the worker CPU column shows what the workers actually got of them."
    return lines


def cost_tables(costs: list[Cost], idle: dict[str, float]) -> list[str]:
    """Markdown: calls per job per command at each step count, the per-step split, and bytes per job."""
    short, long = costs
    names = sorted(set(short.calls) | set(long.calls), key=lambda name: -long.calls.get(name, 0.0))
    span = long.steps - short.steps
    head = f"| command | per job, {short.steps} steps | per job, {long.steps} steps |"
    lines = [head + f" per step (difference / {span}) |", "|---|---|---|---|"]
    for name in names:
        low, high = short.calls.get(name, 0.0), long.calls.get(name, 0.0)
        lines.append(f"| {name} | {low:.1f} | {high:.1f} | {(high - low) / span:.2f} |")
    per_step = (long.total - short.total) / span
    lines.append(f"| **total** | **{short.total:.1f}** | **{long.total:.1f}** | **{per_step:.2f}** |")
    lines += ["", "Idle stack (per second, all workers waiting): " + _rates(idle), ""]
    lines += ["| key (finished job) | bytes per job |", "|---|---|"]
    lines += [f"| {kind} | {size:.0f} |" for kind, size in long.key_bytes.items()]
    lines.append(f"| `used_memory` delta / jobs ({long.steps} steps) | {long.used_memory:.0f} |")
    return lines


@dataclass(frozen=True)
class CostModel:
    """Commands per job split into fixed, per step (cancel probes: HGET) and per progress report (the rest),
    from two cost batches at different step counts."""

    fixed: float
    per_probe: float
    per_report: float

    @classmethod
    def fit(cls, short: Cost, long: Cost, progress_every: int) -> "CostModel":
        span = long.steps - short.steps
        probes = (long.calls.get("hget", 0.0) - short.calls.get("hget", 0.0)) / span
        reports = (long.steps - short.steps) / progress_every
        per_report = (long.total - short.total - probes * span) / reports
        short_reports = short.steps // progress_every + 1  # step 0 is reported too
        return cls(short.total - probes * short.steps - per_report * short_reports, probes, per_report)

    def per_job(self, seconds: float) -> float:
        """Commands of a MODEL_STEPS job that takes ``seconds``, at the deployment defaults."""
        probes = min(MODEL_STEPS, seconds / CANCEL_PROBE_S) * self.per_probe
        checkpoints = max(MODEL_STEPS // MODEL_CHECKPOINT_STEPS - 1, int(seconds // MODEL_CHECKPOINT_S))
        reports = (
            MODEL_STEPS // MODEL_PROGRESS_EVERY + 1 + checkpoints
        )  # a checkpoint note writes as a report
        return self.fixed + probes + reports * self.per_report + seconds / MODEL_RENEW_S


def estimate_table(model: CostModel, background: float, measured_budget: float) -> list[str]:
    """Markdown: per job duration, commands per job and per busy GPU-second, and GPUs one Redis serves."""
    lines = [
        f"Model: {model.fixed:.0f} commands fixed per job + {model.per_probe:.2f} per cancel probe (one per"
        f" step, at most one per {CANCEL_PROBE_S * 1000:g} ms) + {model.per_report:.1f} per progress report"
        f" or checkpoint note + 1 lease renewal per {MODEL_RENEW_S:g} s; plus {background:.1f}/s per worker"
        " in the background (the idle rate above: BRPOP, Celery heartbeats, reaper lock).",
        "",
        f"| {MODEL_STEPS}-step job takes | commands per job | commands/s per GPU | GPUs at {REDIS_BUDGET:,}/s"
        f" | GPUs at {measured_budget:,.0f}/s (redis-benchmark here) |",
        "|---|---|---|---|---|",
    ]
    for seconds in MODEL_DURATIONS_S:
        per_job = model.per_job(seconds)
        rate = per_job / seconds + background
        ms = seconds / MODEL_STEPS * 1000
        lines.append(
            f"| {seconds} s ({ms:.0f} ms/step) | {per_job:.0f} | {rate:.1f} | {REDIS_BUDGET / rate:,.0f}"
            f" | {measured_budget / rate:,.0f} |"
        )
    return lines


def _rates(rates: dict[str, float]) -> str:
    shown = sorted(rates.items(), key=lambda item: -item[1])
    return (
        ", ".join(f"{name} {rate:.2f}" for name, rate in shown if rate >= 0.01)
        + f" (total {sum(rates.values()):.1f})"
    )


@contextmanager
def started(workdir: Path) -> Iterator[Bench]:
    """devstack's stack with no worker (the rounds start their own); everything stopped on leaving."""
    from bench._stack import running_stack

    with running_stack(workdir, worker=False) as stack, ExitStack() as stop:
        yield Bench(stack, workdir, stop)


def rows(jobs: int = 8, cost_jobs: int = 10) -> list[str]:
    """Start the stack, run the rounds and the cost batches, stop; the tables' lines."""
    with tempfile.TemporaryDirectory(prefix="sf-scaling-") as tmp, started(Path(tmp)) as bench:
        done = rounds(bench, jobs)
        idle = idle_rate(bench)
        costs = [cost(bench, cost_jobs, steps, idle) for steps in COST_STEPS]
        speeds = redis_benchmark(bench.port)
        progress_every = bench.progress_every
        scans = reaper_scans(bench.stack.env["STYLEFORGE_REDIS_URL"].rsplit("/", 1)[0] + f"/{SCAN_DB}")
    note = (
        f"Cost batches: {cost_jobs} items each on 1 worker, progress every {progress_every} steps, no "
        f"checkpoint (default 100 steps / 30 s); this script's own calls ({', '.join(sorted(BENCH_ONLY))}) "
        "left out."
    )
    bench_line = "redis-benchmark (`-n 50000 -c 50`, same redis-server): " + ", ".join(
        f"{name} {rate:,.0f}/s" for name, rate in speeds.items()
    )
    model = CostModel.fit(*costs, progress_every)
    estimate = estimate_table(model, sum(idle.values()), min(speeds.values()))
    tables = [*round_table(done), "", note, "", *cost_tables(costs, idle), "", bench_line, "", *estimate, ""]
    return tables + [
        "Reaper pass, O(n) parts, on synthetic ids (database 1 of the same redis-server):",
        "",
        *scans,
    ]


def main() -> int:
    """Run the benchmark from the command line and print its tables."""
    from bench.report import header

    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=8, help="items per timed throughput round")
    parser.add_argument("--cost-jobs", type=int, default=10, help="items per Redis-cost batch")
    args = parser.parse_args()
    print("\n".join(header("scaling: 1 vs 2 workers, Redis cost per job")), flush=True)
    print("\n".join(rows(args.jobs, args.cost_jobs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
