"""Worker composition root: builds settings, adapters and the VGG19 extractor once per process."""

import logging
import os
import time
from dataclasses import dataclass

from celery import signals

from shared.config import Settings
from shared.storage import build_object_store
from shared.store import JobStore, connect_redis
from worker.runner import JobRunner

log = logging.getLogger("styleforge.worker")


@dataclass(frozen=True)
class WorkerRuntime:
    """What one worker process holds for its whole life."""

    settings: Settings
    runner: JobRunner


_runtime: WorkerRuntime | None = None


def build_runtime(settings: Settings) -> WorkerRuntime:
    """Connect the adapters and load VGG19; raises ModelUnavailable when no weights mode loads."""
    from worker.engine.vgg import load_extractor  # TensorFlow is imported here, in the worker only

    started = time.perf_counter()
    modes = [mode.strip() for mode in settings.vgg_weights.split(",") if mode.strip()]
    extractor = load_extractor(modes, seed=settings.random_weights_seed, log=log.warning)
    log.info(
        "VGG19 built once for this process (pid %d): weights=%s in %.1f s; %s",
        os.getpid(),
        extractor.weights,
        time.perf_counter() - started,
        extractor.note,
    )
    objects = build_object_store(settings)
    objects.ensure_bucket()
    store = JobStore(
        client=connect_redis(settings.redis_url),
        ttl_s=settings.job_ttl_s,
        events_maxlen=settings.events_maxlen,
    )
    runner = JobRunner(store=store, objects=objects, extractor=extractor, settings=settings)
    return WorkerRuntime(settings=settings, runner=runner)


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


def _load_or_exit() -> None:
    from shared.errors import ModelUnavailable
    from worker.celery_app import app

    try:
        init_runtime(app.settings or Settings.from_env())
    except ModelUnavailable as err:
        log.critical("worker cannot start: %s", err.message)
        raise SystemExit(f"styleforge worker cannot start: {err.message}") from err


@signals.worker_init.connect
def _on_worker_init(sender=None, **_: object) -> None:
    # solo and threads pools run tasks in this process: load now, so a missing model stops the start.
    pool = str(getattr(sender, "pool_cls", "")).lower()
    if "solo" in pool or "thread" in pool:
        _load_or_exit()


@signals.worker_process_init.connect
def _on_worker_process_init(**_: object) -> None:
    # prefork children load after the fork: CUDA does not survive fork.
    _load_or_exit()
