"""The Python SDK: submit jobs and batches over HTTP, follow them, download their results.

client = Client("http://127.0.0.1:8091")
batch = client.batch(Path("assets"), [Path("style.jpg")], {"preset": "balanced", "max_dim": 256})
done = client.wait_batch(batch.id, on_progress=lambda b: print(b.counts))
client.download_batch(done, Path("stylized"))
"""

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar
from urllib.parse import urljoin

import requests

from client.errors import ApiUnreachable, StyleforgeClientError, WaitTimedOut
from client.models import Batch, BatchItem, Job, Result

PAGE_LIMIT = 1000  # the largest page of batch items the API serves in one answer
LIST_LIMIT = 100  # the most records a listing (jobs, batches, styles) serves in one answer
CHUNK_BYTES = 1 << 16  # download chunk: 64 KiB keeps memory flat for any result size
# API restarting, Redis/S3 briefly down, or over the rate limit for reads: keep polling, backing off.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
MAX_TRANSIENT_POLLS = 5  # consecutive failed polls tolerated while waiting, before giving up
API_KEY_ENV = "STYLEFORGE_API_KEY"  # the key the Client sends when none is passed (`styleforge keys create`)

Snapshot = TypeVar("Snapshot", Job, Batch)


class Client:
    """A styleforge API at `base_url`; methods raise StyleforgeClientError or ApiUnreachable on failure."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30,
        upload_timeout: float = 600,
        session: requests.Session | None = None,
        api_key: str | None = None,
    ) -> None:
        """api_key: sent as `Authorization: Bearer` to this API only (never to a result's presigned URL);
        None reads STYLEFORGE_API_KEY, and with neither nothing is sent (an API in open mode)."""
        self.base_url = base_url.rstrip("/")
        key = os.environ.get(API_KEY_ENV, "") if api_key is None else api_key
        self._auth = {"Authorization": f"Bearer {key.strip()}"} if key.strip() else {}
        self.timeout = timeout
        self.upload_timeout = upload_timeout
        self._owns_session = session is None
        self._http = session or requests.Session()

    def close(self) -> None:
        """Release pooled connections (a session passed in is left to its owner)."""
        if self._owns_session:
            self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit(
        self,
        content: Path,
        styles: Sequence[Path] = (),
        params: Mapping[str, Any] | None = None,
        *,
        style_id: str | None = None,
        cache: bool | None = None,
    ) -> Job:
        """Submit one job: a content image, one or more style images (or a saved style's id), params
        (preset, steps, max_dim, ...); ``cache`` False: no result cache (None: the server's default)."""
        files = [("content", _file_part(content.name, content))]
        files += [("style", _file_part(style.name, style)) for style in styles]
        data = _params_field(params) | _style_id_field(style_id) | _cache_field(cache)
        response = self._request("POST", "/v1/jobs", files=files, data=data)
        return Job.from_json(response.json())

    def create_style(
        self,
        name: str,
        styles: Sequence[Path],
        *,
        blend_weights: Sequence[float] | None = None,
        style_scale: float | None = None,
    ) -> dict[str, Any]:
        """Save a house style (POST /v1/styles); its JSON, whose `id` jobs and batches take as `style_id`."""
        files = [("style", _file_part(style.name, style)) for style in styles]
        data: dict[str, str] = {"name": name}
        if blend_weights is not None:
            data["style_blend_weights"] = ",".join(str(weight) for weight in blend_weights)
        if style_scale is not None:
            data["style_scale"] = str(style_scale)
        return self._request("POST", "/v1/styles", files=files, data=data).json()

    def styles(self, *, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
        """The caller's saved styles, newest first."""
        return self._request("GET", "/v1/styles", params={"limit": limit}).json()["styles"]

    def delete_style(self, style_id: str) -> None:
        """Delete a saved style."""
        self._request("DELETE", f"/v1/styles/{style_id}")

    def job(self, job_id: str) -> Job:
        """The job's current snapshot."""
        return Job.from_json(self._request("GET", f"/v1/jobs/{job_id}").json())

    def wait(
        self,
        job_id: str,
        *,
        poll_s: float = 1,
        on_progress: Callable[[Job], None] | None = None,
        timeout: float | None = None,
    ) -> Job:
        """Poll the job until it succeeds, fails or is canceled; on_progress sees every snapshot."""
        return self._poll(lambda: self.job(job_id), f"job {job_id}", poll_s, on_progress, timeout)

    def download(self, job: Job, dest: Path) -> Path:
        """Write the job's result to dest (parent folders created); raises if the job has no result."""
        if job.result is None:
            raise StyleforgeClientError(409, "no_result", f"job {job.id} is {job.status} and has no result")
        return self._fetch(job.result, dest)

    def cancel_job(self, job_id: str) -> Job:
        """Cancel a queued or running job."""
        return Job.from_json(self._request("POST", f"/v1/jobs/{job_id}/cancel").json())

    def batch(
        self,
        folder: Path,
        styles: Sequence[Path],
        params: Mapping[str, Any] | None = None,
        *,
        paths: Sequence[str] | None = None,
        style_id: str | None = None,
        output_prefix: str | None = None,
        cache: bool | None = None,
    ) -> Batch:
        """Upload every file under folder (or only ``paths``, relative POSIX paths in it) as one batch, each
        named by its relative POSIX path, with style images or a saved style's ``style_id``; with
        ``output_prefix``, each output is also written there in the bucket, and a manifest.json.

        The server decides which files are images; the others come back in `Batch.skipped`. ``cache``
        False: no result cache (None: the server's default).
        """
        if not folder.is_dir():
            raise NotADirectoryError(f"not a folder: {folder}")
        chosen = (
            _files(folder) if paths is None else [folder.joinpath(*safe_relative(p).parts) for p in paths]
        )
        files = [("content", _file_part(path.relative_to(folder).as_posix(), path)) for path in chosen]
        files += [("style", _file_part(style.name, style)) for style in styles]
        data = _params_field(params) | _style_id_field(style_id) | _cache_field(cache)
        data |= {"output_prefix": output_prefix} if output_prefix else {}
        response = self._request("POST", "/v1/batches", files=files, data=data, timeout=self.upload_timeout)
        return Batch.from_json(response.json())

    def batch_status(self, batch_id: str, *, offset: int = 0, limit: int = PAGE_LIMIT) -> Batch:
        """The batch's counts, progress and ETA, with one page of its items."""
        params = {"offset": offset, "limit": limit}
        return Batch.from_json(self._request("GET", f"/v1/batches/{batch_id}", params=params).json())

    def batch_items(self, batch_id: str) -> Batch:
        """The batch's snapshot with every item, following `next_offset` across pages."""
        first = self.batch_status(batch_id)
        items, page = list(first.items), first
        while page.next_offset is not None:
            page = self.batch_status(batch_id, offset=page.next_offset)
            items += page.items
        return replace(first, items=tuple(items), next_offset=None)

    def wait_batch(
        self,
        batch_id: str,
        *,
        poll_s: float = 1,
        on_progress: Callable[[Batch], None] | None = None,
        timeout: float | None = None,
    ) -> Batch:
        """Poll until no item is queued or running; returns the batch with all its items."""
        # Polls ask for no items: counts, progress and ETA are all the bar needs.
        fetch = lambda: self.batch_status(batch_id, limit=0)  # noqa: E731
        self._poll(fetch, f"batch {batch_id}", poll_s, on_progress, timeout)
        return self.batch_items(batch_id)

    def download_batch(
        self,
        batch: Batch,
        out_dir: Path,
        *,
        overwrite: bool = False,
        names: Mapping[str, PurePosixPath] | None = None,
    ) -> list[Path]:
        """Download each succeeded item to out_dir / its relative path (with the result's extension), or to
        out_dir / ``names[item.path]`` for the items ``names`` lists.

        Files already present are kept unless overwrite is set, so an interrupted download resumes.
        """
        named = result_paths(batch.items) if names is None else _named_items(batch.items, names)
        written = []
        for item, relative in named.items():
            dest = out_dir.joinpath(*relative.parts)
            if overwrite or not dest.exists():
                self._fetch(item.result, dest)
            written.append(dest)
        return written

    def cancel_batch(self, batch_id: str) -> Batch:
        """Cancel the batch's remaining items; finished ones stay downloadable."""
        return Batch.from_json(self._request("POST", f"/v1/batches/{batch_id}/cancel").json())

    def status(self, any_id: str) -> Job | Batch:
        """The batch with this id, or else the job with it."""
        return _batch_then_job(lambda: self.batch_status(any_id), lambda: self.job(any_id))

    def cancel(self, any_id: str) -> Job | Batch:
        """Cancel the batch with this id, or else the job with it."""
        return _batch_then_job(lambda: self.cancel_batch(any_id), lambda: self.cancel_job(any_id))

    def _request(
        self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        url = self.base_url + path
        headers = {**self._auth, **kwargs.pop("headers", {})}
        try:
            response = self._http.request(
                method, url, timeout=timeout or self.timeout, headers=headers, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as err:
            raise ApiUnreachable(url, _reason(err)) from err
        raise_for_error(response)
        return response

    def _fetch(self, result: Result, dest: Path) -> Path:
        # Results are usually presigned S3 URLs; a relative URL is served by the API itself.
        url = urljoin(self.base_url + "/", result.url)
        partial = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            # The key goes to the API alone: S3 refuses a presigned URL that also carries an Authorization.
            headers = self._auth if url.startswith(self.base_url + "/") else {}
            with self._http.get(url, stream=True, timeout=self.timeout, headers=headers) as response:
                raise_for_error(response, code="download_failed")
                with partial.open("wb") as out:
                    for chunk in response.iter_content(CHUNK_BYTES):
                        out.write(chunk)
        except (requests.ConnectionError, requests.Timeout) as err:
            raise ApiUnreachable(url.split("?", 1)[0], _reason(err)) from err
        # Written under .part first, so an interrupted download is never taken for a finished file.
        return partial.replace(dest)

    def _poll(
        self,
        fetch: Callable[[], Snapshot],
        what: str,
        poll_s: float,
        on_progress: Callable[[Snapshot], None] | None,
        timeout: float | None,
    ) -> Snapshot:
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            try:
                snapshot, failures = fetch(), 0
            except (ApiUnreachable, StyleforgeClientError) as err:
                failures += 1
                if not _transient(err) or failures > MAX_TRANSIENT_POLLS:
                    raise
            else:
                if on_progress is not None:
                    on_progress(snapshot)
                if snapshot.terminal:
                    return snapshot
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimedOut(f"{what} was not finished after {timeout:g} s")
            time.sleep(poll_s * (1 + failures))


def result_paths(items: Iterable[BatchItem]) -> dict[BatchItem, PurePosixPath]:
    """Where each succeeded item's result goes, relative to the output folder.

    The input's path with the result's extension; when two inputs would land on one name (`a.jpg` and
    `a.png` both giving `a.png`), the ones that are not already named so keep their full name (`a.jpg.png`).
    """
    done = [item for item in items if item.status == "succeeded" and item.result is not None]
    wanted = {item: safe_relative(item.path).with_suffix(item.result.extension) for item in done}
    clashes = Counter(wanted.values())
    return {
        item: path
        if clashes[path] == 1 or path == PurePosixPath(item.path)
        else safe_relative(item.path + item.result.extension)
        for item, path in wanted.items()
    }


def _named_items(
    items: Iterable[BatchItem], names: Mapping[str, PurePosixPath]
) -> dict[BatchItem, PurePosixPath]:
    done = (item for item in items if item.status == "succeeded" and item.result is not None)
    return {item: names[item.path] for item in done if item.path in names}


def safe_relative(path: str) -> PurePosixPath:
    """A relative path that stays inside the folder it is joined to; ValueError otherwise."""
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts or "\\" in path:
        raise ValueError(f"refusing to write outside the output folder: {path!r}")
    return relative


def raise_for_error(response: requests.Response, *, code: str | None = None) -> None:
    """Turn a 4xx/5xx answer into StyleforgeClientError, from the API's {"error": {...}} body when present."""
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        message, field = str(error["message"]), error.get("field")
        code = code or str(error.get("code") or f"http_{response.status_code}")
    except (ValueError, KeyError, TypeError):
        message, field = response.text.strip()[:300] or response.reason or "no details", None
        code = code or f"http_{response.status_code}"
    raise StyleforgeClientError(response.status_code, code, message, field)


def _batch_then_job(on_batch: Callable[[], Batch], on_job: Callable[[], Job]) -> Job | Batch:
    try:
        return on_batch()
    except StyleforgeClientError as err:
        if err.status != 404:
            raise
    return on_job()


def _transient(err: Exception) -> bool:
    return isinstance(err, ApiUnreachable) or getattr(err, "status", None) in TRANSIENT_STATUSES


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def _file_part(name: str, path: Path) -> tuple[str, bytes, str]:
    # Bytes, not open handles: a 1000-file batch would otherwise hold 1000 descriptors open.
    return (name, path.read_bytes(), "application/octet-stream")


def _params_field(params: Mapping[str, Any] | None) -> dict[str, str]:
    return {"params": json.dumps(dict(params))} if params else {}


def _style_id_field(style_id: str | None) -> dict[str, str]:
    return {"style_id": style_id} if style_id else {}


def _cache_field(cache: bool | None) -> dict[str, str]:
    return {} if cache is None else {"cache": "true" if cache else "false"}


def _reason(err: Exception) -> str:
    reason = str(err.args[0]) if err.args else type(err).__name__
    return reason if len(reason) < 200 else type(err).__name__
