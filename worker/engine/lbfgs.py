"""L-BFGS on the image pixels, per job, written out in TensorFlow so it runs inside a compiled step.

Gatys et al. and neural-style optimise with L-BFGS. This is the limited-memory two-loop recursion (Nocedal
and Wright, algorithm 7.4) with a backtracking Armijo line search, batched: every tensor carries the jobs of
one group along its first axis, and each job keeps its own history, step and evaluation count.

The [0, 1] bounds are handled by projection, not by a reparameterisation:
- the image stays the optimisation variable, exactly as for Adam, so snapshots, checkpoints, coarse-to-fine
  upsampling and job groups treat both optimisers alike;
- a sigmoid-style reparameterisation has no finite preimage for pixels at exactly 0 or 1, which a content
  init has plenty of, and its gradient vanishes near the bounds, so saturated pixels would stop moving;
- the direction is computed from the projected gradient (components that push a pixel already at a bound
  further out are zeroed, as L-BFGS-B's active set does), each trial point is clipped to [0, 1], and the
  Armijo test uses the actual (clipped) move. A curvature pair is kept only where s.y > 0, so the implicit
  inverse Hessian stays positive definite.

State per job: image, loss, gradient, history of moves S and gradient changes Y (``history`` each, newest
last), the number of valid pairs, and the loss evaluations spent so far.
"""

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

# Sufficient-decrease constant of the Armijo test (the textbook value).
ARMIJO_C1 = 1e-4
# A pair is kept only if s.y > CURVATURE_EPS * y.y: near-zero curvature would blow the direction up.
CURVATURE_EPS = 1e-10
_PIXEL_AXES = [1, 2, 3]


@dataclass(frozen=True)
class LbfgsConfig:
    """L-BFGS settings of one job.

    ``history`` is m, the curvature pairs kept (memory 2 * m * pixels * 3 floats); ``max_evaluations`` caps
    the loss evaluations of one iteration's line search; ``initial_step`` is the largest pixel change of a
    steepest-descent step (the first iteration, and after a reset), in [0, 1] units.
    """

    history: int = 10
    max_evaluations: int = 4
    initial_step: float = 0.05


def dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Per-image inner product of (b, h, w, 3) tensors: shape (b,)."""
    return tf.reduce_sum(a * b, axis=_PIXEL_AXES)


def _per_image(x: tf.Tensor) -> tf.Tensor:
    return tf.reshape(x, (-1, 1, 1, 1))


def projected_gradient(image: tf.Tensor, gradient: tf.Tensor) -> tf.Tensor:
    """The gradient with the components that push a pixel out of [0, 1] (it sits at that bound) zeroed."""
    blocked = ((image <= 0.0) & (gradient > 0.0)) | ((image >= 1.0) & (gradient < 0.0))
    return tf.where(blocked, tf.zeros_like(gradient), gradient)


def two_loop(gradient: tf.Tensor, s_hist: tf.Tensor, y_hist: tf.Tensor, pairs: tf.Tensor) -> tf.Tensor:
    """The L-BFGS direction H·g per image; ``pairs`` (b,) of the m history slots (newest last) are valid."""
    size = s_hist.shape[1]
    valid = [pairs >= float(size - index) for index in range(size)]
    s_list, y_list = tf.unstack(s_hist, size, axis=1), tf.unstack(y_hist, size, axis=1)
    rho = [tf.math.divide_no_nan(1.0, dot(s, y)) for s, y in zip(s_list, y_list, strict=True)]
    q, alphas = gradient, [None] * size
    for index in reversed(range(size)):
        alphas[index] = tf.where(valid[index], rho[index] * dot(s_list[index], q), 0.0)
        q = q - _per_image(alphas[index]) * y_list[index]
    newest_s, newest_y = s_list[-1], y_list[-1]
    gamma = tf.where(pairs > 0, tf.math.divide_no_nan(dot(newest_s, newest_y), dot(newest_y, newest_y)), 1.0)
    r = _per_image(gamma) * q
    for index in range(size):
        beta = tf.where(valid[index], rho[index] * dot(y_list[index], r), 0.0)
        r = r + _per_image(alphas[index] - beta) * s_list[index]
    return r


def search_direction(state: tuple, initial_step: tf.Tensor) -> tf.Tensor:
    """The descent direction of each job: L-BFGS's, or scaled steepest descent without usable history."""
    image, _, gradient, s_hist, y_hist, pairs, _ = state
    projected = projected_gradient(image, gradient)
    direction = -two_loop(projected, s_hist, y_hist, pairs)
    largest = tf.reduce_max(tf.abs(projected), axis=_PIXEL_AXES)
    steepest = -projected * _per_image(tf.math.divide_no_nan(initial_step, largest))
    usable = (pairs > 0) & (dot(direction, projected) < 0.0)
    return _take(usable, direction, steepest)


