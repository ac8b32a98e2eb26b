"""Object storage on S3-compatible servers (AWS S3, MinIO, R2, moto) through boto3."""

from typing import Protocol
from urllib.parse import quote, urlencode

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.config import Settings
from shared.errors import StorageError


class ObjectStore(Protocol):
    """The port the API and the worker use for blobs."""

    def put(
        self, key: str, data: bytes, content_type: str, *, tags: dict[str, str] | None = None
    ) -> None: ...
    def get(self, key: str) -> bytes: ...
    def copy(self, source: str, destination: str, *, tags: dict[str, str] | None = None) -> None: ...
    def presign(self, key: str, download_name: str | None = None) -> str: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def list_keys(self, prefix: str, limit: int) -> list[str]: ...
    def ping(self) -> None: ...


def make_s3_client(settings: Settings):
    """Build a boto3 S3 client that also works against MinIO-like servers."""
    config = Config(
        signature_version="s3v4",  # SigV2 presigned URLs are deprecated on AWS and refused by R2
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # total_max_attempts counts the first attempt, as the setting does; botocore's max_attempts would not.
        retries={"mode": "standard", "total_max_attempts": settings.s3_max_attempts},
        connect_timeout=settings.s3_connect_timeout_s,
        read_timeout=settings.s3_read_timeout_s,
    )
    credentials = {}
    if settings.aws_access_key_id:
        credentials = {
            "aws_access_key_id": settings.aws_access_key_id,
            "aws_secret_access_key": settings.aws_secret_access_key,
        }
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region,
        config=config,
        **credentials,
    )


class S3ObjectStore:
    """ObjectStore over an injected boto3 S3 client and one bucket."""

    def __init__(self, *, client, bucket: str, presign_expiry_s: int) -> None:
        self._client = client
        self._bucket = bucket
        self._expiry = presign_expiry_s

    def ensure_bucket(self) -> None:
        """Create the bucket if it is absent."""
        try:
            self._client.head_bucket(Bucket=self._bucket)
        except ClientError as err:
            if _error_code(err) not in _MISSING:
                raise StorageError(f"object store refused access to bucket {self._bucket!r}: {err}") from err
            self._call("create bucket", self._client.create_bucket, Bucket=self._bucket)
        except BotoCoreError as err:
            raise StorageError(f"object store unreachable for bucket {self._bucket!r}: {err}") from err

    def put(self, key: str, data: bytes, content_type: str, *, tags: dict[str, str] | None = None) -> None:
        """Upload bytes under key, with object tags (what the bucket's lifecycle rules select by)."""
        extra = {"Tagging": urlencode(tags)} if tags else {}
        self._call(
            f"upload {key}",
            self._client.put_object,
            Bucket=self._bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            **extra,
        )

    def get(self, key: str) -> bytes:
        """Download the bytes under key."""

        # The body streams after the headers: a reset or timeout mid-body must be a StorageError too.
        def download() -> bytes:
            return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()

        return self._call(f"download {key}", download)

    def copy(self, source: str, destination: str, *, tags: dict[str, str] | None = None) -> None:
        """Copy an object inside the bucket, server-side (no bytes pass through here), with new tags (``{}``:
        none; None: the source's): the copy's lifetime starts now, whatever the source's age."""
        extra = {"Tagging": urlencode(tags), "TaggingDirective": "REPLACE"} if tags is not None else {}
        self._call(
            f"copy {source} to {destination}",
            self._client.copy_object,
            Bucket=self._bucket,
            Key=destination,
            CopySource={"Bucket": self._bucket, "Key": source},
            **extra,
        )

    def delete(self, key: str) -> None:
        """Remove the object under key (nothing happens when there is none)."""
        self._call(f"delete {key}", self._client.delete_object, Bucket=self._bucket, Key=key)

    def exists(self, key: str) -> bool:
        """True when an object is stored under key."""
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as err:
            if _error_code(err) in _MISSING:
                return False
            raise StorageError(f"object store failed to check {key}: {err}") from err
        except BotoCoreError as err:
            raise StorageError(f"object store unreachable checking {key}: {err}") from err
        return True

    def list_keys(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` object keys under ``prefix``, in key order."""
        paginator = self._client.get_paginator("list_objects_v2")
        found: list[str] = []
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                found += [entry["Key"] for entry in page.get("Contents", [])]
                if len(found) >= limit:
                    return found[:limit]
        except (ClientError, BotoCoreError) as err:
            raise StorageError(f"object store failed to list {prefix!r}: {err}") from err
        return found

    def presign(self, key: str, download_name: str | None = None) -> str:
        """A GET URL for key, valid for the configured expiry.

        With ``download_name``, the response says `Content-Disposition: attachment` with that file name, so a
        browser following the link saves the file instead of opening it (an <img> still shows it).
        """
        params = {"Bucket": self._bucket, "Key": key}
        if download_name:
            params["ResponseContentDisposition"] = attachment(download_name)
        return self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=self._expiry)

    def ping(self) -> None:
        """Raise StorageError unless the bucket is reachable."""
        self._call("reach the bucket", self._client.head_bucket, Bucket=self._bucket)

    def _call(self, what: str, method, **kwargs):
        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as err:
            raise StorageError(f"object store failed to {what} in bucket {self._bucket!r}: {err}") from err


def attachment(filename: str) -> str:
    """A `Content-Disposition: attachment` naming ``filename`` (RFC 6266: an ASCII fallback, then UTF-8)."""
    fallback = "".join(
        char if char.isascii() and char.isprintable() and char not in '"\\' else "_" for char in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def build_object_store(settings: Settings) -> S3ObjectStore:
    """Composition helper: the S3 store described by settings."""
    return S3ObjectStore(
        client=make_s3_client(settings), bucket=settings.s3_bucket, presign_expiry_s=settings.presign_expiry_s
    )
