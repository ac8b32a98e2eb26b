"""Issue 3's art controls at engine level (style blends, balanced preset) and their API validation.

Measured on the real example images (scikit-image's chelsea, the Hubble deep field, brick) at small sizes.
"""

import io
import time
from pathlib import Path

import numpy as np
import pytest

from api import create_app
from api.services import Services
from shared.config import Settings
from shared.images import decode_image
from shared.jobs import JobRecord, JobStatus
from shared.params import StyleParams
from shared.plan import estimate_memory_bytes, plan_levels
from tests.fakes import FakeJobStore, FakeObjectStore, RecordingQueue
from tests.fixtures.badimages import noise_png
from worker.engine.losses import gram_matrix
from worker.engine.pipeline import stylize_job
from worker.engine.vgg import FeatureExtractor, load_extractor
from worker.job_options import stylize_options
from worker.runner import JobRunner

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHELSEA = EXAMPLES / "content" / "chelsea.png"
HUBBLE = EXAMPLES / "style" / "hubble_deep_field.jpg"
BRICK = EXAMPLES / "textures" / "brick.png"
BALANCED_STYLE_DROP = 5.0  # done-criterion 9 of issue 3: the style loss falls at least 5x
BALANCED_CONTENT_BOUND = 3.0  # normalised content loss: 1.0 is "as far from the content as a blank image"


def example(path: Path, max_dim: int) -> np.ndarray:
    return decode_image(path.read_bytes(), max_dim=max_dim)


def run_job(extractor, content, styles, *, progress=None, **params) -> np.ndarray:
    """stylize_job with options built the way the worker builds them, from validated params and a plan."""
    job = StyleParams.from_mapping({"preset": "seed", **params})  # the preset these checks were written for
    height, width = content.shape[:2]
    plan = plan_levels(width, height, max_dim=job.max_dim, levels=job.levels, steps=job.steps, min_side=16)
    options = stylize_options(job, plan, style_count=len(styles), progress_every=job.steps)
    return stylize_job(extractor, content, styles, options=options, on_progress=progress).image


def gram_distance(extractor: FeatureExtractor, image: np.ndarray, style: np.ndarray) -> float:
    """Sum over the style layers of ||G(image) - G(style)||^2 / ||G(style)||^2."""
    image_features, _ = extractor(image[None])
    style_features, _ = extractor(style[None])
    total = 0.0
    for ours, theirs in zip(image_features, style_features, strict=True):
        target = gram_matrix(theirs).numpy()
        total += float(np.sum((gram_matrix(ours).numpy() - target) ** 2) / np.sum(target**2))
    return total


# --- Blend (done-criterion 6) ---

BLEND = {"preset": "balanced", "steps": 60, "max_dim": 48}


@pytest.fixture(scope="module")
def blend_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return example(CHELSEA, 48), example(HUBBLE, 48), example(BRICK, 48)


def test_blend_weights_one_and_zero_give_exactly_the_single_style_result(extractor, blend_inputs):
    content, hubble, brick = blend_inputs
    single = run_job(extractor, content, [hubble], **BLEND)
    blended = run_job(extractor, content, [hubble, brick], style_blend_weights=(1, 0), **BLEND)
    swapped = run_job(extractor, content, [brick, hubble], style_blend_weights=(0, 1), **BLEND)
    assert not np.array_equal(single, content)
    np.testing.assert_array_equal(blended, single)
    np.testing.assert_array_equal(swapped, single)


def test_even_blend_lies_between_the_two_styles_in_gram_distance(extractor, blend_inputs):
    content, hubble, brick = blend_inputs
    only_hubble = run_job(extractor, content, [hubble], **BLEND)
    only_brick = run_job(extractor, content, [brick], **BLEND)
    even = run_job(extractor, content, [hubble, brick], style_blend_weights=(0.5, 0.5), **BLEND)
    for name, style in [("hubble", hubble), ("brick", brick)]:
        near, far, blend = (
            gram_distance(extractor, image, style) for image in (only_hubble, only_brick, even)
        )
        near, far = (near, far) if name == "hubble" else (far, near)
        print(
            f"Gram distance to {name}: its own style {near:.4f}, the blend {blend:.4f}, the other {far:.4f}"
        )
        assert near < blend < far


