"""Properties of StyleParams validation, over generated inputs: what is in range validates and round-trips,
what is not raises InvalidInput naming the field, and nothing else is ever raised.

The ranges are written out here as the README documents them (with the deployment defaults max_dim 16-2048),
not read from shared.params, so a drifted bound fails these tests.
"""

import math
from dataclasses import dataclass, fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import InvalidInput
from shared.params import DEFAULT_PRESET, PRESETS, StyleParams

pytestmark = pytest.mark.unit

PROPERTY = settings(deadline=None, max_examples=200)


@dataclass(frozen=True)
class Range:
    """A numeric option's kind and bounds, open or closed at each end."""

    kind: type
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def admits(self, value: float) -> bool:
        """True when value is inside the bounds (NaN never is)."""
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


NUMBERS = {
    "steps": Range(int, 1, 20_000),
    "max_dim": Range(int, 16, 2048),
    "style_weight": Range(float, 0, 1e12),
    "content_weight": Range(float, 0, 1e12),
    "tv_weight": Range(float, 0, 1e12),
    "learning_rate": Range(float, 0, 10, low_open=True),
    "beta_1": Range(float, 0, 1, high_open=True),
    "beta_2": Range(float, 0, 1, high_open=True),
    "epsilon": Range(float, 0, 10, low_open=True),
    "seed": Range(int, 0, 2**31 - 1),
    "style_scale": Range(float, 0.05, 4),
    "levels": Range(int, 1, 5),
    "quality": Range(int, 1, 100),
    "save_every": Range(int, 0, 20_000),
    "lbfgs_history": Range(int, 1, 50),
    "line_search_evaluations": Range(int, 1, 20),
    "coarse_step_factor": Range(float, 1, 8),
}
CHOICES = {
    "preset": sorted(PRESETS),
    "init": ["content", "noise", "style", "feedforward"],
    "preserve_color": ["none", "luminance", "histogram", "style"],
    "output_format": ["png", "jpeg", "webp"],
    "optimizer": ["adam", "lbfgs", "none"],
    "content_layer": ["block4_conv2", "block5_conv2"],
}
FLAGS = ("normalize_losses", "tileable", "preview")
KNOWN = {*NUMBERS, *CHOICES, *FLAGS, "style_blend_weights"}


def in_range(bounds: Range) -> st.SearchStrategy:
    """Values the option accepts."""
    if bounds.kind is int:
        return st.integers(int(bounds.low), int(bounds.high))
    return st.floats(bounds.low, bounds.high, exclude_min=bounds.low_open, exclude_max=bounds.high_open)


def out_of_range(bounds: Range) -> st.SearchStrategy:
    """Values the option refuses: outside the bounds (the edges included), non-finite, or fractional ints."""
    edges = [
        bounds.low,
        bounds.high,
        math.nextafter(bounds.low, -math.inf),
        math.nextafter(bounds.high, math.inf),
    ]
    outside = st.one_of(
        st.sampled_from([edge for edge in edges if not bounds.admits(edge)]),
        st.integers().filter(lambda value: not bounds.admits(value)),
        st.floats().filter(lambda value: not bounds.admits(value)),
    )
    if bounds.kind is int:
        fractional = st.floats(bounds.low, bounds.high).filter(lambda value: not value.is_integer())
        outside = st.one_of(outside, fractional)
    return outside.flatmap(lambda value: st.sampled_from([value, str(value)]))


BLEND_WEIGHTS = st.lists(st.floats(0, 1e6), min_size=1, max_size=8).filter(lambda weights: sum(weights) > 0)
VALID_VALUES = {
    **{name: in_range(bounds) for name, bounds in NUMBERS.items()},
    **{name: st.sampled_from(options) for name, options in CHOICES.items()},
    **{name: st.booleans() for name in FLAGS},
    "style_blend_weights": st.none() | BLEND_WEIGHTS,
}


def fast_mode_conflict(data: dict) -> bool:
    """optimizer none returns the feed-forward image as is: no seams to wrap, no colour to keep."""
    return data.get("optimizer") == "none" and (
        bool(data.get("tileable")) or data.get("preserve_color", "none") != "none"
    )


