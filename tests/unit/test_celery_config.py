"""The producers' Celery app and the workers' app share one configuration from shared/celery_config.py."""

import pytest

from shared import keys
from shared.celery_config import create_producer
from shared.config import Settings
from worker.celery_app import TASK_MODULES, create_celery

pytestmark = pytest.mark.unit

SETTINGS = Settings(redis_url="redis://127.0.0.1:1/3", visibility_timeout_s=7 * 3600)


def test_the_worker_app_is_the_producer_config_plus_its_task_modules():
    producer, worker = create_producer(SETTINGS).conf, create_celery(SETTINGS).conf
    changed = {key for key in worker if worker[key] != producer.get(key)}

    assert changed == {"imports"}
    assert list(worker["imports"]) == TASK_MODULES
    assert not producer["imports"]


def test_the_producer_routes_every_queue_to_its_own_exchange_with_the_broker_options():
    conf = create_producer(SETTINGS).conf

    assert conf["broker_url"] == conf["result_backend"] == "redis://127.0.0.1:1/3"
    assert {q.name: (q.exchange.name, q.routing_key) for q in conf["task_queues"]} == {
        name: (name, name) for name in (keys.INTERACTIVE_QUEUE, keys.BULK_QUEUE, keys.WEBHOOKS_QUEUE)
    }
    assert conf["task_default_queue"] == keys.INTERACTIVE_QUEUE
    assert conf["broker_transport_options"] == {
        "visibility_timeout": 7 * 3600,
        "queue_order_strategy": "priority",
    }
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
