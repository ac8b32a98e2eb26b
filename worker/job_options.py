"""Translate a job's StyleParams and Plan into the engine's own option types."""

from shared.params import StyleParams
from shared.plan import Plan
from worker.engine.lbfgs import LbfgsConfig
from worker.engine.losses import LossConfig
from worker.engine.optimize import AdamConfig
from worker.engine.pipeline import StylizeOptions

# Presets that share another's loss formulas: `quality` is the balanced objective, with its own weights.
_FORMULA_OF = {"quality": "balanced"}


def loss_config(params: StyleParams) -> LossConfig:
    """The preset picks the formulas; params give the weights, normalisation, content layer and seams."""
    return LossConfig.for_formula(
        _FORMULA_OF.get(params.preset, params.preset),
        style_weight=params.style_weight,
        content_weight=params.content_weight,
        tv_weight=params.tv_weight,
        normalize=params.normalize_losses,
        wrap_tv=params.tileable,
        content_layer=params.content_layer,
    )


def adam_config(params: StyleParams) -> AdamConfig:
    """The engine's Adam settings for a job."""
    return AdamConfig(
        learning_rate=params.learning_rate, beta_1=params.beta_1, beta_2=params.beta_2, epsilon=params.epsilon
    )


def lbfgs_config(params: StyleParams) -> LbfgsConfig | None:
    """The engine's L-BFGS settings for a job, or None when it runs Adam (or no optimiser)."""
    if params.optimizer != "lbfgs":
        return None
    return LbfgsConfig(history=params.lbfgs_history, max_evaluations=params.line_search_evaluations)


def stylize_options(
    params: StyleParams, plan: Plan, *, style_count: int, progress_every: int
) -> StylizeOptions:
    """Everything the engine needs for one job (``optimizer: none`` is its feed-forward start, 0 steps)."""
    lbfgs = lbfgs_config(params)
    return StylizeOptions(
        levels=tuple((level.height, level.width) for level in plan.levels),
        steps=tuple(level.steps for level in plan.levels),
        loss=loss_config(params),
        adam=adam_config(params),
        init="feedforward" if params.optimizer == "none" else params.init,
        seed=params.seed,
        blend_weights=params.blend_weights(style_count),
        style_scale=params.style_scale,
        preserve_color=params.preserve_color,
        tileable=params.tileable,
        progress_every=progress_every,
        lbfgs=lbfgs,
        # A plan built without history (0: no budget applied) gets the job's own setting.
        histories=tuple(level.history or lbfgs.history for level in plan.levels) if lbfgs else (),
    )
