"""Translate a job's StyleParams and Plan into the engine's own option types."""

from shared.params import StyleParams
from shared.plan import Plan
from worker.engine.losses import LossConfig
from worker.engine.optimize import AdamConfig
from worker.engine.pipeline import StylizeOptions


def loss_config(params: StyleParams) -> LossConfig:
    """The preset picks the formulas; params give the weights, normalisation and seam handling."""
    return LossConfig.for_formula(
        params.preset,
        style_weight=params.style_weight,
        content_weight=params.content_weight,
        tv_weight=params.tv_weight,
        normalize=params.normalize_losses,
        wrap_tv=params.tileable,
    )


def adam_config(params: StyleParams) -> AdamConfig:
    """The engine's optimiser settings for a job."""
    return AdamConfig(
        learning_rate=params.learning_rate, beta_1=params.beta_1, beta_2=params.beta_2, epsilon=params.epsilon
    )


def stylize_options(
    params: StyleParams, plan: Plan, *, style_count: int, progress_every: int
) -> StylizeOptions:
    """Everything the engine needs for one job."""
    return StylizeOptions(
        levels=tuple((level.height, level.width) for level in plan.levels),
        steps=params.steps,
        loss=loss_config(params),
        adam=adam_config(params),
        init=params.init,
        seed=params.seed,
        blend_weights=params.blend_weights(style_count),
        style_scale=params.style_scale,
        preserve_color=params.preserve_color,
        tileable=params.tileable,
        progress_every=progress_every,
    )
