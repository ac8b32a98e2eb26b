"""The log scanner finds a planted secret (as is or URL-encoded) and names it, not its value."""

import pytest

from tests.log_scan import Leak, find_leaks, read_logs

pytestmark = pytest.mark.unit

SECRETS = {"api key secret": "Zm9v+YmFy/c2VjcmV0LXBhcnQ", "webhook secret": "whsec_c2VjcmV0c2VjcmV0"}
CLEAN = "2026-12-02 INFO styleforge.api: job 0123 queued for tenant studio-a (key 3f9c0a1b2d4e)\n"


def test_a_clean_log_has_no_leak():
    assert find_leaks({"api.log": CLEAN}, SECRETS) == []


def test_a_planted_secret_is_found_in_its_log_as_is_and_url_encoded():
    logs = {
        "api.log": CLEAN + "GET /v1/jobs Authorization: Bearer Zm9v+YmFy/c2VjcmV0LXBhcnQ\n",
        "hooks.log": CLEAN + "POST https://hooks.example/x?s=whsec_c2VjcmV0c2VjcmV0\n",
        "cli.log": "https://s3/r.png?k=Zm9v%2BYmFy%2Fc2VjcmV0LXBhcnQ\n",
        "worker.log": CLEAN,
    }
    assert find_leaks(logs, SECRETS) == [
        Leak(secret="api key secret", log="api.log"),
        Leak(secret="webhook secret", log="hooks.log"),
        Leak(secret="api key secret", log="cli.log"),
    ]


def test_a_secret_too_short_to_scan_for_is_refused():
    with pytest.raises(ValueError, match="too short"):
        find_leaks({"api.log": CLEAN}, {"pin": "1234"})


def test_every_file_of_a_run_folder_is_read(tmp_path):
    (tmp_path / "cli").mkdir()
    (tmp_path / "api.log").write_text(CLEAN)
    (tmp_path / "cli" / "keys-create.stderr").write_text("made key 3f9c0a1b2d4e\n")
    assert set(read_logs(tmp_path)) == {"api.log", "cli/keys-create.stderr"}
