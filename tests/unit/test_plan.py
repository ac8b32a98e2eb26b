"""The coarse-to-fine schedule and memory estimate in shared.plan."""

import json

import pytest

from shared.errors import InvalidInput
from shared.plan import MIN_LEVEL_SIDE, Level, Plan, estimate_memory_bytes, plan_levels

pytestmark = pytest.mark.unit

MIB = 2**20


def test_2048_plan_has_three_doubling_levels_and_a_reported_memory_estimate():
    plan = plan_levels(3000, 3000, max_dim=2048, levels=3, steps=200)
    assert plan.levels == (Level(512, 512, 200), Level(1024, 1024, 200), Level(2048, 2048, 200))
    assert plan.total_steps == 600
    print(f"2048 px plan: peak memory estimate {plan.peak_memory_bytes / 2**30:.2f} GiB")
    # Activations of VGG19 at 2048x2048 alone are several GiB; a plausible peak lies between 4 and 40 GiB.
    assert 4 * 2**30 < plan.peak_memory_bytes < 40 * 2**30


def test_peak_memory_of_a_plan_is_its_largest_level():
    plan = plan_levels(451, 300, max_dim=1024, levels=3, steps=10)
    assert plan.peak_memory_bytes == estimate_memory_bytes(1024, 681)
    assert plan.peak_memory_bytes == max(estimate_memory_bytes(lv.width, lv.height) for lv in plan.levels)


def test_levels_keep_the_aspect_ratio_with_the_longest_side_halving():
    plan = plan_levels(451, 300, max_dim=1000, levels=3, steps=5)
    assert [(lv.width, lv.height) for lv in plan.levels] == [(250, 166), (500, 333), (1000, 665)]
    portrait = plan_levels(300, 451, max_dim=1000, levels=2, steps=5)
    assert [(lv.width, lv.height) for lv in portrait.levels] == [(333, 500), (665, 1000)]


def test_odd_max_dim_halves_rounding_half_up():
    plan = plan_levels(100, 100, max_dim=101, levels=3, steps=1, min_side=16)
    assert [lv.width for lv in plan.levels] == [25, 51, 101]


def test_one_level_is_the_plain_single_size_job():
    assert plan_levels(451, 300, max_dim=64, levels=1, steps=7) == Plan(
        levels=(Level(64, 43, 7),), total_steps=7, peak_memory_bytes=estimate_memory_bytes(64, 43)
    )


def test_levels_that_would_be_too_small_are_dropped_so_a_small_image_runs_fewer():
    plan = plan_levels(64, 64, max_dim=64, levels=3, steps=10)
    assert [lv.width for lv in plan.levels] == [32, 64]  # 16 px would be under MIN_LEVEL_SIDE
    assert plan_levels(40, 30, max_dim=40, levels=2, steps=10).levels == (Level(40, 30, 10),)
    assert MIN_LEVEL_SIDE == 32


def test_coarser_levels_run_coarse_step_factor_times_the_next_levels_steps():
    plan = plan_levels(512, 512, max_dim=512, levels=3, steps=20, coarse_step_factor=2.5)
    assert [lv.steps for lv in plan.levels] == [125, 50, 20]
    assert plan.total_steps == 195


def test_lbfgs_history_is_in_the_plan_and_shrinks_where_it_would_pass_its_budget():
    small = plan_levels(256, 256, max_dim=256, levels=1, steps=5, history=10)
    large = plan_levels(2048, 2048, max_dim=2048, levels=1, steps=5, history=10)
    assert small.levels[0].history == 10 and large.levels[0].history == 2
    history_bytes = 2 * 10 * 3 * 256 * 256 * 4
    assert small.peak_memory_bytes == estimate_memory_bytes(256, 256) + history_bytes
    assert Plan.from_dict(small.to_dict()) == small


def test_min_side_may_be_lowered_to_vggs_hard_floor_for_tiny_test_images():
    plan = plan_levels(64, 64, max_dim=64, levels=3, steps=10, min_side=16)
    assert [lv.width for lv in plan.levels] == [16, 32, 64]


def test_a_single_level_needs_only_vggs_hard_floor():
    plan = plan_levels(40, 30, max_dim=32, levels=1, steps=3)
    assert plan.levels == (Level(32, 24, 3),)


def test_finest_level_below_vggs_hard_floor_is_refused_naming_max_dim():
    with pytest.raises(InvalidInput, match="at least 16 px") as caught:
        plan_levels(1000, 100, max_dim=100, levels=1, steps=10)
    assert caught.value.field == "max_dim"


@pytest.mark.parametrize(("levels", "steps", "field"), [(0, 10, "levels"), (2, 0, "steps")])
def test_non_positive_levels_or_steps_are_refused(levels, steps, field):
    with pytest.raises(InvalidInput) as caught:
        plan_levels(512, 512, max_dim=512, levels=levels, steps=steps)
    assert caught.value.field == field


def test_memory_estimate_has_the_weights_as_floor_and_grows_with_pixels():
    weights = 4 * 20_024_384
    small, medium, large = (estimate_memory_bytes(s, s) for s in (16, 256, 512))
    assert weights < small < weights + 5 * MIB
    # Activations dominate at large sizes, so doubling the side about quadruples the size-dependent part.
    assert 3.9 < (large - weights) / (medium - weights) < 4.1


def test_memory_estimate_at_256_px_is_of_the_right_order():
    # Measured on CPU (TF 2.x, random weights, 3 Adam steps): the process's peak RSS grew by 138 MiB at
    # 256 px and 694 MiB at 512 px over a warmed-up model; the estimate is an upper bound of that order.
    estimate = estimate_memory_bytes(256, 256)
    print(f"256 px estimate: {estimate / MIB:.0f} MiB")
    assert 50 * MIB < estimate < 2 * 2**30


def test_memory_estimate_rejects_empty_sizes():
    with pytest.raises(ValueError):
        estimate_memory_bytes(0, 10)


def test_plan_round_trips_through_its_json_form():
    plan = plan_levels(451, 300, max_dim=256, levels=2, steps=4)
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["levels"][0] == {"width": 128, "height": 85, "steps": 4, "history": 0}
    assert Plan.from_dict(data) == plan


def test_steps_over_all_levels_are_capped_naming_the_coarse_step_factor():
    with pytest.raises(InvalidInput, match="add up to") as caught:
        plan_levels(2048, 2048, max_dim=2048, levels=5, steps=20_000, coarse_step_factor=8)
    assert caught.value.field == "coarse_step_factor"
    assert plan_levels(2048, 2048, max_dim=2048, levels=5, steps=20_000).total_steps == 100_000
