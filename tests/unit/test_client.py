"""The SDK and the client CLI against a small fake API served over real HTTP (werkzeug in a thread)."""

import io
import json
import threading
import uuid
from pathlib import Path, PurePosixPath

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from client import cli
from client.errors import ApiUnreachable, StyleforgeClientError, WaitTimedOut
from client.models import Batch, BatchItem, Counts, Job, Result
from client.progress import BatchBar
from client.sdk import Client, result_paths, safe_relative
from devstack.processes import free_port

pytestmark = pytest.mark.unit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class FakeApi:
    """A scripted styleforge API: each poll of a batch finishes one more item; jobs finish on the second poll.

    Items whose path contains "broken" fail; those under tiles/ succeed from the result cache. Results are
    `RESULT:<path>` bytes served at /files/<job id>.png.
    """

    def __init__(self, *, page_max: int = 1000) -> None:
        self.page_max = page_max  # the server's largest page, whatever the client asks
        self.uploads: list[tuple[str, str]] = []  # (field, filename) of every file of the last POST
        self.forms: list[dict[str, str]] = []
        self.items: list[dict] = []
        self.skipped: list[dict] = []
        self.finished = 0
        self.job_polls = 0
        self.fail_next_polls = 0  # answer 503 to this many batch polls first
        self.results: dict[str, bytes] = {}
        self.authorizations: list[str | None] = []  # the Authorization header of every request
        self.app = self._build()

    def _build(self) -> Flask:
        app = Flask("fake-styleforge")
        app.before_request(lambda: self.authorizations.append(request.headers.get("Authorization")))
        app.post("/v1/batches")(self.create_batch)
        app.get("/v1/batches/<batch_id>")(self.get_batch)
        app.post("/v1/batches/<batch_id>/cancel")(self.cancel_batch)
        app.post("/v1/jobs")(self.create_job)
        app.get("/v1/jobs/<job_id>")(self.get_job)
        app.post("/v1/jobs/<job_id>/cancel")(self.cancel_job)
        app.get("/files/<name>")(self.result_file)
        return app

    def _record(self) -> None:
        self.uploads = [(name, f.filename) for name, f in request.files.items(multi=True)]
        self.forms.append(request.form.to_dict())

    def create_batch(self):
        self._record()
        if json.loads(request.form.get("params", "{}")).get("steps") == 0:
            return _error(400, "invalid_input", "steps must be at least 1", "steps")
        for _, filename in self.uploads[: -len(request.files.getlist("style"))]:
            if filename.endswith(IMAGE_SUFFIXES):
                self.items.append({"job_id": uuid.uuid4().hex, "path": filename})
            else:
                self.skipped.append({"path": filename, "reason": "not an image"})
        # As the API answers: the first page of items (GET's default limit, 100).
        return jsonify(self.batch_json(0, min(100, self.page_max))), 202, {"Location": "/v1/batches/b1"}

    def get_batch(self, batch_id: str):
        if batch_id != "b1":
            return _error(404, "not_found", f"no batch with id {batch_id!r}", "id")
        if self.fail_next_polls:
            self.fail_next_polls -= 1
            return _error(503, "unavailable", "the job store (Redis) is unreachable; retry shortly")
        offset, limit = int(request.args.get("offset", 0)), int(request.args.get("limit", 100))
        answer = self.batch_json(offset, min(limit, self.page_max))
        self.finished = min(self.finished + 1, len(self.items))
        return jsonify(answer)

    def cancel_batch(self, batch_id: str):
        if batch_id != "b1":
            return _error(404, "not_found", "no such batch", "id")
        for item in self.items[self.finished :]:
            item["canceled"] = True
        self.finished = len(self.items)
        return jsonify(self.batch_json(0, 0))

    def batch_json(self, offset: int, limit: int) -> dict:
        items = [self.item_json(index, item) for index, item in enumerate(self.items)]
        counts = {status: 0 for status in ("queued", "running", "succeeded", "failed", "canceled")}
        for item in items:
            counts[item["status"]] += 1
        counts["cached"] = sum(1 for item in items if item["cached"])
        more = offset + limit < len(items)
        return {
            "id": "b1",
            "status": "running" if counts["queued"] + counts["running"] else "completed",
            "counts": counts,
            "items_total": len(items),
            "progress": {"steps_done": 2 * self.finished, "steps_total": 2 * len(items), "fraction": 0.5},
            "eta_s": 3.0 * (len(items) - self.finished),
            "skipped": self.skipped,
            "items": items[offset : offset + limit],
            "next_offset": offset + limit if more and limit else None,
        }

    def item_json(self, index: int, item: dict) -> dict:
        status = "queued" if index > self.finished else "running"
        result = None
        if index < self.finished:
            status = (
                "canceled" if item.get("canceled") else "failed" if "broken" in item["path"] else "succeeded"
            )
        if status == "succeeded":
            name = f"{item['job_id']}.png"
            self.results[name] = f"RESULT:{item['path']}".encode()
            result = {"url": f"{request.host_url}files/{name}", "key": f"jobs/{item['job_id']}/result.png"}
        error = "could not decode the image" if status == "failed" else None
        item_json = {"job_id": item["job_id"], "path": item["path"], "status": status, "error": error}
        item_json["cached"] = status == "succeeded" and item["path"].startswith("tiles/")
        return {**item_json, "result": result, "duration_s": 2.5 if result else None}

    def create_job(self):
        self._record()
        if json.loads(request.form.get("params", "{}")).get("steps") == 0:
            return _error(400, "invalid_input", "steps must be at least 1", "steps")
        self.results["j1.webp"] = b"RESULT:single"
        return jsonify(self.job_json("queued", 0)), 202

    def get_job(self, job_id: str):
        if job_id != "j1":
            return _error(404, "not_found", f"no job with id {job_id!r}", "id")
        self.job_polls += 1
        if self.job_polls < 2:
            return jsonify(self.job_json("running", 1))
        return jsonify(
            self.job_json("succeeded", 2, result={"url": "/files/j1.webp", "key": "jobs/j1/result.webp"})
        )

    def cancel_job(self, job_id: str):
        return jsonify(self.job_json("canceled", 1))

    def result_file(self, name: str):
        return self.results[name]

    @staticmethod
    def job_json(status: str, step: int, result: dict | None = None) -> dict:
        progress = {"step": step, "total_steps": 2, "fraction": step / 2}
        return {"id": "j1", "status": status, "progress": progress, "error": None, "result": result}


