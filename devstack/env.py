"""The environment every harness stack runs with, defined once."""

# moto accepts any credentials; these are never a deployment's.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def stack_env(redis_url: str, s3_endpoint: str, bucket: str) -> dict[str, str]:
    """Environment for a worker (and settings for the API) pointing at the harness's servers."""
    return {
        "STYLEFORGE_REDIS_URL": redis_url,
        "STYLEFORGE_S3_ENDPOINT_URL": s3_endpoint,
        "STYLEFORGE_S3_BUCKET": bucket,
        "STYLEFORGE_VGG_WEIGHTS": "random",
        # Not the default `auto`: its start-up probe would cost every harness worker seconds, and results must
        # not depend on the machine (tests/unit/test_precision.py covers `auto`).
        "STYLEFORGE_PRECISION": "float32",
        "STYLEFORGE_PROGRESS_EVERY": "2",
        # Open, as local experiments run: no API keys to make. The tests of keys start a stack in `required`.
        "STYLEFORGE_AUTH": "open",
        # No rate limits and no usage quotas to speak of: fuzzing, benchmarks and the suites send far more
        # than a studio would, all as `anonymous`. tests/integration/test_limits.py sets its own, low.
        "STYLEFORGE_RATE_LIMIT_SUBMIT": "",
        "STYLEFORGE_RATE_LIMIT_READ": "",
        "STYLEFORGE_QUOTA_MAX_ACTIVE_JOBS": str(10**9),
        "STYLEFORGE_QUOTA_ITEMS_PER_DAY": str(10**9),
        # The suites submit the same tiny jobs again and again and check how each ran (progress, snapshots,
        # targets): a cached copy has none. tests/integration/test_result_cache.py turns the cache on.
        "STYLEFORGE_RESULT_CACHE": "off",
        **TEST_CREDENTIALS,
    }
