"""What a log line may show of a URL: its origin, never the user info, path or query a receiver's secret
may hide in, nor the request path inside an HTTP library's error text."""

import pytest

from shared.logs import loggable_url, without_request_paths

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXXsecret", "https://hooks.slack.com/…"),
        ("http://127.0.0.1:8123/hook?token=abc123secret", "http://127.0.0.1:8123/…"),
        ("https://user:pa55word@example.com/", "https://example.com"),
        ("https://[::1]:8443/h#frag", "https://[::1]:8443/…"),
        ("https://example.com", "https://example.com"),
        ("http://[::1/broken", "(an unparsable URL)"),
        ("no-host-here", "(a URL without a host)"),
    ],
)
def test_a_logged_url_shows_its_origin_only(url, shown):
    assert loggable_url(url) == shown


def test_an_http_error_text_loses_the_request_path_and_query():
    text = (
        "HTTPSConnectionPool(host='h.example', port=443): Max retries exceeded with url: "
        '/hook?token=abc123secret (Caused by SSLError(CertificateError("hostname mismatch")))'
    )
    cleaned = without_request_paths(text)
    assert "abc123secret" not in cleaned and "hostname mismatch" in cleaned and "h.example" in cleaned