def _error(status: int, code: str, message: str, field: str | None = None):
    return jsonify(error={"code": code, "message": message, "field": field}), status


class FakeServer:
    """One HTTP server for the module; each test's FakeApi is swapped in behind it."""

    def __init__(self) -> None:
        self.fake = FakeApi()
        self._server = make_server("127.0.0.1", free_port(), self, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __call__(self, environ, start_response):
        return self.fake.app(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture(scope="module")
def server():
    server = FakeServer()
    yield server
    server.stop()


@pytest.fixture
def fake(server):
    server.fake = FakeApi()
    return server.fake


@pytest.fixture
def base_url(server, fake):
    return server.url


@pytest.fixture
def client(base_url):
    with Client(base_url) as client:
        yield client


@pytest.fixture
def assets(tmp_path) -> Path:
    """A nested asset tree: three images, one broken image name, one text file."""
    root = tmp_path / "assets"
    for relative in ("hero.png", "tiles/grass.jpg", "tiles/deep/water.png", "notes.txt"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"bytes of " + relative.encode())
    return root


@pytest.fixture
def style(tmp_path) -> Path:
    path = tmp_path / "style.jpg"
    path.write_bytes(b"style bytes")
    return path


def test_batch_uploads_every_file_under_the_folder_named_by_its_relative_posix_path(
    client, fake, assets, style
):
    batch = client.batch(assets, [style], {"preset": "balanced", "max_dim": 32})

    assert sorted(fake.uploads) == [
        ("content", "hero.png"),
        ("content", "notes.txt"),
        ("content", "tiles/deep/water.png"),
        ("content", "tiles/grass.jpg"),
        ("style", "style.jpg"),
    ]
    assert json.loads(fake.forms[-1]["params"]) == {"preset": "balanced", "max_dim": 32}
    assert batch.id == "b1" and batch.items_total == 3
    paths = ["hero.png", "tiles/deep/water.png", "tiles/grass.jpg"]
    assert sorted(item.path for item in batch.items) == paths  # the first page of items, as the API answers
    assert [(s.path, s.reason) for s in batch.skipped] == [("notes.txt", "not an image")]


def test_error_answer_becomes_a_client_error_with_status_code_and_field(client, assets, style):
    with pytest.raises(StyleforgeClientError) as caught:
        client.batch(assets, [style], {"steps": 0})

    assert (caught.value.status, caught.value.code, caught.value.field) == (400, "invalid_input", "steps")
    assert str(caught.value) == "400 invalid_input: steps must be at least 1 (field: steps)"


def test_unreachable_api_raises_api_unreachable_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, timeout=2) as client, pytest.raises(ApiUnreachable) as caught:
        client.job("j1")

    assert caught.value.url == f"{url}/v1/jobs/j1"
    assert isinstance(caught.value, ConnectionError)


def test_wait_batch_returns_once_no_item_is_active_with_every_item_across_pages(
    base_url, fake, assets, style
):
    fake.page_max = 2
    seen: list[Batch] = []
    with Client(base_url) as client:
        batch = client.batch(assets, [style], {})
        done = client.wait_batch(batch.id, poll_s=0, on_progress=seen.append)

    assert done.terminal and done.counts.succeeded == 3
    assert [item.path for item in done.items] == ["hero.png", "tiles/deep/water.png", "tiles/grass.jpg"]
    assert [b.counts.done for b in seen] == [0, 1, 2, 3]
    assert not any(b.terminal for b in seen[:-1])


def test_wait_batch_rides_out_a_few_503_answers(client, fake, assets, style):
    fake.fail_next_polls = 2
    batch = client.batch(assets, [style], {})

    assert client.wait_batch(batch.id, poll_s=0.01).counts.succeeded == 3


def test_wait_gives_up_after_its_timeout(client, assets, style):
    batch = client.batch(assets, [style], {})

    with pytest.raises(WaitTimedOut, match="batch b1 was not finished after 0 s"):
        client.wait_batch(batch.id, poll_s=0, timeout=0)


def test_download_batch_mirrors_the_input_tree_with_the_result_extension(client, assets, style, tmp_path):
    done = client.wait_batch(client.batch(assets, [style], {}).id, poll_s=0)
    out = tmp_path / "out"

    written = client.download_batch(done, out)

    expected = {"hero.png", "tiles/grass.png", "tiles/deep/water.png"}
    assert {p.relative_to(out).as_posix() for p in written} == expected
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == expected
    assert (out / "tiles/grass.png").read_bytes() == b"RESULT:tiles/grass.jpg"


def test_download_batch_keeps_files_already_present_so_a_rerun_resumes(client, assets, style, tmp_path):
    done = client.wait_batch(client.batch(assets, [style], {}).id, poll_s=0)
    out = tmp_path / "out"
    (out / "tiles").mkdir(parents=True)
    (out / "tiles/grass.png").write_bytes(b"from the first run")

    client.download_batch(done, out)

    assert (out / "tiles/grass.png").read_bytes() == b"from the first run"
    assert (out / "hero.png").read_bytes() == b"RESULT:hero.png"
    assert not list(out.rglob("*.part"))


def test_result_paths_keep_both_outputs_when_two_inputs_share_a_stem():
    def done(path: str) -> BatchItem:
        return BatchItem(
            job_id=path, path=path, status="succeeded", result=Result(url="u", key="k/result.png")
        )

    paths = result_paths([done("a.jpg"), done("a.png"), done("b.webp"), done("c.jpg"), done("c.webp")])

    assert sorted(map(str, paths.values())) == ["a.jpg.png", "a.png", "b.png", "c.jpg.png", "c.webp.png"]


@pytest.mark.parametrize("path", ["/etc/passwd", "../up.png", "a/../../b.png", "", "a\\..\\b.png"])
def test_result_paths_refuse_to_leave_the_output_folder(path):
    with pytest.raises(ValueError, match="outside the output folder"):
        safe_relative(path)


def test_status_and_cancel_fall_back_to_the_job_when_no_batch_has_the_id(client, fake, assets, style):
    client.batch(assets, [style], {})

    assert isinstance(client.status("b1"), Batch)
    assert isinstance(client.status("j1"), Job)
    assert client.cancel("b1").counts.canceled == 2  # the status poll above finished the first item
    assert client.cancel("j1").status == "canceled"


def test_submit_wait_and_download_a_single_job(client, fake, tmp_path, style):
    content = tmp_path / "hero.png"
    content.write_bytes(b"content bytes")

    job = client.submit(content, [style, style], {"steps": 2})
    done = client.wait(job.id, poll_s=0)
    dest = client.download(done, tmp_path / "out" / "hero.webp")

    assert fake.uploads == [("content", "hero.png"), ("style", "style.jpg"), ("style", "style.jpg")]
    assert done.status == "succeeded" and done.result.extension == ".webp"
    assert dest.read_bytes() == b"RESULT:single"


def test_the_client_sends_the_key_of_styleforge_api_key_as_a_bearer_on_every_call(
    base_url, fake, tmp_path, style, monkeypatch
):
    content = tmp_path / "hero.png"
    content.write_bytes(b"content bytes")
    monkeypatch.setenv("STYLEFORGE_API_KEY", "sf_0123456789ab_secret")

    with Client(base_url) as keyed:
        keyed.download(keyed.wait(keyed.submit(content, [style]).id, poll_s=0), tmp_path / "out.png")
    with Client(base_url, api_key="") as keyless:
        keyless.job("j1")

    assert len(fake.authorizations) >= 4
    assert set(fake.authorizations[:-1]) == {"Bearer sf_0123456789ab_secret"}
    assert fake.authorizations[-1] is None


def test_the_cli_sends_styleforge_api_key(base_url, fake, style, tmp_path, monkeypatch, capsys):
    content = tmp_path / "hero.png"
    content.write_bytes(b"content bytes")
    monkeypatch.setenv("STYLEFORGE_API_KEY", "sf_0123456789ab_secret")

    assert (
        run_cli(base_url, "submit", str(content), "--style", str(style), "-o", str(tmp_path / "o.png")) == 0
    )
    assert set(fake.authorizations) == {"Bearer sf_0123456789ab_secret"}


def run_cli(base_url: str, *argv: str) -> int:
    return cli.main([*argv, "--api", base_url, "--poll", "0"])


def test_cli_batch_exits_0_mirrors_the_tree_and_reports_skipped_files(
    base_url, assets, style, tmp_path, capsys
):
    out = tmp_path / "stylized"

    code = run_cli(base_url, "batch", str(assets), "--style", str(style), "--out", str(out), "--size", "32")

    stdout = capsys.readouterr().out
    assert code == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "hero.png",
        "tiles/deep/water.png",
        "tiles/grass.png",
    ]
    assert "batch b1 submitted: 3 item(s), 1 file(s) skipped" in stdout
    assert f"resume with: styleforge wait b1 --out {out} --api {base_url}" in stdout
    assert "notes.txt: not an image" in stdout
    assert "3 succeeded, 0 failed, 0 canceled (2 cached, 1 stylized)" in stdout


