"""Compiled steps per shape bucket, jobs optimised together, reduced precision (random weights)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from shared import images
from worker.engine.buckets import bucket_size
from worker.engine.color import recolor_to_palette
from worker.engine.losses import LossConfig
from worker.engine.optimize import (
    AdamConfig,
    Canceled,
    Run,
    StepHooks,
    Targets,
    content_targets,
    optimize,
    optimize_many,
    style_targets,
)
from worker.engine.pipeline import JobInput, StylizeOptions, resize, stylize_job, stylize_many
from worker.engine.steps import compiled_steps
from worker.engine.vgg import FeatureExtractor

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BALANCED = LossConfig.for_formula("balanced", style_weight=1.0, content_weight=0.5, tv_weight=0.1)


def image(seed: int, size: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(seed).random((*size, 3), dtype=np.float32)


def options(size: tuple[int, int], steps: int = 2, **changes) -> StylizeOptions:
    fields = {"levels": (size,), "steps": steps, "loss": BALANCED, "adam": AdamConfig(), "progress_every": 10}
    return StylizeOptions(**{**fields, **changes})


def test_buckets_add_at_most_an_eighth_of_a_side_and_tileable_sides_round_to_16() -> None:
    assert bucket_size((40, 64)) == (48, 64)
    assert bucket_size((170, 256)) == (176, 256)
    assert bucket_size((300, 512)) == (320, 512)
    assert bucket_size((700, 1000)) == (704, 1024)
    assert bucket_size((1100, 2048)) == (1152, 2048)
    for side in range(16, 2049, 7):
        bucket = bucket_size((side, side))[0]
        assert side <= bucket <= side + max(16, side // 8 + 1)
    assert bucket_size((48, 272), tileable=True) == (48, 272)


def test_ten_jobs_of_mixed_sizes_in_two_buckets_trace_the_step_twice() -> None:
    extractor = FeatureExtractor(weights="random", seed=0)  # its own: a fresh set of compiled steps
    sizes = [
        (64, 64),
        (50, 60),
        (49, 64),
        (63, 51),
        (64, 50),
        (64, 96),
        (60, 90),
        (50, 81),
        (52, 88),
        (64, 95),
    ]
    assert {bucket_size(size) for size in sizes} == {(64, 64), (64, 96)}
    style = image(99, (48, 48))
    for number, size in enumerate(sizes):
        # The weights change per job too: they are inputs to the compiled step, not part of it.
        loss = replace(BALANCED, style_weight=1.0 + number)
        result = stylize_job(extractor, image(number, size), [style], options=options(size, loss=loss))
        assert result.image.shape == (*size, 3)
    traces = compiled_steps(extractor).traces
    assert traces["step"] == 2 and traces["losses"] == 2


def test_a_size_on_the_bucket_grid_is_optimised_as_it_is(extractor) -> None:
    content, style = image(1, (64, 96)), image(2, (40, 40))
    result = stylize_job(extractor, content, [style], options=options((64, 96), steps=3))
    style = resize(style, (96, 96))  # the pipeline sizes the style to the level's longest side
    targets = Targets(style_targets(extractor, [style], [1.0]), content_targets(extractor, content))
    alone = optimize(extractor, targets, content, steps=3, loss_config=BALANCED, adam=AdamConfig())
    np.testing.assert_array_equal(result.image, alone.image)


def _run(extractor, seed: int, **changes) -> Run:
    content, style = image(seed, (64, 64)), image(seed + 50, (48, 48))
    targets = Targets(style_targets(extractor, [style], [1.0]), content_targets(extractor, content))
    return replace(Run(targets=targets, init=content, loss=BALANCED, adam=AdamConfig()), **changes)


def _alone(extractor, run: Run, steps: int):
    return optimize(
        extractor, run.targets, run.init, steps=steps, loss_config=run.loss, adam=run.adam, hooks=run.hooks
    )


def test_jobs_optimised_together_each_match_their_run_alone(extractor) -> None:
    runs = [
        _run(extractor, 1),
        _run(extractor, 2, loss=replace(BALANCED, style_weight=3.0, tv_weight=0.0)),
        _run(extractor, 3, adam=AdamConfig(learning_rate=0.05)),
    ]
    together = optimize_many(extractor, runs, steps=8, progress_every=4)
    for run, outcome in zip(runs, together, strict=True):
        alone = _alone(extractor, run, 8)
        assert not np.array_equal(outcome.image, run.init)
        np.testing.assert_allclose(outcome.image, alone.image, atol=1e-4)
        np.testing.assert_allclose(outcome.final_losses["total"], alone.final_losses["total"], rtol=1e-4)
    assert len({round(outcome.final_losses["total"], 6) for outcome in together}) == 3


def test_a_job_canceled_in_a_batch_stops_alone_and_the_others_go_on(extractor) -> None:
    calls = {"n": 0}

    def cancel_after_three_checks() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    runs = [_run(extractor, 4), _run(extractor, 5, hooks=StepHooks(should_stop=cancel_after_three_checks))]
    first, second = optimize_many(extractor, runs, steps=6)
    assert isinstance(second, Canceled) and second.step == 3
    np.testing.assert_allclose(first.image, _alone(extractor, runs[0], 6).image, atol=1e-4)


def test_stylize_many_gives_jobs_of_one_bucket_their_own_size_result_and_progress(extractor) -> None:
    # Two sizes, two levels each, in the same buckets; one job has an alpha channel, the other none.
    sizes = {0: ((32, 40), (50, 60)), 1: ((30, 36), (56, 64))}
    alpha = np.where(np.arange(64)[None, :] < 32, 255, 0).astype(np.uint8).repeat(56, axis=0)
    seen: dict[int, list[int]] = {0: [], 1: []}
    jobs = [
        JobInput(
            image(seed, sizes[seed][-1]),
            [image(seed + 9, (40, 40))],
            options(sizes[seed][-1], steps=4, levels=sizes[seed], progress_every=2),
            alpha=None if seed == 0 else alpha,
            on_progress=lambda p, s=seed: seen[s].append(p.step),
        )
        for seed in (0, 1)
    ]
    together = stylize_many(extractor, jobs)
    for job, outcome in zip(jobs, together, strict=True):
        alone = stylize_job(extractor, job.content, job.styles, options=job.options, alpha=job.alpha)
        assert outcome.image.shape == alone.image.shape == job.content.shape
        np.testing.assert_allclose(outcome.image, alone.image, atol=1e-4)
    assert seen == {0: [0, 2, 4, 6, 8], 1: [0, 2, 4, 6, 8]}


def test_jobs_of_different_buckets_are_refused_together(extractor) -> None:
    jobs = [JobInput(image(0, size), [image(1, (32, 32))], options(size)) for size in [(64, 64), (64, 96)]]
    with pytest.raises(ValueError, match="buckets"):
        stylize_many(extractor, jobs)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_reduced_precision_ends_within_2_percent_of_float32(precision) -> None:
    # The worker enables it on GPUs only; the engine runs it anywhere, so the CPU checks the loss here, with
    # trained (hed) weights, the balanced preset and enough steps for the loss to fall by over 10%.
    content = images.decode_image((EXAMPLES / "content" / "chelsea.png").read_bytes(), max_dim=48)
    style = images.decode_image((EXAMPLES / "style" / "hubble_deep_field.jpg").read_bytes(), max_dim=48)
    preset = LossConfig.for_formula("balanced", style_weight=1.0, content_weight=0.05, tv_weight=0.005)
    run = options(content.shape[:2], steps=25, loss=preset, adam=AdamConfig(learning_rate=0.1))
    final = {}
    for dtype in ("float32", precision):
        extractor = FeatureExtractor(weights="hed", precision=dtype)
        result = stylize_job(extractor, content, [style], options=run)
        final[dtype] = result.final_losses["total"]
        assert result.final_losses["total"] < 0.9 * result.initial_losses["total"]
    assert abs(final[precision] - final["float32"]) <= 0.02 * final["float32"]


def test_an_xla_compiled_step_with_a_mask_matches_the_plain_one(extractor) -> None:
    # STYLEFORGE_XLA is for GPUs, but XLA compiles for the CPU too: this checks every op of a masked step
    # has an XLA kernel (the masks' area resize is done outside the step for that reason).
    xla = FeatureExtractor(weights="random", seed=0, jit_compile=True)
    content, style = image(11, (32, 32)), image(12, (32, 32))
    alpha = np.where(np.arange(32)[:, None] < 20, 255, 0).astype(np.uint8).repeat(32, axis=1)
    run = options((32, 32), steps=3)
    plain = stylize_job(extractor, content, [style], options=run, alpha=alpha)
    compiled = stylize_job(xla, content, [style], options=run, alpha=alpha)
    np.testing.assert_allclose(compiled.image, plain.image, atol=1e-3)
    np.testing.assert_allclose(compiled.final_losses["total"], plain.final_losses["total"], rtol=1e-3)


def test_preserve_color_style_optimises_the_content_recoloured_to_the_styles_palette(extractor) -> None:
    content, style = image(10, (32, 48)), image(11, (32, 32)) * 0.25  # a dark palette
    run = options((32, 48), steps=4, preserve_color="style")
    with pytest.raises(Canceled) as canceled:  # stopped before its first step: its image is the start image
        stylize_job(extractor, content, [style], options=run, hooks=StepHooks(should_stop=lambda: True))
    assert canceled.value.step == 0
    recolored = recolor_to_palette(content, [style], (1.0,))
    np.testing.assert_allclose(canceled.value.image, recolored, atol=1e-6)
    assert recolored.mean() < 0.5 * content.mean()
    result = stylize_job(extractor, content, [style], options=run)
    assert result.initial_losses["content"] == 0.0  # the recoloured content is also what it matches
    assert result.final_losses["total"] < result.initial_losses["total"]


def test_the_fast_mode_returns_the_feed_forward_image_as_it_is_with_its_losses(extractor) -> None:
    warm = image(7, (40, 52))  # 40x52 works in the 48x64 bucket: a round trip would resample it
    fast = options((40, 52), steps=0, init="feedforward")
    result = stylize_job(extractor, image(8, (40, 52)), [image(9, (32, 32))], options=fast, warm_start=warm)
    np.testing.assert_array_equal(result.image, warm)
    assert result.evaluations == 0 and result.final_losses["total"] > 0
