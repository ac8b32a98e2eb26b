"""Webhook delivery: a Celery task on the `webhooks` queue POSTs one signed message, retrying with backoff.

It runs on its own light workers (no model):
`celery -A worker.celery_app worker -Q webhooks --pool threads --concurrency 4 --hostname hooks@%h`.
Each attempt resolves the host once, guards every address, and connects to the checked IP (`PinnedUrl`), so
DNS rebinding between the check and the connection cannot reach a private address.
"""

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from shared.config import Settings
from shared.errors import InvalidInput
from shared.logs import loggable_url, without_request_paths
from shared.webhooks import DELIVER_TASK, Resolver, checked_addresses, signed_headers
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


@dataclass(frozen=True)
class PinnedUrl:
    """A webhook URL bound to the addresses that passed the SSRF guard, tried in resolver order.

    A request goes to `request_url(address)` (the URL with its host replaced by the address), so nothing
    resolves the host again; `host_header` and `hostname` keep what the receiver, SNI and the certificate
    check must see.
    """

    url: str
    addresses: tuple[str, ...]

    @property
    def _prepared(self):
        return urlsplit(requests.Request("POST", self.url).prepare().url)  # IDNA, as requests would send it

    @property
    def hostname(self) -> str:
        """The URL's host: the TLS server name and the name the certificate must match."""
        return self._prepared.hostname or ""

    @property
    def host_header(self) -> str:
        """The URL's host and explicit port, for the Host header."""
        return self._prepared.netloc

    def request_url(self, address: str) -> str:
        """The URL with its host replaced by a checked address."""
        parts = self._prepared
        host = f"[{address}]" if ":" in address else address
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))


class PinnedTLSAdapter(HTTPAdapter):
    """HTTPS to an address while SNI and certificate verification use the URL's hostname.

    The pinning itself is only the request URL: its host is the checked IP, so urllib3 has nothing to
    resolve (getaddrinfo of an IP literal returns it), and the Host header is set explicitly. For TLS,
    urllib3 2.x (2.8 here) sends the `server_hostname` pool keyword as SNI and, with verification on, has
    OpenSSL match the certificate against it rather than the pool's host. That keyword is public and passes
    through requests' PoolManager unchanged, which makes this the least fragile choice: setting a
    connection's `_dns_host` relies on a private attribute, and overriding `create_connection` is a
    process-wide patch that the four delivery threads would race on.
    """

    def __init__(self, *, server_hostname: str) -> None:
        # Set before super(): HTTPAdapter.__init__ already builds the pool manager.
        self._server_hostname = server_hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs) -> None:
        """The default pool manager, its HTTPS pools told the hostname to verify."""
        pool_kwargs["server_hostname"] = self._server_hostname
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def pinned_session(target: PinnedUrl) -> requests.Session:
    """A session for one pinned request; it ignores proxies and netrc from the environment."""
    session = requests.Session()
    session.trust_env = False  # a proxy would connect by its own lookup of the name, outside the guard
    session.mount("https://", PinnedTLSAdapter(server_hostname=target.hostname))
    return session


def post_once(
    target: PinnedUrl,
    msg_id: str,
    body: str,
    *,
    secret: str,
    timeout_s: float,
    verify: bool | str = True,
    post: Callable | None = None,
) -> int | None:
    """One signed POST to a pinned address: the answer's status code, or None when no answer came.

    Like urllib3's own `create_connection`, the next address is tried only when no connection could be made
    to this one (refused, unreachable, connect timeout), so a message is never sent twice in one attempt.

    Args:
        verify: requests' `verify`: True, or a CA bundle path (a private CA, or a test's own).
        post: replaces the pinned session's `post` in tests.
    """
    headers = {**signed_headers(secret, msg_id, body), "user-agent": USER_AGENT, "host": target.host_header}
    with pinned_session(target) as session:
        for address in target.addresses:
            try:
                # No redirects: a 3xx to an internal address would walk around the SSRF guard.
                response = (post or session.post)(
                    target.request_url(address),
                    data=body.encode(),
                    headers=headers,
                    timeout=timeout_s,
                    allow_redirects=False,
                    verify=verify,
                )
            except requests.RequestException as err:
                log.info(
                    "webhook %s to %s at %s: no answer (%s)",
                    msg_id,
                    loggable_url(target.url),
                    address,
                    _why(err),
                )
                if _never_connected(err):
                    continue
                return None
            response.close()
            return response.status_code
    return None


