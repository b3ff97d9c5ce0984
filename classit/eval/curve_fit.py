"""The one sigmoid fit of classit: a 4-parameter logistic curve and the point where it crosses a level. Word age of
acquisition (:mod:`classit.eval.aoa`, as the BabyLM pipeline fits it) and the acquisition points of
:mod:`classit.dynamics.acquisition` both use it."""

import warnings

import numpy as np
from scipy.optimize import curve_fit


def sigmoid(x, a, b, c, d):
    """``a / (1 + exp(-b (x - c))) + d``: from ``d`` to ``a + d``, steepness ``b``, midpoint ``c``."""
    return a / (1 + np.exp(-b * (x - c))) + d


def sigmoid_jacobian(x, a, b, c, d):
    """The derivatives of :func:`sigmoid` by (a, b, c, d) at each x (``curve_fit``'s ``jac``: fewer evaluations
    than finite differences)."""
    s = 1 / (1 + np.exp(-b * (x - c)))
    slope = a * s * (1 - s)
    return np.stack([s, slope * (x - c), -slope * b, np.ones_like(s)], axis=-1)


def fit_sigmoid(x: np.ndarray, y: np.ndarray, **kwargs) -> np.ndarray | None:
    """Least-squares sigmoid parameters (a, b, c, d) through the points (``scipy.optimize.curve_fit``, at most
    ``maxfev`` = 1000 evaluations unless ``kwargs`` say otherwise; ``kwargs`` such as ``p0`` or ``bounds`` go to it),
    or None where the fit fails in any way (as the official AoA code, which catches everything)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return curve_fit(sigmoid, x, y, **{"maxfev": 1000, **kwargs})[0]
    except Exception:  # as the official code: a fit that fails in any way gives no value
        return None


def crossing(params, level: float) -> float | None:
    """The x at which a rising sigmoid (a > 0, b > 0) reaches ``level``; None when it is not rising or never
    reaches the level (the official AoA comparisons: a NaN parameter passes them)."""
    a, b, c, d = params
    if b <= 0 or a <= 0 or level <= d or level >= a + d:
        return None
    return c - np.log(a / (level - d) - 1) / b
