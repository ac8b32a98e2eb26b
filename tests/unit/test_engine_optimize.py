"""The stylize loop with random weights at 32 px: shapes, range, progress points, loss decrease."""

import numpy as np
import pytest

from shared.errors import InvalidInput
from worker.engine.losses import LossConfig
from worker.engine.optimize import (
    AdamConfig,
    Progress,
    StepHooks,
    Targets,
    content_targets,
    optimize,
    style_targets,
    stylize,
)

pytestmark = pytest.mark.unit

SEED = LossConfig.for_formula("seed", style_weight=1e-2, content_weight=1e4, tv_weight=0.0)


@pytest.fixture
def content() -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, 32, dtype=np.float32)
    return np.tile(ramp[None, :, None], (32, 1, 3))


@pytest.fixture
def style() -> np.ndarray:
    # A different size from the content on purpose: only its Gram matrices are used.
    return np.random.default_rng(0).random((24, 40, 3)).astype(np.float32)


def test_stylize_lowers_the_loss_and_keeps_shape_and_range(extractor, content, style) -> None:
    result = stylize(extractor, content, style, steps=10, loss_config=SEED, adam=AdamConfig())
    assert result.image.shape == content.shape and result.image.dtype == np.float32
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    assert result.final_losses["total"] < result.initial_losses["total"]
    assert result.initial_losses["content"] == 0.0  # the image starts as the content
    assert result.steps_run == 10
    assert not np.array_equal(result.image, content)


def test_progress_is_reported_at_zero_every_n_and_the_last_step(extractor, content, style) -> None:
    seen: list[Progress] = []
    result = stylize(
        extractor,
        content,
        style,
        steps=10,
        loss_config=SEED,
        adam=AdamConfig(),
        progress_every=4,
        on_progress=seen.append,
    )
    assert [p.step for p in seen] == [0, 4, 8, 10]
    assert {p.total_steps for p in seen} == {10}
    assert all(set(p.losses) == {"total", "style", "content", "tv"} for p in seen)
    assert all(isinstance(v, float) for p in seen for v in p.losses.values())
    assert seen[0].losses == result.initial_losses and seen[-1].losses == result.final_losses


def test_every_snapshot_step_is_reported_too_so_its_losses_are_the_image_s(extractor, content, style) -> None:
    reported: list[int] = []
    snapshots: list[int] = []
    hooks = StepHooks(snapshot_every=3, on_snapshot=lambda step, image: snapshots.append(step))
    targets = Targets(
        style=style_targets(extractor, [style], [1.0]), content=content_targets(extractor, content)
    )
    optimize(
        extractor,
        targets,
        content,
        steps=10,
        loss_config=SEED,
        adam=AdamConfig(),
        progress_every=4,
        on_progress=lambda step, losses: reported.append(step),
        hooks=hooks,
    )
    assert snapshots == [3, 6, 9]
    assert reported == [0, 3, 4, 6, 8, 9, 10]


def test_stylize_leaves_the_model_weights_untouched(extractor, content, style) -> None:
    before = [w.numpy().copy() for w in extractor._model.weights]
    stylize(extractor, content, style, steps=2, loss_config=SEED, adam=AdamConfig())
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, extractor._model.weights, strict=True))


def test_an_exception_from_the_callback_stops_the_loop(extractor, content, style) -> None:
    steps: list[int] = []

    def cancel(progress: Progress) -> None:
        steps.append(progress.step)
        if progress.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize(
            extractor,
            content,
            style,
            steps=10,
            loss_config=SEED,
            adam=AdamConfig(),
            progress_every=2,
            on_progress=cancel,
        )
    assert steps == [0, 2]


def test_zero_steps_returns_the_content(extractor, content, style) -> None:
    result = stylize(extractor, content, style, steps=0, loss_config=SEED, adam=AdamConfig())
    np.testing.assert_array_equal(result.image, content)
    assert result.final_losses == result.initial_losses


@pytest.mark.parametrize("bad", [{"steps": -1}, {"progress_every": 0}])
def test_bad_arguments_are_rejected(extractor, content, style, bad) -> None:
    kwargs = {"steps": 1, "loss_config": SEED, "adam": AdamConfig(), **bad}
    with pytest.raises(InvalidInput):
        stylize(extractor, content, style, **kwargs)


def test_a_grey_image_is_rejected(extractor, style) -> None:
    with pytest.raises(InvalidInput, match="content"):
        stylize(extractor, np.zeros((32, 32)), style, steps=1, loss_config=SEED, adam=AdamConfig())
