"""STYLEFORGE_PRECISION: `auto` (the default) probes float32 and bfloat16 at worker start and keeps the faster
only if its loss stays within 2 % of float32's; explicit precisions apply on a CPU too; jobs record it.

No test asserts on speed: the selection rule runs on injected timings and losses, and the real probe is only
checked to measure something and choose a valid precision.
"""

import io
import math

import numpy as np
import pytest

from api import create_app
from api.services import Services
from shared.config import Settings
from shared.errors import ConfigError
from tests.fakes import FakeJobStore, FakeObjectStore, RecordingQueue
from tests.fixtures.badimages import noise_png
from worker import bootstrap, precision
from worker.engine.steps import compiled_steps
from worker.precision import GIVE_UP_FACTOR, PrecisionChoice, ProbeRun, choose_precision, decide, probe

pytestmark = pytest.mark.unit


def runs(float32=(300.0, 1.0), **others) -> dict[str, ProbeRun]:
    """ProbeRuns from (ms per step, final loss) pairs, float32's first."""
    return {name: ProbeRun(*pair) for name, pair in {"float32": float32, **others}.items()}


# The selection rule, on injected measurements.


def test_a_faster_precision_within_tolerance_is_chosen() -> None:
    choice = decide(runs(bfloat16=(100.0, 1.015)), tolerance=0.02)
    assert choice.chosen == "bfloat16"
    assert choice.timings == {"float32": 300.0, "bfloat16": 100.0}
    assert choice.losses == {"float32": 1.0, "bfloat16": 1.015}
    assert "3.0x faster" in choice.reason


def test_a_faster_precision_off_by_more_than_tolerance_loses() -> None:
    choice = decide(runs(bfloat16=(100.0, 0.97)), tolerance=0.02)
    assert choice.chosen == "float32"
    assert "bfloat16 is faster but its loss is off by 3.0%" in choice.reason


def test_a_slower_precision_loses_even_with_the_same_loss() -> None:
    choice = decide(runs(bfloat16=(900.0, 1.0)), tolerance=0.02)
    assert choice.chosen == "float32" and choice.reason.startswith("float32 is the fastest")


def test_the_fastest_of_the_eligible_wins_and_a_non_finite_loss_is_never_eligible() -> None:
    measured = runs(bfloat16=(150.0, 1.01), float16=(80.0, math.nan))
    assert decide(measured, tolerance=0.02).chosen == "bfloat16"
    measured = runs(bfloat16=(150.0, 1.01), float16=(80.0, 1.001))
    assert decide(measured, tolerance=0.02).chosen == "float16"


def test_the_log_line_names_every_timing_the_loss_gap_and_the_choice() -> None:
    lines = []
    measured = runs(float32=(412.0, 2.0), bfloat16=(1290.0, 2.0026))
    choose_precision(
        lambda name: name, measure=lambda extractor, give_up: measured[extractor], log=lines.append
    )
    (line,) = lines
    assert line.startswith(
        "precision auto: float32 412 ms/step, bfloat16 1290 ms/step (loss +0.13%) -> float32"
    )


def test_float32_is_probed_first_and_a_slow_candidate_is_told_when_to_give_up() -> None:
    calls = []

    def measure(extractor, give_up_ms):
        calls.append((extractor, give_up_ms))
        return (
            ProbeRun(200.0, 1.0) if extractor == "float32" else ProbeRun(900.0, math.nan, stopped_early=True)
        )

    choice = choose_precision(lambda name: name, candidates=("bfloat16", "float32"), measure=measure)
    assert calls == [("float32", math.inf), ("bfloat16", GIVE_UP_FACTOR * 200.0)]
    assert choice.chosen == "float32" and choice.stopped_early == ("bfloat16",)
    assert "bfloat16 900 ms/step (loss not measured)" in choice.summary()


def test_a_candidate_that_fails_is_skipped_and_a_float32_failure_propagates() -> None:
    def measure(extractor, give_up_ms):
        if extractor != "float32":
            raise RuntimeError("no bfloat16 kernels")
        return ProbeRun(200.0, 1.0)

    choice = choose_precision(lambda name: name, measure=measure)
    assert (
        choice.chosen == "float32" and "bfloat16 failed (RuntimeError: no bfloat16 kernels)" in choice.reason
    )

    def broken(extractor, give_up_ms):
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError, match="broken"):
        choose_precision(lambda name: name, measure=broken)


