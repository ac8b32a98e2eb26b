"""Celery's configuration, one dict for both ends of the queues, and the producer app that senders use.

The API (jobs, cancels' webhooks) and the workers (requeues, webhooks) send tasks by name through
`create_producer`, so no sender imports `worker/`. The worker's own app (`worker/celery_app.py`) is this same
configuration plus its task modules.
"""

from celery import Celery
from kombu import Exchange, Queue

from shared import keys
from shared.config import Settings

APP_NAME = "styleforge"  # Celery's main name, the same for the producers and the workers


def celery_config(settings: Settings) -> dict[str, object]:
    """Celery settings for long GPU tasks that must survive a worker's death."""
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        "task_ignore_result": True,  # job state lives in sf:job:* hashes, not Celery results
        "task_acks_late": True,  # ack after the job, so a dead worker's job is redelivered
        "task_reject_on_worker_lost": True,  # ...rather than acked and lost
        "worker_prefetch_multiplier": 1,  # a GPU worker holds one job, others stay for other workers
        # "priority": BRPOP always lists the queues in the order consumed (interactive, then bulk), so a
        # single job goes ahead of every queued batch item; the default round-robin would alternate.
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s,
            "queue_order_strategy": "priority",
        },
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "broker_connection_retry_on_startup": True,
        # GPU workers consume only the GPU queues (-Q interactive,bulk); webhook POSTs have their own queue
        # and their own light workers, so a GPU never waits on a receiver's HTTP.
        "task_queues": task_queues(),
        "task_default_queue": keys.INTERACTIVE_QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        # Task events, so Flower (and `celery events`) list queued and running tasks, not only ended ones.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
    }


def task_queues() -> list[Queue]:
    """Every queue, each on its own direct exchange of the same name (what senders route by)."""
    return [
        Queue(name, Exchange(name, type="direct"), routing_key=name)
        for name in (*keys.GPU_QUEUES, keys.WEBHOOKS_QUEUE)
    ]


def create_producer(settings: Settings) -> Celery:
    """A Celery app that only sends tasks by name (it registers none); connects nothing until first used."""
    producer = Celery(APP_NAME, set_as_current=False)
    producer.conf.update(celery_config(settings))  # held as pending until first used: nothing connects here
    return producer
