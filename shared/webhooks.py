"""Webhooks: a job's target (URL + event filter), the SSRF guard, the payload and its signature.

Used by the API (parse and guard at submission) and the worker (payload, signature, guard again at delivery,
returning the checked addresses it then connects to).
"""

import ipaddress
import json
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from shared.errors import InvalidInput
from shared.jobs import JobRecord

# Celery task that POSTs one webhook; sent by name so the sender never imports the worker.
DELIVER_TASK = "styleforge.deliver_webhook"

# Event kinds a job can subscribe to, and the payload `type` each one sends.
EVENT_TYPES = {"start": "job.started", "progress": "job.progress", "completed": "job.completed"}
EVENT_KINDS = tuple(EVENT_TYPES)
SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048
# Address classes a webhook may never reach unless allowlisted (ipaddress `is_*`), most specific first.
_BLOCKED = ("loopback", "link_local", "unspecified", "multicast", "reserved", "private")

Resolver = Callable[..., list]


@dataclass(frozen=True)
class WebhookTarget:
    """Where a job's events go and which of them; an empty url means no webhook."""

    url: str = ""
    events: tuple[str, ...] = ()

    def record_fields(self) -> dict[str, object]:
        """The JobRecord / BatchRecord fields that carry this target."""
        return {"webhook": self.url, "webhook_events": self.events}


NO_WEBHOOK = WebhookTarget()


def parse_webhook(
    url: object, events: object, *, allowlist: str, secret: str, resolve: Resolver = socket.getaddrinfo
) -> WebhookTarget:
    """Validate a request's `webhook` and `webhook_events`; raises InvalidInput naming the field.

    Args:
        url: the raw `webhook` value (None or "" for no webhook).
        events: the raw `webhook_events`: a list, a comma string, or None for all three kinds.
        allowlist: STYLEFORGE_WEBHOOK_ALLOWLIST.
        secret: STYLEFORGE_WEBHOOK_SECRET; a deployment without one cannot sign, so it refuses webhooks.
        resolve: getaddrinfo, replaceable in tests.
    """
    if url is None or url == "":
        if events not in (None, "", []):
            raise InvalidInput("webhook_events needs a webhook URL", field="webhook_events")
        return NO_WEBHOOK
    if not isinstance(url, str):
        raise InvalidInput("webhook must be a URL string", field="webhook")
    url = url.strip()
    if not secret:
        raise InvalidInput(
            "this deployment has no webhook signing secret (STYLEFORGE_WEBHOOK_SECRET); submit without one",
            field="webhook",
        )
    check_url(url, allowlist=allowlist, resolve=resolve)
    return WebhookTarget(url=url, events=parse_events(events))


def parse_events(raw: object) -> tuple[str, ...]:
    """`webhook_events` as a JSON list or a comma string of start, progress, completed (default: all)."""
    if raw is None or raw == "":
        return EVENT_KINDS
    if isinstance(raw, str):
        raw = _decode_list(raw)
    if not isinstance(raw, list) or not all(isinstance(kind, str) for kind in raw):
        raise InvalidInput(
            f"webhook_events must be a list of {', '.join(EVENT_KINDS)}", field="webhook_events"
        )
    chosen = {kind.strip() for kind in raw}
    unknown = sorted(chosen - set(EVENT_KINDS))
    if unknown:
        raise InvalidInput(
            f"unknown webhook event {unknown[0]!r}; choose from {', '.join(EVENT_KINDS)}",
            field="webhook_events",
        )
    if not chosen:
        raise InvalidInput("webhook_events must name at least one event", field="webhook_events")
    return tuple(kind for kind in EVENT_KINDS if kind in chosen)


def _decode_list(text: str) -> object:
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except ValueError as err:
            raise InvalidInput(f"webhook_events is not valid JSON: {err}", field="webhook_events") from err
    return [part for part in text.split(",") if part.strip()]


def check_url(url: str, *, allowlist: str, resolve: Resolver = socket.getaddrinfo) -> None:
    """The SSRF guard: refuse non-http(s) URLs and hosts resolving to non-public addresses, unless allowed.

    Allowlist entries are matched against the URL's host, and against `host:port` with the URL's explicit or
    default port (`[::1]:8080` for IPv6). An allowlisted URL is not resolved at all.
    """
    parts = _split(url)
    if _allowlisted(parts, allowlist):
        return
    _refuse_non_public(parts.hostname or "", _resolve(parts.hostname or "", parts.port, resolve))