def test_cli_batch_exits_1_naming_the_failed_items(base_url, assets, style, tmp_path, capsys):
    (assets / "tiles/broken.png").write_bytes(b"not really a png")

    code = run_cli(base_url, "batch", str(assets), "--style", str(style), "--out", str(tmp_path / "out"))

    captured = capsys.readouterr()
    assert code == 1
    assert "1 item(s) did not succeed: tiles/broken.png (failed)" in captured.err
    assert "could not decode the image" in captured.out
    assert not (tmp_path / "out/tiles/broken.png").exists()


def test_cli_batch_sends_the_output_prefix_and_submits_the_whole_folder(
    base_url, fake, assets, style, tmp_path
):
    out = tmp_path / "out"
    assert run_cli(base_url, "batch", str(assets), "--style", str(style), "--out", str(out)) == 0
    first_upload = list(fake.uploads)

    code = run_cli(
        base_url, "batch", str(assets), "--style", str(style), "--out", str(out), "--output-prefix", "b/1/"
    )

    assert code == 0
    assert len(fake.forms) == 2  # submitted again, though --out is up to date
    assert fake.forms[-1]["output_prefix"] == "b/1/" and "output_prefix" not in fake.forms[0]
    assert fake.uploads == first_upload  # every input again: the bucket's tree describes the whole folder


