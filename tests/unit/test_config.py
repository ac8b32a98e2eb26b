"""Settings come from STYLEFORGE_* and AWS_* variables, read when asked, with clear errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import Settings
from shared.errors import ConfigError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_settings_read_styleforge_and_standard_aws_variables():
    settings = Settings.from_env(
        {
            "STYLEFORGE_REDIS_URL": "redis://r:1/2",
            "STYLEFORGE_PRESIGN_EXPIRY_S": "60",
            "STYLEFORGE_VGG_WEIGHTS": "hed",
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": "secret",
        }
    )
    assert settings.redis_url == "redis://r:1/2"
    assert settings.presign_expiry_s == 60
    assert settings.vgg_weights == "hed"
    assert (settings.aws_access_key_id, settings.aws_secret_access_key) == ("id", "secret")


def test_missing_variables_keep_the_defaults():
    assert Settings.from_env({}) == Settings()


def test_malformed_number_names_the_variable():
    with pytest.raises(ConfigError, match="STYLEFORGE_MAX_UPLOAD_BYTES"):
        Settings.from_env({"STYLEFORGE_MAX_UPLOAD_BYTES": "lots"})


def test_importing_the_config_module_reads_nothing():
    # In a fresh interpreter: reloading the module here would swap the Settings class under every other test.
    code = "from shared.config import Settings; print(Settings().redis_url)"
    env = {**os.environ, "STYLEFORGE_REDIS_URL": "redis://elsewhere:1/0", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "redis://localhost:6379/0"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STYLEFORGE_PROGRESS_EVERY", "0"),
        ("STYLEFORGE_JOB_TTL_S", "-1"),
        ("STYLEFORGE_PRESIGN_EXPIRY_S", "0"),
    ],
)
def test_out_of_range_settings_stop_the_start_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