def checked_addresses(
    url: str, *, allowlist: str, resolve: Resolver = socket.getaddrinfo
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Resolve the URL's host once and return its addresses, every one passed by the SSRF guard.

    The delivery connects to one of these and never resolves the host again, so a DNS answer that changes
    between the check and the connection (DNS rebinding) cannot reach a private address. An allowlisted host
    is resolved too, but its addresses are not judged, as `check_url` does not judge them.
    """
    parts = _split(url)
    host = parts.hostname or ""
    addresses = _resolve(host, parts.port, resolve)
    if not _allowlisted(parts, allowlist):
        _refuse_non_public(host, addresses)
    return addresses


def _refuse_non_public(host: str, addresses: list) -> None:
    for address in addresses:
        kind = next((kind for kind in _BLOCKED if getattr(address, f"is_{kind}")), None)
        if kind is None and not address.is_global:
            kind = "non-public"
        if kind is not None:
            raise InvalidInput(
                f"webhook host {host!r} resolves to {address}, a {kind} address; "
                "ask the operator to add it to STYLEFORGE_WEBHOOK_ALLOWLIST if it is meant",
                field="webhook",
            )


def _split(url: str):
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"webhook URL is longer than {MAX_URL_LENGTH} characters", field="webhook")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as err:
        raise InvalidInput(f"webhook is not a valid URL: {err}", field="webhook") from err
    if parts.scheme.lower() not in SCHEMES:
        raise InvalidInput("webhook must be an http:// or https:// URL", field="webhook")
    if not parts.hostname:
        raise InvalidInput("webhook URL has no host", field="webhook")
    if parts.username or parts.password:
        raise InvalidInput("webhook URL must not carry credentials", field="webhook")
    return parts


def _allowlisted(parts, allowlist: str) -> bool:
    host = parts.hostname.lower()
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    bracketed = f"[{host}]" if ":" in host else host
    names = {host, bracketed, f"{bracketed}:{port}"}
    entries = {entry.strip().lower() for entry in allowlist.split(",") if entry.strip()}
    return bool(names & entries)


def _resolve(host: str, port: int | None, resolve: Resolver) -> list:
    try:
        infos = resolve(host, port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as err:
        raise InvalidInput(f"webhook host {host!r} does not resolve: {err}", field="webhook") from err
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise InvalidInput(f"webhook host {host!r} does not resolve", field="webhook")
    # An IPv4-mapped IPv6 address (::ffff:10.0.0.1) reaches the IPv4 host: judge that one.
    return [getattr(address, "ipv4_mapped", None) or address for address in addresses]


def job_snapshot(record: JobRecord) -> dict[str, object]:
    """The `data` of a webhook: what a receiver needs to know about the job, from a JobRecord."""
    return {
        "id": record.id,
        "status": record.status.value,
        "step": record.step,
        "total_steps": record.total_steps,
        "losses": dict(record.losses),
        "error": record.error or None,
        "result_key": record.result_key or None,
        "batch_id": record.batch_id or None,
        "path": record.path or None,
    }


@dataclass(frozen=True)
class WebhookMessage:
    """One event for one URL: its id stays the same across delivery attempts, so receivers can dedupe."""

    url: str
    msg_id: str
    body: str

    @classmethod
    def build(
        cls, url: str, kind: str, data: Mapping[str, object], *, now: float | None = None
    ) -> "WebhookMessage":
        """A new message of an event kind (start, progress, completed) with a fresh id."""
        payload = {
            "type": EVENT_TYPES[kind],
            "timestamp": _iso(time.time() if now is None else now),
            "data": data,
        }
        return cls(url=url, msg_id=f"msg_{uuid.uuid4().hex}", body=json.dumps(payload, sort_keys=True))

    def to_args(self) -> list[str]:
        """Celery task args (JSON-serialisable)."""
        return [self.url, self.msg_id, self.body]


def signed_headers(secret: str, msg_id: str, body: str, *, now: float | None = None) -> dict[str, str]:
    """Standard Webhooks headers for one attempt: the timestamp is the attempt's, the id the message's."""
    sent_at = datetime.fromtimestamp(int(time.time() if now is None else now), UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, sent_at, body),
    }


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()
