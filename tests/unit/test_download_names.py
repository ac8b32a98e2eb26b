"""Presigned result URLs that save the file: `Content-Disposition: attachment` with a safe file name."""

from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from shared.storage import S3ObjectStore, attachment

pytestmark = pytest.mark.unit


@pytest.fixture
def store() -> S3ObjectStore:
    # Presigning is local signing: the endpoint is never contacted.
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    return S3ObjectStore(client=client, bucket="b", presign_expiry_s=60)


def test_a_download_name_asks_the_server_for_an_attachment(store) -> None:
    url = store.presign("jobs/j1/result.png", download_name="styleforge-j1.png")
    query = parse_qs(urlsplit(url).query)
    assert query["response-content-disposition"] == [
        "attachment; filename=\"styleforge-j1.png\"; filename*=UTF-8''styleforge-j1.png"
    ]


def test_without_a_download_name_the_url_stays_inline(store) -> None:
    url = store.presign("jobs/j1/steps/000010.png")
    assert "response-content-disposition" not in parse_qs(urlsplit(url).query)


def test_quotes_and_non_ascii_names_cannot_break_the_header() -> None:
    value = attachment('héros "final"\\.png')
    assert (
        value
        == "attachment; filename=\"h_ros _final__.png\"; filename*=UTF-8''h%C3%A9ros%20%22final%22%5C.png"
    )
