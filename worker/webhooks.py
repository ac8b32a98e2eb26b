"""Webhook delivery: a Celery task on the `webhooks` queue POSTs one signed message, retrying with backoff.

It runs on its own light workers (no model):
`celery -A worker.celery_app worker -Q webhooks --pool threads --concurrency 4 --hostname hooks@%h`.
"""

import logging
from collections.abc import Callable

import requests

from shared.config import Settings
from shared.errors import InvalidInput
from shared.webhooks import DELIVER_TASK, check_url, signed_headers
from worker.celery_app import app

log = logging.getLogger("styleforge.webhooks")

# Longest wait between two attempts, in seconds: past an hour a receiver is down, not flaky.
MAX_BACKOFF_S = 3600.0
USER_AGENT = "styleforge-webhooks/0.1"


def backoff_s(retries: int, base_s: float) -> float:
    """Seconds before the next attempt after `retries` retries: base, 2 x base, 4 x base, ... capped."""
    return min(base_s * 2**retries, MAX_BACKOFF_S)


def should_retry(status: int | None) -> bool:
    """Connection errors and timeouts (None), 429 and 5xx deserve another attempt; other answers are final."""
    return status is None or status == 429 or status >= 500


def post_once(
    url: str, msg_id: str, body: str, *, secret: str, timeout_s: float, post: Callable = requests.post
) -> int | None:
    """One signed POST: the answer's status code, or None when no answer came."""
    headers = {**signed_headers(secret, msg_id, body), "user-agent": USER_AGENT}
    try:
        # No redirects: a 3xx to an internal address would walk around the SSRF guard.
        response = post(url, data=body.encode(), headers=headers, timeout=timeout_s, allow_redirects=False)
    except requests.RequestException as err:
        log.info("webhook %s to %s: no answer (%s)", msg_id, url, type(err).__name__)
        return None
    response.close()
    return response.status_code


def may_send(url: str, msg_id: str, settings: Settings) -> bool:
    """The deployment can sign, and the URL still passes the SSRF guard (DNS may have changed since)."""
    if not settings.webhook_secret:
        log.error("webhook %s dropped: STYLEFORGE_WEBHOOK_SECRET is not set on this worker", msg_id)
        return False
    try:
        check_url(url, allowlist=settings.webhook_allowlist)
    except InvalidInput as err:
        log.warning("webhook %s dropped: %s", msg_id, err.message)
        return False
    return True


@app.task(name=DELIVER_TASK, bind=True, ignore_result=True)
def deliver_webhook(self, url: str, msg_id: str, body: str) -> None:
    """POST one message; retry with exponential backoff on no answer, 429 and 5xx; never crash the worker."""
    settings = app.settings or Settings.from_env()
    attempt = self.request.retries + 1
    try:
        if not may_send(url, msg_id, settings):
            return
        status = post_once(
            url, msg_id, body, secret=settings.webhook_secret, timeout_s=settings.webhook_timeout_s
        )
    except Exception:  # a bad message must not take the delivery worker down with it
        log.exception("webhook %s to %s: giving up after an unexpected error", msg_id, url)
        return
    if status is not None and 200 <= status < 300:
        log.info("webhook %s delivered to %s (attempt %d, HTTP %d)", msg_id, url, attempt, status)
        return
    if should_retry(status) and attempt < settings.webhook_max_attempts:
        wait = backoff_s(self.request.retries, settings.webhook_backoff_s)
        log.info(
            "webhook %s to %s: attempt %d got %s; retrying in %.1f s", msg_id, url, attempt, status, wait
        )
        raise self.retry(countdown=wait, max_retries=settings.webhook_max_attempts - 1)
    log.warning(
        "webhook %s to %s failed for good after %d attempt(s): last answer %s", msg_id, url, attempt, status
    )