def lbfgs_update(
    state: tuple,
    active: tf.Tensor,
    hyper: tf.Tensor,
    value_and_gradient: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]],
) -> tuple:
    """One L-BFGS iteration of every active job: direction, line search, history update.

    ``state`` is (image, loss, gradient, S, Y, pairs, evaluations); ``hyper`` is (2, batch): the most loss
    evaluations of this line search and the steepest-descent step. ``value_and_gradient(images)`` gives the
    per-image losses and their gradients of the whole batch (one evaluation per call).
    """
    image, loss, gradient, s_hist, y_hist, pairs, evaluations = state
    max_evaluations, initial_step = tf.unstack(hyper)
    direction = search_direction(state, initial_step)
    found = _line_search(image, loss, gradient, direction, active, max_evaluations, value_and_gradient)
    new_image, new_loss, new_gradient, accepted, spent = found
    s_hist, y_hist, pairs = _remember(
        (s_hist, y_hist, pairs), new_image - image, new_gradient - gradient, accepted
    )
    # A job whose search found no decrease keeps its point and starts over from steepest descent.
    pairs = tf.where(accepted | (active <= 0), pairs, 0.0)
    return (new_image, new_loss, new_gradient, s_hist, y_hist, pairs, evaluations + spent)


def _line_search(image, loss, gradient, direction, active, max_evaluations, value_and_gradient):
    """Backtracking from a full step, halving, until Armijo holds or the job's evaluations run out."""
    pending = active > 0
    step = tf.ones_like(loss)
    spent = tf.zeros_like(loss)
    best = (image, loss, gradient)
    accepted = tf.zeros_like(pending)

    def more(step, spent, best, accepted, pending):
        return tf.reduce_any(pending)

    def trial(step, spent, best, accepted, pending):
        candidate = tf.clip_by_value(image + _per_image(step) * direction, 0.0, 1.0)
        value, grad = value_and_gradient(candidate)
        spent = spent + tf.cast(pending, spent.dtype)
        decrease = loss + ARMIJO_C1 * dot(gradient, candidate - image)
        ok = pending & tf.math.is_finite(value) & (value <= decrease)
        best = tuple(_take(ok, new, old) for new, old in zip((candidate, value, grad), best, strict=True))
        accepted = accepted | ok
        pending = pending & ~ok & (spent < max_evaluations)
        return step * 0.5, spent, best, accepted, pending

    _, spent, best, accepted, _ = tf.while_loop(more, trial, (step, spent, best, accepted, pending))
    return (*best, accepted, spent)


def _take(choose: tf.Tensor, new: tf.Tensor, old: tf.Tensor) -> tf.Tensor:
    shape = [-1] + [1] * (len(new.shape) - 1)
    return tf.where(tf.reshape(choose, shape), new, old)


def _remember(history: tuple, move: tf.Tensor, change: tf.Tensor, accepted: tf.Tensor) -> tuple:
    """Append (s, y) as the newest pair where the step was taken and its curvature is positive."""
    s_hist, y_hist, pairs = history
    keep = accepted & (dot(move, change) > CURVATURE_EPS * dot(change, change))
    shifted_s = tf.concat([s_hist[:, 1:], move[:, None]], axis=1)
    shifted_y = tf.concat([y_hist[:, 1:], change[:, None]], axis=1)
    size = float(s_hist.shape[1])
    return (
        _take(keep, shifted_s, s_hist),
        _take(keep, shifted_y, y_hist),
        tf.where(keep, tf.minimum(pairs + 1.0, size), pairs),
    )
