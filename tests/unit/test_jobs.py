"""StyleParams validation names the field; presets fill defaults; records round-trip through Redis hashes."""

import pytest

from shared.errors import InvalidInput
from shared.jobs import JobRecord, JobStatus
from shared.params import PRESETS, StyleParams

pytestmark = pytest.mark.unit


def test_the_default_preset_is_quality_lbfgs_coarse_to_fine_with_a_feed_forward_preview():
    params = StyleParams.from_mapping({})
    assert params.preset == "quality"
    assert (params.optimizer, params.init, params.content_layer) == ("lbfgs", "content", "block4_conv2")
    assert params.levels > 1 and params.coarse_step_factor > 1 and params.preview


def test_seed_preset_uses_the_tutorial_numbers_where_the_seed_gives_none():
    params = StyleParams.from_mapping({"preset": "seed"})
    assert params.preset == "seed"
    assert (params.optimizer, params.content_layer, params.levels) == ("adam", "block5_conv2", 1)
    assert (params.style_weight, params.content_weight, params.tv_weight) == (1e-2, 1e4, 0.0)
    assert (params.learning_rate, params.beta_1, params.epsilon) == (0.02, 0.99, 0.1)
    assert (params.steps, params.max_dim) == (1000, 512)


def test_tutorial_preset_adds_total_variation():
    assert StyleParams.from_mapping({"preset": "tutorial"}).tv_weight == 30.0


def test_form_strings_are_coerced_and_override_the_preset():
    params = StyleParams.from_mapping({"steps": "25", "style_weight": "1.5", "preset": "tutorial"})
    assert (params.steps, params.style_weight, params.tv_weight) == (25, 1.5, 30.0)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"steps": -5}, "steps"),
        ({"steps": "2.5"}, "steps"),
        ({"steps": True}, "steps"),
        ({"style_weight": "abc"}, "style_weight"),
        ({"content_weight": float("nan")}, "content_weight"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"beta_1": 1.0}, "beta_1"),
        ({"preset": "fancy"}, "preset"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_params_are_refused_naming_the_field(data, field):
    with pytest.raises(InvalidInput) as caught:
        StyleParams.from_mapping(data)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_max_dim_is_capped_by_the_deployment_limit():
    with pytest.raises(InvalidInput, match="max_dim"):
        StyleParams.from_mapping({"max_dim": 1024}, max_dim_limit=512)


def test_every_preset_value_is_a_validated_param():
    for preset, values in PRESETS.items():
        assert StyleParams.from_mapping({"preset": preset, **values}).to_dict() == {
            "preset": preset,
            **values,
        }


def test_job_record_round_trips_through_a_redis_hash():
    record = JobRecord(
        id="j1",
        status=JobStatus.RUNNING,
        params=StyleParams.from_mapping({"steps": 3}),
        content_key="inputs/a.png",
        style_keys=("inputs/b.png",),
        created_at=1.5,
        started_at=2.0,
        losses={"total": 1.0},
        step=2,
        total_steps=3,
    )
    assert JobRecord.from_hash(record.to_hash()) == record


def test_terminal_statuses():
    assert [s.value for s in JobStatus if s.is_terminal] == ["succeeded", "failed", "canceled"]
