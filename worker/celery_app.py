"""The workers' Celery app: the shared configuration (`shared/celery_config.py`) plus the task modules,
settings applied lazily at first use, never at import.

Start a worker with `styleforge worker`, or plainly with
`celery -A worker.celery_app worker --pool threads --concurrency 1 -Q interactive,bulk`.
Webhook deliveries run on their own workers, which load no model:
`celery -A worker.celery_app worker -Q webhooks --pool threads --concurrency 4 --hostname hooks@%h`.
Senders never need this app: they use `shared.celery_config.create_producer`.
"""

from celery import Celery

from shared.celery_config import APP_NAME, celery_config
from shared.config import Settings

TASK_MODULES = ["worker.tasks", "worker.webhooks"]  # what a worker registers: stylize, deliver webhook


def worker_config(settings: Settings) -> dict[str, object]:
    """The shared Celery settings plus the modules that register the worker's tasks."""
    return {**celery_config(settings), "imports": TASK_MODULES}


class StyleforgeCelery(Celery):
    """Reads settings from the environment when the config is first needed, unless given explicitly."""

    settings: Settings | None = None

    def on_configure(self) -> None:
        if self.settings is None:
            self.settings = Settings.from_env()
        self.conf.update(worker_config(self.settings))


def create_celery(settings: Settings | None = None) -> StyleforgeCelery:
    """A worker's Celery app bound to the given settings (or the environment's, read at first use)."""
    celery = StyleforgeCelery(APP_NAME, set_as_current=False)
    celery.settings = settings
    return celery


# `celery -A worker.celery_app` finds this; nothing is read or connected until it is configured.
app = create_celery()
app.set_current()
