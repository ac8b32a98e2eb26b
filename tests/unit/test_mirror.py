"""The folder mirror's bookkeeping (client/mirror.py): what a re-run of `styleforge batch` submits."""

from pathlib import Path, PurePosixPath

import pytest

from client import mirror
from client.models import Batch, BatchItem, Counts, Result, Skipped

pytestmark = pytest.mark.unit

PARAMS = {"preset": "balanced", "max_dim": 32}


@pytest.fixture
def tree(tmp_path):
    """An input folder of three files, a style, and an output folder."""
    folder = tmp_path / "assets"
    (folder / "sub").mkdir(parents=True)
    for name, data in {"a.png": b"a", "sub/b.jpg": b"b", "notes.txt": b"n"}.items():
        (folder / name).write_bytes(data)
    style = tmp_path / "style.png"
    style.write_bytes(b"style")
    return folder, style, tmp_path / "out"


def collect(folder: Path, style: Path, out: Path, params=PARAMS) -> mirror.MirrorPlan:
    """Plan a run, pretend the server stylized every image (and skipped the text file), record it."""
    plan = mirror.plan(folder, out, mirror.StyleChoice((style,)), params)
    state = plan.submitted("b1")
    images = [path for path in plan.changed if not path.endswith(".txt")]
    items = tuple(
        BatchItem(job_id=f"j-{path}", path=path, status="succeeded", result=Result(url="u", key="k.png"))
        for path in images
    )
    skipped = tuple(Skipped(path, "not an image") for path in plan.changed if path.endswith(".txt"))
    batch = Batch(
        id="b1", status="succeeded", counts=Counts(), items_total=len(items), items=items, skipped=skipped
    )
    names = mirror.output_paths(batch, state.outputs_of(state.pending))
    written = {}
    for path, relative in names.items():
        dest = out.joinpath(*relative.parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"stylized " + path.encode())
        written[path] = dest
    mirror.save_state(out, mirror.record(state, batch, out, written))
    return plan


def test_a_first_run_submits_everything_and_a_second_submits_nothing(tree):
    folder, style, out = tree
    assert set(collect(folder, style, out).changed) == {"a.png", "sub/b.jpg", "notes.txt"}
    again = mirror.plan(folder, out, mirror.StyleChoice((style,)), PARAMS)
    assert again.changed == () and set(again.unchanged) == {"a.png", "sub/b.jpg", "notes.txt"}
    assert (out / "sub/b.png").read_bytes() == b"stylized sub/b.jpg"


@pytest.mark.parametrize(
    "change",
    ["edit an input", "other params", "edit the style", "delete an output", "edit an output"],
)
def test_each_kind_of_change_submits_exactly_the_inputs_it_touches(tree, change):
    folder, style, out = tree
    collect(folder, style, out)
    params, expected = PARAMS, {"sub/b.jpg"}
    if change == "edit an input":
        (folder / "sub/b.jpg").write_bytes(b"b2")
    elif change == "other params":
        params, expected = {**PARAMS, "max_dim": 64}, {"a.png", "sub/b.jpg", "notes.txt"}
    elif change == "edit the style":
        style.write_bytes(b"style2")
        expected = {"a.png", "sub/b.jpg", "notes.txt"}
    elif change == "delete an output":
        (out / "sub/b.png").unlink()
    else:
        (out / "sub/b.png").write_bytes(b"retouched by hand")
    assert set(mirror.plan(folder, out, mirror.StyleChoice((style,)), params).changed) == expected


def test_force_submits_every_input_and_a_removed_input_is_reported_not_deleted(tree):
    folder, style, out = tree
    collect(folder, style, out)
    (folder / "a.png").unlink()
    plan = mirror.plan(folder, out, mirror.StyleChoice((style,)), PARAMS, force=True)
    assert set(plan.changed) == {"sub/b.jpg", "notes.txt"} and plan.removed == ("a.png",)
    assert "a.png" not in plan.kept and (out / "a.png").is_file()
    assert "1 gone from the folder" in plan.summary()


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input(tree):
    folder, style, _ = tree
    out = folder / "stylized"
    collect(folder, style, out)
    assert mirror.plan(folder, out, mirror.StyleChoice((style,)), PARAMS).changed == ()
    with pytest.raises(ValueError, match="must not be the input folder"):
        mirror.plan(folder, folder, mirror.StyleChoice((style,)), PARAMS)


def test_a_partial_rerun_names_clashing_outputs_as_the_full_run_did():
    def done(path: str) -> BatchItem:
        return BatchItem(job_id=path, path=path, status="succeeded", result=Result(url="u", key="k.png"))

    only_the_jpg = Batch(id="b", status="succeeded", counts=Counts(), items_total=1, items=(done("a.jpg"),))
    names = mirror.output_paths(only_the_jpg, ["a.jpg", "a.png"])
    assert names == {"a.jpg": PurePosixPath("a.jpg.png")}


def test_a_failed_item_keeps_no_fresh_entry_so_the_next_run_submits_it(tree):
    folder, style, out = tree
    plan = mirror.plan(folder, out, mirror.StyleChoice((style,)), PARAMS)
    state = plan.submitted("b1")
    failed = BatchItem(job_id="j", path="a.png", status="failed", error="boom")
    batch = Batch(id="b1", status="failed", counts=Counts(), items_total=1, items=(failed,))
    mirror.save_state(out, mirror.record(state, batch, out, {}))
    assert "a.png" in mirror.plan(folder, out, mirror.StyleChoice((style,)), PARAMS).changed


def test_a_state_file_that_is_not_json_is_named_in_the_error(tree):
    folder, style, out = tree
    out.mkdir()
    (out / mirror.STATE_FILE).write_text("{half")
    with pytest.raises(ValueError, match=r"\.styleforge\.json is not valid JSON"):
        mirror.plan(folder, out, mirror.StyleChoice((style,)), PARAMS)
