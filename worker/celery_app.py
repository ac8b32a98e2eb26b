"""The Celery app: Redis broker and backend, settings applied lazily at first use, never at import.

Start a worker with `styleforge worker`, or plainly with
`celery -A worker.celery_app worker --pool solo --concurrency 1 -Q interactive,bulk`.
Webhook deliveries run on their own workers, which load no model:
`celery -A worker.celery_app worker -Q webhooks --pool threads --concurrency 4 --hostname hooks@%h`.
"""

from celery import Celery
from kombu import Exchange, Queue

from shared import keys
from shared.config import Settings


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
        "task_queues": [
            Queue(name, Exchange(name, type="direct"), routing_key=name)
            for name in (*keys.GPU_QUEUES, keys.WEBHOOKS_QUEUE)
        ],
        "task_default_queue": keys.INTERACTIVE_QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "imports": ["worker.tasks", "worker.webhooks"],
    }


class StyleforgeCelery(Celery):
    """Reads settings from the environment when the config is first needed, unless given explicitly."""

    settings: Settings | None = None

    def on_configure(self) -> None:
        if self.settings is None:
            self.settings = Settings.from_env()
        self.conf.update(celery_config(self.settings))


def create_celery(settings: Settings | None = None) -> StyleforgeCelery:
    """A Celery app bound to the given settings (or the environment's, read at first use)."""
    celery = StyleforgeCelery("styleforge", set_as_current=False)
    celery.settings = settings
    return celery


# `celery -A worker.celery_app` finds this; nothing is read or connected until it is configured.
app = create_celery()
app.set_current()