def test_cli_wait_after_ctrl_c_downloads_only_what_is_missing(
    base_url, fake, assets, style, tmp_path, capsys
):
    out = tmp_path / "out"
    with Client(base_url) as client:
        client.batch(assets, [style], {})
    (out / "tiles").mkdir(parents=True)
    (out / "tiles/grass.png").write_bytes(b"from the first run")

    code = run_cli(base_url, "wait", "b1", "--out", str(out))

    assert code == 0
    assert "downloaded 2 result(s)" in capsys.readouterr().out
    assert (out / "tiles/grass.png").read_bytes() == b"from the first run"


def test_cli_ctrl_c_while_waiting_prints_the_resume_command_and_exits_130(
    base_url, assets, style, tmp_path, capsys, monkeypatch
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "wait_batch", interrupted)

    code = run_cli(base_url, "batch", str(assets), "--style", str(style), "--out", str(tmp_path / "o"))

    assert code == 130
    assert (
        f"resume with: styleforge wait b1 --out {tmp_path / 'o'} --api {base_url}" in capsys.readouterr().err
    )


def test_cli_submit_writes_the_out_file(base_url, fake, style, tmp_path, capsys):
    content = tmp_path / "hero.png"
    content.write_bytes(b"content bytes")
    out = tmp_path / "result.webp"

    code = run_cli(
        base_url, "submit", str(content), "--style", str(style), "-o", str(out), "--param", "seed=7"
    )

    assert code == 0
    assert out.read_bytes() == b"RESULT:single"
    assert json.loads(fake.forms[-1]["params"]) == {"seed": 7}
    assert f"wrote {out}" in capsys.readouterr().out