# --- Balanced preset (done-criterion 9) ---

BALANCED_CASES = [
    pytest.param("hed", 64, 200, id="hed-64px"),
    pytest.param("random", 64, 200, id="random-64px"),
    # Steps at 256 px are the fewest that clear the 5x drop with a margin (measured on this 2-core CPU:
    # hed 4.75x at 120 steps, 7.3x at 200; random 5.66x at 60, 7.6x at 80); each step there costs ~0.6 s.
    pytest.param("hed", 256, 160, id="hed-256px", marks=pytest.mark.slow),
    pytest.param("random", 256, 80, id="random-256px", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("weights", "size", "steps"), BALANCED_CASES)
def test_balanced_preset_cuts_the_style_loss_fivefold_and_keeps_the_content_loss_bounded(
    weights, size, steps
):
    extractor = load_extractor(weights)
    seen = []
    started = time.perf_counter()
    run_job(
        extractor,
        example(CHELSEA, size),
        [example(HUBBLE, size)],
        progress=seen.append,
        preset="balanced",
        steps=steps,
        max_dim=size,
    )
    first, last = seen[0].losses, seen[-1].losses
    assert (seen[0].step, seen[-1].step) == (0, steps)
    drop = first["style"] / last["style"]
    print(
        f"balanced, {weights} weights, {size} px, {steps} steps ({time.perf_counter() - started:.0f} s): "
        f"style {first['style']:.4g} -> {last['style']:.4g} ({drop:.1f}x), "
        f"content {first['content']:.4g} -> {last['content']:.4g}"
    )
    assert drop >= BALANCED_STYLE_DROP
    assert max(p.losses["content"] for p in seen) <= BALANCED_CONTENT_BOUND


# --- Validation of every new parameter (done-criterion 8) ---


def make_client() -> tuple:
    services = Services(
        settings=Settings(auth="open"),
        store=FakeJobStore(),
        objects=FakeObjectStore(),
        queue=RecordingQueue(),
    )
    return create_app(services=services).test_client(), services


def post_job(client, *, content: bytes | None = None, styles: int = 1, **form: str):
    data = dict(form)
    data["content"] = (io.BytesIO(content or noise_png(40, 30, seed=1)), "c.png")
    data["style"] = [(io.BytesIO(noise_png(32, 32, seed=2 + k)), f"s{k}.png") for k in range(styles)]
    return client.post("/v1/jobs", data=data, content_type="multipart/form-data")


BAD_VALUES = [
    ("tv_weight", "-1"),
    ("tv_weight", "lots"),
    ("normalize_losses", "maybe"),
    ("normalize_losses", "2"),
    ("init", "zeros"),
    ("init", ""),
    ("seed", "-1"),
    ("seed", "1.5"),
    ("seed", str(2**31)),
    ("style_blend_weights", "a,b"),
    ("style_blend_weights", "0"),
    ("style_blend_weights", "-1"),
    ("style_blend_weights", "0.7,0.3"),  # two weights for the one style image
    ("style_scale", "0"),
    ("style_scale", "5"),
    ("style_scale", "nan"),
    ("preserve_color", "yuv"),
    ("preserve_color", "None"),
    ("tileable", "sometimes"),
    ("levels", "0"),
    ("levels", "6"),
    ("levels", "2.5"),
    ("output_format", "gif"),
    ("output_format", "PNG"),
    ("quality", "0"),
    ("quality", "101"),
    ("quality", "high"),
    ("optimizer", "sgd"),
    ("content_layer", "block3_conv1"),
    ("lbfgs_history", "0"),
    ("line_search_evaluations", "21"),
    ("coarse_step_factor", "0.5"),
    ("preview", "sometimes"),
    ("init", "feed-forward"),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v in BAD_VALUES])
