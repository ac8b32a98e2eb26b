"""The real `styleforge batch` command, as a subprocess, against the real stack (API, Redis, S3, worker)."""

import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.integration.helpers import REPO

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "examples"
# Six real images in a nested tree, in several formats and modes (RGB, L, RGBA), plus one text file.
ASSET_TREE = {
    "characters/chelsea.png": ("content/chelsea.png", None),
    "characters/astronaut.jpg": ("content/astronaut.png", None),
    "characters/sprites/present.png": ("sprites/Minduka_Present_Blue_Pack.png", None),
    "textures/brick.png": ("textures/brick.png", None),
    "textures/crops/astronaut_helmet.png": ("content/astronaut.png", (140, 20, 400, 280)),
    "space/hubble.webp": ("style/hubble_deep_field.jpg", None),
}
IMAGE_COUNT = len(ASSET_TREE)


def build_assets(root: Path) -> None:
    """Write the asset tree: each example shrunk to at most 64 px (cropped first where asked)."""
    for relative, (source, crop) in ASSET_TREE.items():
        with Image.open(EXAMPLES / source) as image:
            image = image.crop(crop) if crop else image.copy()
        image.thumbnail((64, 64))
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / relative)
    (root / "textures" / "README.txt").write_text("credits for the textures\n")


def unique_style(path: Path) -> Path:
    """The Hubble style with one pixel set from a fresh uuid, so no earlier test has its targets cached."""
    with Image.open(EXAMPLES / "style/hubble_deep_field.jpg") as original:
        image = original.convert("RGB")
    image.thumbnail((64, 64))
    image.putpixel((0, 0), tuple(uuid.uuid4().bytes[:3]))
    image.save(path)
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "client.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_cli_batch_mirrors_a_nested_folder_skips_the_text_file_and_computes_style_targets_once(api, tmp_path):
    assets, out = tmp_path / "assets", tmp_path / "stylized"
    build_assets(assets)
    style = unique_style(tmp_path / "style.png")

    done = run_cli(
        "batch",
        str(assets),
        "--style",
        str(style),
        "--out",
        str(out),
        "--size",
        "32",
        "--steps",
        "2",
        "--preset",
        "balanced",
        "--api",
        api.url,
    )

    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    expected = sorted(str(Path(relative).with_suffix(".png")) for relative in ASSET_TREE)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        ".styleforge.json",
        *expected,
    ]
    for path in out.rglob("*.png"):
        with Image.open(path) as result:
            assert result.format == "PNG" and max(result.size) == 32
    assert re.search(r"^  textures/README\.txt: .+$", done.stdout, re.MULTILINE), done.stdout
    assert f"{IMAGE_COUNT} succeeded, 0 failed, 0 canceled" in done.stdout
    assert "resume with: styleforge wait" in done.stdout

    # STYLE TARGETS COMPUTED ONCE: the first item computes them, every other item reuses them.
    # (Needs the per-item `targets` the worker reports: "computed" | "reused".)
    batch_id = re.search(r"^batch ([0-9a-f]{32}) submitted", done.stdout, re.MULTILINE).group(1)
    batch = requests.get(f"{api.url}/v1/batches/{batch_id}?limit=1000", timeout=10).json()
    targets = Counter(item["targets"] for item in batch["items"])
    assert targets == Counter({"computed": 1, "reused": IMAGE_COUNT - 1}), batch["items"]
    assert batch["targets"] == {"computed": 1, "reused": IMAGE_COUNT - 1}


def test_cli_status_and_wait_resume_a_finished_batch_without_downloading_twice(api, tmp_path):
    assets, out = tmp_path / "assets", tmp_path / "stylized"
    build_assets(assets)
    first = run_cli(
        "batch",
        str(assets),
        "--style",
        str(EXAMPLES / "style/hubble_deep_field.jpg"),
        "--out",
        str(out),
        "--size",
        "32",
        "--steps",
        "1",
        "--api",
        api.url,
    )
    assert first.returncode == 0, first.stderr
    batch_id = re.search(r"^batch ([0-9a-f]{32}) submitted", first.stdout, re.MULTILINE).group(1)
    (out / "textures/brick.png").unlink()

    status = run_cli("status", batch_id, "--api", api.url)
    resumed = run_cli("wait", batch_id, "--out", str(out), "--api", api.url)

    assert (
        status.returncode == 0
        and f"batch {batch_id}: succeeded, {IMAGE_COUNT}/{IMAGE_COUNT} done" in status.stdout
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"downloaded 1 result(s) to {out} ({IMAGE_COUNT - 1} already there)" in resumed.stdout
    assert (out / "textures/brick.png").is_file()


def batch_ids(api) -> set[str]:
    return {
        batch["id"] for batch in requests.get(f"{api.url}/v1/batches?limit=100", timeout=10).json()["batches"]
    }


def test_cli_batch_with_a_saved_style_reruns_nothing_when_unchanged_and_exactly_the_one_edited_file(
    api, tmp_path
):
    assets, out = tmp_path / "assets", tmp_path / "stylized"
    build_assets(assets)
    style = unique_style(tmp_path / "style.png")
    made = run_cli("styles", "create", "house night", "--style", str(style), "--api", api.url)
    assert made.returncode == 0, made.stderr
    style_id = made.stdout.strip()
    listed = run_cli("styles", "list", "--api", api.url)
    assert re.search(
        rf"^{style_id}  1 image\(s\)  weights 1  scale 1  house night$", listed.stdout, re.MULTILINE
    )
    argv = ["batch", str(assets), "--style-id", style_id, "--out", str(out), "--size", "32", "--steps", "1"]
    argv += ["--api", api.url]

    first = run_cli(*argv)
    assert first.returncode == 0, f"stdout:\n{first.stdout}\nstderr:\n{first.stderr}"
    outputs = {p: p.read_bytes() for p in out.rglob("*.png")}
    assert len(outputs) == IMAGE_COUNT
    before = batch_ids(api)

    second = run_cli(*argv)
    assert second.returncode == 0, second.stderr
    assert f"{IMAGE_COUNT + 1} input file(s): {IMAGE_COUNT + 1} up to date, 0 to submit" in second.stdout
    assert "submitted" not in second.stdout
    assert batch_ids(api) == before  # no batch, so no job
    assert {p: p.read_bytes() for p in out.rglob("*.png")} == outputs

    with Image.open(assets / "textures/brick.png") as brick:
        brick.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(assets / "textures/brick.png")
    third = run_cli(*argv)
    assert third.returncode == 0, third.stderr
    assert f"{IMAGE_COUNT} up to date, 1 to submit" in third.stdout
    new = batch_ids(api) - before
    assert len(new) == 1
    batch = requests.get(f"{api.url}/v1/batches/{new.pop()}", timeout=10).json()
    assert [item["path"] for item in batch["items"]] == ["textures/brick.png"]
    assert batch["counts"]["succeeded"] == 1
    changed = {p for p, data in outputs.items() if p.read_bytes() != data}
    assert changed == {out / "textures/brick.png"}

    state = json.loads((out / ".styleforge.json").read_text())
    assert state["pending"] is None
    assert set(state["entries"]) == set(ASSET_TREE) | {"textures/README.txt"}
    assert state["entries"]["textures/brick.png"]["job_id"] == batch["items"][0]["job_id"]
    assert state["entries"]["textures/README.txt"]["skipped"]
    assert batch["style_id"] == style_id

    deleted = run_cli("styles", "delete", style_id, "--api", api.url)
    assert deleted.returncode == 0 and style_id not in run_cli("styles", "list", "--api", api.url).stdout