def test_cli_refused_request_exits_2_with_the_message_and_field(base_url, style, tmp_path, capsys):
    content = tmp_path / "hero.png"
    content.write_bytes(b"content bytes")

    code = run_cli(base_url, "submit", str(content), "--style", str(style), "--steps", "0")

    assert code == 2
    assert "400 invalid_input: steps must be at least 1 (field: steps)" in capsys.readouterr().err


def test_cli_status_prints_a_compact_batch_summary(base_url, assets, style, capsys):
    with Client(base_url) as client:
        client.batch(assets, [style], {})

    assert run_cli(base_url, "status", "b1") == 0
    assert capsys.readouterr().out.startswith(
        "batch b1: running, 0/3 done (0 succeeded, 0 failed, 0 canceled)"
    )


def test_cli_keeps_the_api_and_worker_commands(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])

    assert exited.value.code == 0
    usage = capsys.readouterr().out
    for command in ("api", "worker", "submit", "batch", "wait", "status", "cancel"):
        assert command in usage


def test_batch_item_takes_its_seconds_from_start_and_finish_times():
    item = BatchItem.from_json(
        {
            "job_id": "j",
            "path": "a.png",
            "status": "succeeded",
            "started_at": "2024-01-01T00:00:00+00:00",
            "finished_at": "2024-01-01T00:00:02.5+00:00",
        }
    )

    assert item.seconds == 2.5
    assert safe_relative("a/b.png") == PurePosixPath("a/b.png")


def test_batch_bar_shows_items_steps_and_the_server_eta_and_logs_a_line_only_when_an_item_finishes():
    log = io.StringIO()  # not a TTY, like a CI log
    snapshots = [(0, None), (0, 30.0), (1, 12.5), (2, 0.0)]

    with BatchBar(file=log) as bar:
        for done, eta in snapshots:
            counts = Counts(succeeded=done, running=2 - done)
            bar.update(
                Batch(
                    id="b",
                    status="running",
                    counts=counts,
                    items_total=2,
                    steps_done=done * 5,
                    steps_total=10,
                    eta_s=eta,
                )
            )

    frames = [frame for frame in log.getvalue().replace("\n", "\r").split("\r") if frame]
    assert frames[0].endswith("0/2 items [00:00, steps 0/10, eta ?]")
    assert frames[1].endswith("1/2 items [00:00, steps 5/10, eta 12s]")
    assert frames[2].endswith("2/2 items [00:00, steps 10/10, eta 0s]")
    assert len(frames) == 4  # three moves, and the last frame again on close


def test_cli_status_names_only_items_that_ended_without_a_result(base_url, fake, assets, style, capsys):
    (assets / "a_broken.png").write_bytes(b"not really a png")
    with Client(base_url) as client:
        client.batch(assets, [style], {})
        client.batch_status("b1")  # the fake finishes one item per poll: a_broken.png fails first

    assert run_cli(base_url, "status", "b1") == 0
    out = capsys.readouterr().out
    assert "1 item(s) did not succeed: a_broken.png (failed)" in out
    assert "queued)" not in out


def test_no_cache_sends_cache_false_and_its_absence_leaves_the_server_s_default(
    base_url, fake, assets, style, tmp_path
):
    job = ["submit", str(assets / "hero.png"), "--style", str(style), "-o", str(tmp_path / "a.png")]
    assert run_cli(base_url, *job) == 0
    assert "cache" not in fake.forms[-1]
    assert run_cli(base_url, *job, "--no-cache") == 0
    assert fake.forms[-1]["cache"] == "false"
    batch = ["batch", str(assets), "--style", str(style), "--out", str(tmp_path / "out"), "--no-cache"]
    run_cli(base_url, *batch)
    assert fake.forms[-1]["cache"] == "false"