def test_a_bad_value_of_a_new_parameter_answers_400_naming_it_and_stores_nothing(field, value):
    client, services = make_client()
    response = post_job(client, max_dim="32", **{field: value})
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["field"] == field and error["message"]
    assert services.store.records == {} and services.queue.enqueued == [] and services.objects.objects == {}


@pytest.mark.parametrize(
    ("field", "value", "styles"),
    [
        ("style_blend_weights", "0.7,0.3", 2),
        ("style_blend_weights", "[1, 0]", 2),
        ("normalize_losses", "true", 1),
        ("init", "noise", 1),
        ("seed", "7", 1),
        ("style_scale", "0.5", 1),
        ("preserve_color", "histogram", 1),
        ("tileable", "false", 1),
        ("levels", "2", 1),
        ("output_format", "webp", 1),
        ("quality", "80", 1),
    ],
)
def test_a_good_value_of_a_new_parameter_is_accepted(field, value, styles):
    client, services = make_client()
    form = {"params": f'{{"{field}": {value}}}'} if value.startswith("[") else {field: value}
    response = post_job(client, max_dim="128", styles=styles, **form)
    assert response.status_code == 202, response.get_json()
    assert len(services.queue.enqueued) == 1


# --- Regressions found while writing these tests ---


@pytest.mark.parametrize("preserve_color", ["luminance", "histogram"])
def test_tileable_job_whose_content_sides_are_not_multiples_of_16_keeps_its_colour_mode(
    extractor, preserve_color
):
    content = example(CHELSEA, 64)  # 64x43: the tileable plan rounds it to 64x48
    alpha = np.full(content.shape[:2], 255, dtype=np.uint8)
    alpha[:, :8] = 0
    job = StyleParams.from_mapping(
        {"preset": "seed", "steps": 2, "max_dim": 64, "tileable": True, "preserve_color": preserve_color}
    )
    plan = plan_levels(451, 300, max_dim=64, levels=1, steps=2, multiple=16)
    options = stylize_options(job, plan, style_count=1, progress_every=2)
    result = stylize_job(extractor, content, [example(HUBBLE, 64)], options=options, alpha=alpha)
    assert result.image.shape == (48, 64, 3)


def test_a_running_multi_level_job_reports_the_steps_of_all_its_levels(extractor):
    runner = JobRunner(
        store=FakeJobStore(), objects=FakeObjectStore(), extractor=extractor, settings=Settings()
    )
    plan = plan_levels(128, 128, max_dim=128, levels=3, steps=4)
    params = StyleParams.from_mapping({"preset": "seed", "steps": 4, "max_dim": 128, "levels": 3})
    record = JobRecord(
        id="job1",
        status=JobStatus.QUEUED,
        content_key="c",
        style_keys=("s",),
        params=params,
        created_at=time.time(),
        total_steps=plan.total_steps,
        plan=plan.to_dict(),
    )
    runner.store.create(record)
    assert runner.mark_running(record).total_steps == 12


def test_a_32_px_job_asking_three_levels_runs_the_one_that_fits():
    client, _ = make_client()
    response = post_job(client, preset="seed", max_dim="32", levels="3", steps="5")
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["plan"]["levels"] == [{"width": 32, "height": 24, "steps": 5, "history": 0}]


def test_a_2048_px_three_level_job_is_accepted_with_its_plan_and_memory_estimate():
    client, services = make_client()
    response = post_job(client, preset="seed", max_dim="2048", levels="3", steps="100")
    assert response.status_code == 202, response.get_json()
    plan = response.get_json()["plan"]
    assert [(level["width"], level["height"]) for level in plan["levels"]] == [
        (512, 384),
        (1024, 768),
        (2048, 1536),
    ]
    assert plan["total_steps"] == 300 == response.get_json()["progress"]["total_steps"]
    assert plan["peak_memory_bytes"] == estimate_memory_bytes(2048, 1536)
    print(f"2048x1536 job: peak memory estimate {plan['peak_memory_bytes'] / 2**30:.2f} GiB")
