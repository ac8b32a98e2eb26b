"""L-BFGS on the pixels: the recursion on a known quadratic, and the engine's jobs on real images (random
weights): lower losses than Adam for the same evaluations, groups, checkpoints and the evaluation cap."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from shared import images
from worker.engine.checkpoint import Paused, TrainerState
from worker.engine.lbfgs import LbfgsConfig, lbfgs_update
from worker.engine.losses import LossConfig
from worker.engine.optimize import (
    AdamConfig,
    Run,
    StepHooks,
    Targets,
    content_targets,
    optimize,
    optimize_many,
    style_targets,
)
from worker.engine.pipeline import resize

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOSS = LossConfig.for_formula(
    "balanced", style_weight=1.0, content_weight=1.0, tv_weight=0.005, content_layer="block4_conv2"
)


def example(name: str, size: tuple[int, int]) -> np.ndarray:
    return resize(images.decode_image((EXAMPLES / name).read_bytes(), max_dim=512), size)


@pytest.fixture(scope="module")
def job(extractor):
    content = example("content/chelsea.png", (32, 48))
    style = example("style/hubble_deep_field.jpg", (32, 32))
    targets = Targets(style_targets(extractor, [style], [1.0]), content_targets(extractor, content))
    return targets, content


def quadratic(scale: np.ndarray, optimum: np.ndarray):
    """Per image 0.5 * sum(scale * (x - optimum)^2), and its gradient."""

    def value_and_gradient(x):
        diff = x - optimum
        return tf.reduce_sum(0.5 * scale * diff**2, axis=[1, 2, 3]), scale * diff

    return value_and_gradient


def fresh_state(x: np.ndarray, history: int, evaluate) -> tuple:
    loss, gradient = evaluate(tf.constant(x))
    pairs = tf.zeros((x.shape[0], history, *x.shape[1:]))
    zeros = tf.zeros(x.shape[0])
    return (tf.constant(x), loss, gradient, pairs, pairs, zeros, zeros + 1.0)


def test_on_an_ill_conditioned_quadratic_it_reaches_the_optimum_clipped_to_the_box():
    rng = np.random.default_rng(0)
    shape = (2, 4, 4, 3)
    scale = rng.uniform(1.0, 100.0, shape).astype(np.float32)  # condition number ~100
    optimum = rng.uniform(-0.3, 1.3, shape).astype(np.float32)  # partly outside [0, 1]
    evaluate = quadratic(scale, optimum)
    hyper = tf.constant([[6.0, 6.0], [0.05, 0.05]])
    state = fresh_state(np.full(shape, 0.5, np.float32), 8, evaluate)
    for _ in range(60):
        state = lbfgs_update(state, tf.ones(2), hyper, evaluate)
    image, _, _, _, _, _, evaluations = state
    np.testing.assert_allclose(image.numpy(), np.clip(optimum, 0.0, 1.0), atol=1e-3)
    assert np.all(image.numpy() >= 0.0) and np.all(image.numpy() <= 1.0)
    assert np.all(evaluations.numpy() <= 1 + 60 * 6)


def test_an_inactive_job_is_left_exactly_as_it_was():
    shape = (2, 4, 4, 3)
    evaluate = quadratic(np.ones(shape, np.float32), np.zeros(shape, np.float32))
    state = fresh_state(np.full(shape, 0.7, np.float32), 3, evaluate)
    after = lbfgs_update(state, tf.constant([1.0, 0.0]), tf.constant([[4.0, 4.0], [0.05, 0.05]]), evaluate)
    for before, now in zip(state, after, strict=True):
        np.testing.assert_array_equal(before.numpy()[1], now.numpy()[1])
    assert not np.allclose(after[0].numpy()[0], 0.7)


def test_lbfgs_lowers_the_loss_and_counts_its_evaluations_within_the_cap(extractor, job):
    targets, content = job
    lbfgs = optimize(
        extractor, targets, content, steps=12, loss_config=LOSS, adam=AdamConfig(), lbfgs=LbfgsConfig()
    )
    assert 13 <= lbfgs.evaluations <= 1 + 12 * LbfgsConfig().max_evaluations
    assert lbfgs.final_losses["total"] < 0.9 * lbfgs.initial_losses["total"]
    assert 0.0 <= lbfgs.image.min() and lbfgs.image.max() <= 1.0


def test_each_job_of_a_group_keeps_its_own_history_and_matches_its_run_alone(extractor, job):
    targets, content = job
    other = np.ascontiguousarray(content[::-1])
    # One batch's items share their params; each has its own image, history, line search and step.
    runs = [
        Run(targets=targets, init=init, loss=LOSS, adam=AdamConfig(), lbfgs=LbfgsConfig(history=4))
        for init in (content, other)
    ]
    together = optimize_many(extractor, runs, steps=6)
    for run, grouped in zip(runs, together, strict=True):
        (alone,) = optimize_many(extractor, [run], steps=6)
        np.testing.assert_allclose(grouped.image, alone.image, atol=2e-4)
        assert grouped.evaluations == alone.evaluations
    assert not np.allclose(together[0].image, together[1].image, atol=0.05)


def test_a_paused_lbfgs_run_resumes_from_its_checkpoint_with_its_history(extractor, job):
    targets, content = job

    def run(**kwargs):
        config = LbfgsConfig(history=5)
        return optimize(
            extractor, targets, content, steps=8, loss_config=LOSS, adam=AdamConfig(), lbfgs=config, **kwargs
        )

    straight = run()
    asked = iter([False] * 5 + [True])
    with pytest.raises(Paused) as paused:
        run(hooks=StepHooks(should_pause=lambda: next(asked)))
    state = TrainerState.from_npz(paused.value.state.to_npz())
    assert (state.optimizer, state.step, np.shape(state.slots[2])) == ("lbfgs", 5, (5, 32, 48, 3))
    resumed = run(resume=state)
    np.testing.assert_allclose(resumed.image, straight.image, atol=1e-5)
    assert resumed.evaluations == straight.evaluations


def test_an_adam_checkpoint_is_refused_by_an_lbfgs_job(extractor, job):
    targets, content = job
    asked = iter([False, True])
    with pytest.raises(Paused) as paused:
        optimize(
            extractor, targets, content, steps=4, loss_config=LOSS, adam=AdamConfig(),
            hooks=StepHooks(should_pause=lambda: next(asked)),
        )  # fmt: skip
    with pytest.raises(ValueError, match="optimizer"):
        optimize(
            extractor, targets, content, steps=4, loss_config=LOSS, adam=AdamConfig(),
            lbfgs=LbfgsConfig(), resume=paused.value.state,
        )  # fmt: skip