# The real probe, with random weights at a tiny size (fast; timings are measured, never asserted).


def test_the_real_probe_measures_both_precisions_and_chooses_one(extractor) -> None:
    choice = choose_precision(extractor.with_precision, size=32, steps=1)
    assert choice.chosen in ("float32", "bfloat16")
    assert set(choice.timings) == {"float32", "bfloat16"} and all(ms > 0 for ms in choice.timings.values())
    assert math.isfinite(choice.losses["float32"]) and choice.probe_s > 0
    if "bfloat16" not in choice.stopped_early:
        assert abs(choice.losses["bfloat16"] - choice.losses["float32"]) <= 0.02 * choice.losses["float32"]


def test_a_probe_slower_than_its_give_up_time_stops_after_one_timed_step(extractor) -> None:
    run = probe(extractor.with_precision("float32"), size=32, steps=3, give_up_ms=0.0)
    assert run.stopped_early and math.isnan(run.loss) and run.ms_per_step > 0


def test_the_probe_job_is_the_repos_example_images() -> None:
    content, style = precision.probe_images(64)
    assert content.shape == style.shape == (64, 64, 3) and content.dtype == np.float32
    assert precision.PROBE_CONTENT.name == "chelsea.png" and 0.0 <= content.min() < content.max() <= 1.0


# The extractor in another precision.


def test_with_precision_shares_the_model_and_notes_the_precision(extractor) -> None:
    bf16 = extractor.with_precision("bfloat16")
    assert bf16.precision == "bfloat16" and bf16._model is extractor._model
    assert bf16.note == extractor.note + "; computed in bfloat16"
    assert "computed in" not in extractor.note
    assert compiled_steps(bf16) is not compiled_steps(extractor)
    images = np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)
    full, reduced = extractor(images)[0][0].numpy(), bf16(images)[0][0].numpy()
    assert np.abs(reduced - full).max() <= 0.02 * np.abs(full).max()


# The worker's bootstrap and the settings.


def test_explicit_precisions_apply_on_a_cpu_too(extractor) -> None:
    assert bootstrap.in_precision(extractor, "float32", gpu=False) is extractor
    assert bootstrap.in_precision(extractor, "bfloat16", gpu=False).precision == "bfloat16"


def test_auto_builds_the_extractor_in_the_probed_precision(extractor, monkeypatch) -> None:
    probed = []

    def fake_choose(make_extractor, *, log):
        probed.append(make_extractor("bfloat16").precision)
        return PrecisionChoice("bfloat16", {}, {}, "injected")

    monkeypatch.setattr(precision, "choose_precision", fake_choose)
    extractor = bootstrap.in_precision(extractor, "auto", gpu=False)
    assert probed == ["bfloat16"] and extractor.precision == "bfloat16"
    assert "computed in bfloat16" in extractor.note


def test_auto_is_the_default_and_every_precision_is_accepted() -> None:
    assert Settings().precision == "auto"
    for name in ("auto", "float32", "bfloat16", "float16"):
        assert Settings.from_env({"STYLEFORGE_PRECISION": name}).precision == name
    with pytest.raises(ConfigError, match="STYLEFORGE_PRECISION"):
        Settings.from_env({"STYLEFORGE_PRECISION": "fp8"})


# What a job records.


def test_the_job_json_reports_the_precision_it_ran_in() -> None:
    services = Services(
        settings=Settings(auth="open"),
        store=FakeJobStore(),
        objects=FakeObjectStore(),
        queue=RecordingQueue(),
    )
    client = create_app(services=services).test_client()
    data = {"content": (io.BytesIO(noise_png(40, 30, seed=1)), "c.png")}
    data["style"] = (io.BytesIO(noise_png(32, 32, seed=2)), "s.png")
    job_id = client.post("/v1/jobs", data=data, content_type="multipart/form-data").get_json()["id"]
    assert client.get(f"/v1/jobs/{job_id}").get_json()["weights"]["precision"] is None
    services.lifecycle.start(
        job_id,
        weights="random",
        weights_note="n; computed in bfloat16",
        precision="bfloat16",
    )
    weights = client.get(f"/v1/jobs/{job_id}").get_json()["weights"]
    assert weights == {"mode": "random", "note": "n; computed in bfloat16", "precision": "bfloat16"}
