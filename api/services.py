"""The API's adapters, built once by create_app and reached per request through `services()`."""

from dataclasses import dataclass
from functools import cached_property

from flask import current_app

from shared.api_keys import KeyStore
from shared.batch_store import BatchStore
from shared.celery_config import create_producer
from shared.config import Settings
from shared.fair_share import FairShare
from shared.idempotency import IdempotencyStore
from shared.lifecycle import Lifecycle, WebhookHook
from shared.manifests import ManifestHook, ManifestWriter
from shared.notify import WebhookNotifier
from shared.queue import CeleryJobQueue, JobQueue
from shared.quotas import Quotas, QuotaStore
from shared.storage import ObjectStore, build_object_store
from shared.store import JobStore, build_job_store
from shared.style_library import StyleLibrary


@dataclass(frozen=True)
class Services:
    """Everything a request handler talks to."""

    settings: Settings
    store: JobStore
    objects: ObjectStore
    queue: JobQueue
    batches: BatchStore | None = None  # unit tests of single jobs need none
    idempotency: IdempotencyStore | None = None
    notifier: WebhookNotifier | None = (
        None  # tells webhooks of jobs the API itself ends (cancel while queued)
    )
    api_keys: KeyStore | None = None  # STYLEFORGE_AUTH=required checks every /v1 request's key here
    styles: StyleLibrary | None = None  # the tenants' saved house styles
    fair_share: FairShare | None = None  # None: batch items are sent at once (unit tests)
    quotas: QuotaStore | None = None  # per-tenant quotas, checked by the submissions' use cases
    # Where Flask-Limiter keeps its counts: the deployment's Redis; fakes count in the process's memory.
    rate_limit_storage_uri: str = "memory://"

    @cached_property
    def lifecycle(self) -> Lifecycle:
        """The only way the API changes a job's status."""
        hooks = [WebhookHook(self.notifier)] if self.notifier is not None else []
        if self.batches is not None:  # a batch the API ends (canceled, refused whole) gets its manifest too
            writer = ManifestWriter(batches=self.batches, objects=self.objects)
            hooks.append(ManifestHook(writer))
        return Lifecycle(
            store=self.store, queue=self.queue, batches=self.batches, hooks=hooks, fair_share=self.fair_share
        )


def build_services(settings: Settings) -> Services:
    """Real adapters for settings; connects nothing until first used."""
    store = build_job_store(settings)
    batches = BatchStore(client=store.client, jobs=store, ttl_s=settings.job_ttl_s)
    celery = create_producer(settings)  # sends by name; imports nothing of worker/
    return Services(
        settings=settings,
        store=store,
        batches=batches,
        idempotency=IdempotencyStore(client=store.client, ttl_s=settings.idempotency_ttl_s),
        objects=build_object_store(settings),
        queue=CeleryJobQueue(celery=celery),
        notifier=WebhookNotifier(celery=celery),
        api_keys=KeyStore(client=store.client),
        styles=StyleLibrary(client=store.client),
        fair_share=FairShare(client=store.client, items=settings.fair_share_items),
        quotas=QuotaStore(client=store.client, defaults=Quotas.defaults(settings)),
        rate_limit_storage_uri=settings.redis_url,
    )


def init_app(app, services: Services) -> None:
    """Attach services to the app."""
    app.extensions["styleforge"] = services


def services() -> Services:
    """The current app's services."""
    return current_app.extensions["styleforge"]
