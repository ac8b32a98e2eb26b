"""Create the bucket if absent and apply deploy/s3-lifecycle.json to it, with the app's own S3 settings.

`python deploy/s3_lifecycle.py [path]` reads STYLEFORGE_S3_* and AWS_* like the API and the workers do (the
compose set-up runs it once at start, as the `s3-setup` service). It is the same JSON the AWS CLI takes:
`aws s3api put-bucket-lifecycle-configuration --bucket styleforge --lifecycle-configuration
file://deploy/s3-lifecycle.json`.

Why the rules read a tag, and 8 days: every object of a tenant lives under `tenants/{tenant}/`
(shared/keys.py) and an S3 lifecycle filter matches a key prefix, not a pattern, so no prefix reaches
`tenants/*/jobs/` without also reaching the tenants' inputs and style targets. So the worker stores every job
output (result, snapshots, checkpoint) with the object tag `styleforge-expiry=job-output`
(keys.JOB_OUTPUT_TAG), and the first rule expires what carries that tag under `tenants/`. Expiring all of
`tenants/` after N days instead would delete inputs that are still in use: an input is content-addressed and
stored once, so a job submitted on day 7 can point at an upload of day 1, and a JSON batch names objects a
pipeline keeps there on purpose. 8 days is the job record's TTL (STYLEFORGE_JOB_TTL_S, 7 days) plus one: once
its record has expired, the API answers 404 for the job and presigns none of its objects, so nothing can reach
them any more. The second rule (prefix only: AWS refuses AbortIncompleteMultipartUpload in a tag-filtered
rule) clears abandoned uploads. Servers without object tags (R2) need their own rule for `tenants/`; MinIO and
AWS S3 take this file as is.
"""

import json
import sys
from pathlib import Path

from shared.config import Settings
from shared.storage import build_object_store, make_s3_client

LIFECYCLE = Path(__file__).with_name("s3-lifecycle.json")


def apply_lifecycle(settings: Settings, path: Path = LIFECYCLE) -> None:
    """Ensure the bucket exists and replace its lifecycle configuration with the file's."""
    build_object_store(settings).ensure_bucket()
    rules = json.loads(path.read_text())
    make_s3_client(settings).put_bucket_lifecycle_configuration(
        Bucket=settings.s3_bucket, LifecycleConfiguration=rules
    )


def main(argv: list[str]) -> int:
    """Apply the lifecycle file named on the command line (default deploy/s3-lifecycle.json)."""
    settings = Settings.from_env()
    path = Path(argv[0]) if argv else LIFECYCLE
    apply_lifecycle(settings, path)
    print(f"bucket {settings.s3_bucket!r}: lifecycle from {path.name} applied")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
