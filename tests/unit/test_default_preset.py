"""The preset a job gets when it names none (`quality`), run as the worker runs it, on real images and on
every weights mode: hed, random and a .h5 file. It must lower its objective and keep the content."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from shared.images import decode_image
from shared.params import StyleParams
from shared.plan import plan_levels
from worker.engine.color import recolor_to_palette
from worker.engine.optimize import Targets, content_targets, optimize, style_targets
from worker.engine.pipeline import resize, stylize_job
from worker.engine.vgg import FeatureExtractor, load_vgg19
from worker.job_options import adam_config, lbfgs_config, loss_config, stylize_options

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SIZE = 64


def example(name: str) -> np.ndarray:
    return decode_image((EXAMPLES / name).read_bytes(), max_dim=SIZE)


def h5_of_hed(path: Path) -> str:
    """The hed weights written as a VGG19 no-top .h5 file: the third way a worker loads weights."""
    with warnings.catch_warnings():
        # Keras' own HDF5 writer trips numpy 2's __array__(copy=) deprecation; not ours to fix.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        load_vgg19("hed", seed=0).save_weights(str(path))
    return str(path)


def blurred_luminance(image: np.ndarray) -> np.ndarray:
    grey = tf.image.rgb_to_grayscale(image[None])
    return tf.image.resize(grey, (SIZE // 8, SIZE // 8), method="area", antialias=True).numpy().ravel()


def layout_correlation(image: np.ndarray, content: np.ndarray) -> float:
    """Correlation of the coarse light/dark layout: 1 is the content's own, ~0 an unrelated image."""
    return float(np.corrcoef(blurred_luminance(image), blurred_luminance(content))[0, 1])


def objective_at_output(extractor, params, content, style, image) -> float:
    """The job's own objective at the output size, for ``image``."""
    targets = Targets(style_targets(extractor, [style], [1.0]), content_targets(extractor, content))
    config, adam, lbfgs = loss_config(params), adam_config(params), lbfgs_config(params)
    result = optimize(extractor, targets, image, steps=0, loss_config=config, adam=adam, lbfgs=lbfgs)
    return result.final_losses["total"]


@pytest.mark.parametrize("mode", ["hed", "random", "h5"])
def test_the_default_lowers_its_objective_and_keeps_the_cats_layout(mode, tmp_path):
    extractor = FeatureExtractor(weights=h5_of_hed(tmp_path / "hed.weights.h5") if mode == "h5" else mode)
    content, style = example("content/chelsea.png"), example("style/hubble_deep_field.jpg")
    params = StyleParams.from_mapping({"max_dim": SIZE})
    height, width = content.shape[:2]
    plan = plan_levels(
        width, height, max_dim=SIZE, levels=params.levels, steps=params.steps,
        coarse_step_factor=params.coarse_step_factor, history=params.lbfgs_history, min_side=16,
    )  # fmt: skip
    assert len(plan.levels) == 2
    options = stylize_options(params, plan, style_count=1, progress_every=10)
    result = stylize_job(extractor, content, [style], options=options)
    # preserve_color style: the job starts from, and matches, the content in the style's colours
    assert params.preserve_color == "style"
    start = recolor_to_palette(content, [style], (1.0,))
    before = objective_at_output(extractor, params, start, style, start)
    after = objective_at_output(extractor, params, start, style, result.image)
    kept = layout_correlation(result.image, content)
    unrelated = layout_correlation(resize(style, content.shape[:2]), content)
    print(f"{mode}: objective {before:.4f} -> {after:.4f}, layout {kept:.3f} (the style's: {unrelated:.3f})")
    # Measured here (2026-12-02, preserve_color style): see the print; layout hed 0.81, random 0.86.
    # The start is already in the style's colours, so the fall is smaller than from the plain content
    # (random: 0.070 -> 0.057, 0.82x); 0.95 still needs a real fall, far above what rounding moves.
    assert after < 0.95 * before
    assert np.abs(result.image - content).mean() > 0.03  # the style did change it
    assert kept > 0.5 and kept > unrelated + 0.3