def _never_connected(err: requests.RequestException) -> bool:
    # requests raises ConnectTimeout for a connect timeout, and ConnectionError around urllib3's
    # NewConnectionError for a refused or unreachable address; both mean no byte was sent.
    reason = getattr(err.args[0], "reason", None) if err.args else None
    return isinstance(err, requests.exceptions.ConnectTimeout) or isinstance(reason, NewConnectionError)


def _why(err: requests.RequestException) -> str:
    # A certificate that does not match the hostname is worth reading in full; other errors by their kind.
    name = type(err).__name__
    return (
        f"{name}: {without_request_paths(str(err))}"
        if isinstance(err, requests.exceptions.SSLError)
        else name
    )


def pin_target(
    url: str, msg_id: str, settings: Settings, *, resolve: Resolver = socket.getaddrinfo
) -> PinnedUrl | None:
    """Resolve and guard the URL once; the addresses to connect to, or None (logged) when it must not be sent.

    Allowlisted hosts are pinned too (to their addresses, unjudged), so every delivery takes one path.
    """
    if not settings.webhook_secret:
        log.error("webhook %s dropped: STYLEFORGE_WEBHOOK_SECRET is not set on this worker", msg_id)
        return None
    try:
        addresses = checked_addresses(url, allowlist=settings.webhook_allowlist, resolve=resolve)
    except InvalidInput as err:
        log.warning(
            "webhook %s to %s dropped for good, nothing sent: %s", msg_id, loggable_url(url), err.message
        )
        return None
    return PinnedUrl(url=url, addresses=tuple(dict.fromkeys(str(address) for address in addresses)))


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: the HTTP status (None: no answer), or refused before any connection (final)."""

    status: int | None = None
    refused: bool = False


def attempt_delivery(
    url: str,
    msg_id: str,
    body: str,
    settings: Settings,
    *,
    resolve: Resolver = socket.getaddrinfo,
    verify: bool | str = True,
) -> Attempt:
    """Pin the URL to its checked addresses and POST there once; the resolver and CA bundle are test ports."""
    target = pin_target(url, msg_id, settings, resolve=resolve)
    if target is None:
        return Attempt(refused=True)
    status = post_once(
        target,
        msg_id,
        body,
        secret=settings.webhook_secret,
        timeout_s=settings.webhook_timeout_s,
        verify=verify,
    )
    return Attempt(status=status)


@app.task(name=DELIVER_TASK, bind=True, ignore_result=True)
def deliver_webhook(self, url: str, msg_id: str, body: str) -> None:
    """POST one message; retry with exponential backoff on no answer, 429 and 5xx; never crash the worker."""
    settings = app.settings or Settings.from_env()
    attempt = self.request.retries + 1
    try:
        outcome = attempt_delivery(url, msg_id, body, settings)
    except Exception:  # a bad message must not take the delivery worker down with it
        log.exception("webhook %s to %s: giving up after an unexpected error", msg_id, loggable_url(url))
        return
    if outcome.refused:  # logged with its reason; no retry makes the address acceptable, so this is final
        return
    status = outcome.status
    if status is not None and 200 <= status < 300:
        log.info(
            "webhook %s delivered to %s (attempt %d, HTTP %d)", msg_id, loggable_url(url), attempt, status
        )
        return
    if should_retry(status) and attempt < settings.webhook_max_attempts:
        wait = backoff_s(self.request.retries, settings.webhook_backoff_s)
        log.info(
            "webhook %s to %s: attempt %d got %s; retrying in %.1f s",
            msg_id,
            loggable_url(url),
            attempt,
            status,
            wait,
        )
        raise self.retry(countdown=wait, max_retries=settings.webhook_max_attempts - 1)
    log.warning(
        "webhook %s to %s failed for good after %d attempt(s): last answer %s",
        msg_id,
        loggable_url(url),
        attempt,
        status,
    )
