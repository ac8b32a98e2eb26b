"""The optimisation loop stops within one step of a cancel request, and the check is cheap on fast devices."""

import numpy as np
import pytest

from worker.engine.losses import LossConfig
from worker.engine.optimize import (
    AdamConfig,
    Canceled,
    StepHooks,
    Targets,
    content_targets,
    optimize,
    style_targets,
)
from worker.recovery import CancelCheck

pytestmark = pytest.mark.unit


def test_a_stop_request_ends_the_loop_before_the_next_step_with_that_steps_image(extractor):
    image = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    targets = Targets(
        style=style_targets(extractor, [image], [1.0]), content=content_targets(extractor, image)
    )
    asked = iter([False, False, False, True])
    snapshots = []
    hooks = StepHooks(
        should_stop=lambda: next(asked),
        snapshot_every=1,
        on_snapshot=lambda step, img: snapshots.append((step, img.copy())),
    )
    config = LossConfig.for_formula("balanced", style_weight=1, content_weight=0.05, tv_weight=0)
    with pytest.raises(Canceled) as stopped:
        optimize(
            extractor,
            targets,
            image,
            steps=50,
            loss_config=config,
            adam=AdamConfig(epsilon=1e-8),
            hooks=hooks,
        )
    assert stopped.value.step == 3
    assert [step for step, _ in snapshots] == [1, 2, 3]
    assert np.array_equal(stopped.value.image, snapshots[-1][1])


def test_the_step_a_cancel_stops_at_is_reported_with_its_losses(extractor):
    image = np.random.default_rng(1).random((32, 32, 3), dtype=np.float32)
    targets = Targets(
        style=style_targets(extractor, [image], [1.0]), content=content_targets(extractor, image)
    )
    asked = iter([False] * 5 + [True])
    reported: list[int] = []
    config = LossConfig.for_formula("balanced", style_weight=1, content_weight=0.05, tv_weight=0)
    with pytest.raises(Canceled) as stopped:
        optimize(
            extractor,
            targets,
            image,
            steps=50,
            loss_config=config,
            adam=AdamConfig(epsilon=1e-8),
            progress_every=4,
            on_progress=lambda step, losses: reported.append(step),
            hooks=StepHooks(should_stop=lambda: next(asked)),
        )
    assert stopped.value.step == 5
    assert reported == [0, 4, 5]  # the canceled image's own losses come last, as the page shows them


def test_the_cancel_check_asks_redis_at_most_once_per_interval():
    now, probes = [0.0], []
    check = CancelCheck(lambda: probes.append(now[0]) or False, interval_s=0.02, clock=lambda: now[0])
    for step in range(10):
        now[0] = step * 0.005  # 5 ms steps, as on a GPU
        check()
    assert probes == [0.0, 0.02, 0.04]