VALID = st.fixed_dictionaries({}, optional=VALID_VALUES).filter(lambda data: not fast_mode_conflict(data))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
JSON_MAPPINGS = st.dictionaries(
    st.sampled_from(sorted(KNOWN)) | st.text(max_size=12), JSON_VALUES, max_size=6
)


def as_form_field(value: object) -> str:
    """The text a multipart form field carries for a JSON value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(repr(item) for item in value)
    return repr(value) if isinstance(value, float) else str(value)


def expected(value: object) -> object:
    """The value as StyleParams holds it."""
    return tuple(value) if isinstance(value, list) else value


def test_the_tables_here_cover_every_option_of_style_params():
    assert KNOWN == {option.name for option in fields(StyleParams)}


# Built, not filtered: a random dictionary has optimizer none too rarely for Hypothesis's health check.
FAST_MODE_CONFLICTS = st.tuples(
    st.fixed_dictionaries(
        {},
        optional={
            name: value
            for name, value in VALID_VALUES.items()
            if name not in ("optimizer", "tileable", "preserve_color")
        },
    ),
    st.sampled_from(
        [("tileable", True), *(("preserve_color", mode) for mode in ("luminance", "histogram", "style"))]
    ),
).map(lambda pair: {**pair[0], "optimizer": "none", pair[1][0]: pair[1][1]})


@PROPERTY
@given(FAST_MODE_CONFLICTS)
def test_the_fast_mode_refuses_tileable_and_preserve_color_naming_the_field(data):
    assert fast_mode_conflict(data)
    with pytest.raises(InvalidInput) as raised:
        StyleParams.from_mapping(data)
    assert raised.value.field == ("tileable" if data.get("tileable") else "preserve_color")


@PROPERTY
@given(VALID)
def test_in_range_values_validate_keep_their_values_and_round_trip_through_json(data):
    params = StyleParams.from_mapping(data)
    assert {name: getattr(params, name) for name in data} == {name: expected(v) for name, v in data.items()}
    assert StyleParams.from_json(params.to_json()) == params


@PROPERTY
@given(VALID)
def test_form_field_text_validates_to_the_same_params_as_json_values(data):
    form = {name: as_form_field(value) for name, value in data.items() if value is not None}
    json_values = {name: value for name, value in data.items() if value is not None}
    assert StyleParams.from_mapping(form) == StyleParams.from_mapping(json_values)


@PROPERTY
@given(
    VALID,
    st.sampled_from(sorted(NUMBERS)).flatmap(
        lambda name: st.tuples(st.just(name), out_of_range(NUMBERS[name]))
    ),
)
def test_an_out_of_range_number_raises_invalid_input_naming_it(data, bad):
    name, value = bad
    with pytest.raises(InvalidInput) as raised:
        StyleParams.from_mapping({**data, name: value})
    assert raised.value.field == name


@PROPERTY
@given(VALID, st.text(min_size=1, max_size=30).filter(lambda name: name not in KNOWN))
def test_an_unknown_name_raises_invalid_input_naming_it(data, name):
    with pytest.raises(InvalidInput) as raised:
        StyleParams.from_mapping({**data, name: "1"})
    assert raised.value.field == name


@PROPERTY
@given(JSON_MAPPINGS)
def test_arbitrary_json_either_validates_or_raises_invalid_input_naming_a_given_field(data):
    try:
        params = StyleParams.from_mapping(data)
    except InvalidInput as err:
        assert err.field in data
        assert err.message
    else:
        assert StyleParams.from_json(params.to_json()) == params


def test_the_default_presets_style_colours_give_way_to_none_in_the_fast_mode_unless_named():
    assert PRESETS[DEFAULT_PRESET]["preserve_color"] == "style"
    assert StyleParams.from_mapping({}).preserve_color == "style"
    assert StyleParams.from_mapping({"optimizer": "none"}).preserve_color == "none"
    with pytest.raises(InvalidInput) as raised:
        StyleParams.from_mapping({"optimizer": "none", "preserve_color": "style"})
    assert raised.value.field == "preserve_color"
