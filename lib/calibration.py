"""Calibration of predicted probabilities: reliability bins, expected calibration error, temperature scaling.

A classifier is calibrated when, among the samples it predicts with confidence about ``c``, a
fraction about ``c`` is right. :func:`reliability_bins` sorts the predictions into equal-width
bins of confidence, :func:`expected_calibration_error` averages the gap between accuracy and
confidence over them (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017), and
:func:`fit_temperature` finds the one temperature ``T`` that minimises the negative log
likelihood of ``logits / T`` on held-out data (their temperature scaling).

Defined in the chapter "From logits to predictions and metrics" (``chapters/65_predictions.ipynb``).
"""

import math
from typing import NamedTuple

import torch

from lib import functional

__all__ = ["reliability_bins", "expected_calibration_error", "nll_at_temperature", "fit_temperature"]


class Bins(NamedTuple):
    """Per-bin statistics of :func:`reliability_bins` (each a tensor of ``n_bins`` values)."""

    count: torch.Tensor  # samples in the bin (int64)
    accuracy: torch.Tensor  # fraction right in the bin (0 where empty)
    confidence: torch.Tensor  # mean confidence in the bin (0 where empty)


def reliability_bins(probs, target, n_bins=15):
    r"""Sort predictions into ``n_bins`` equal-width bins of confidence; count, accuracy and confidence per bin.

    The confidence of a sample is its largest probability, its prediction the class of that
    probability (``argmax``, the first on ties). Bin ``m`` (``m = 1 … M``) holds the confidences
    in :math:`((m-1)/M,\ m/M]`; a confidence of exactly 0 goes to the first bin. The interior
    edges are computed as ``k / M`` in the probabilities' dtype.

    Args:
        probs (Tensor): predicted probabilities, :math:`(N, C)`, each row summing to 1.
        target (Tensor): class indices, :math:`(N)`, int64.
        n_bins (int, optional): the number of bins M. Default: 15

    Returns:
        Bins: ``count``, ``accuracy``, ``confidence``, each of shape :math:`(M)`.

    Explained in the chapter "From logits to predictions and metrics" (``chapters/65_predictions.ipynb``).
    """
    if probs.dim() != 2 or target.shape != probs.shape[:1]:
        raise ValueError(f"expected probs (N, C) and target (N), got {list(probs.shape)} and {list(target.shape)}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    confidence, prediction = probs.max(dim=1)
    correct = (prediction == target).to(probs.dtype)
    edges = torch.arange(1, n_bins, dtype=probs.dtype, device=probs.device) / n_bins
    bin_index = (confidence[:, None] > edges).sum(dim=1)  # the number of interior edges below
    count = torch.zeros(n_bins, dtype=torch.int64, device=probs.device).index_add_(
        0, bin_index, torch.ones_like(bin_index))
    sums = torch.zeros(2, n_bins, dtype=probs.dtype, device=probs.device)
    sums[0].index_add_(0, bin_index, correct)
    sums[1].index_add_(0, bin_index, confidence)
    safe = count.clamp_min(1).to(probs.dtype)
    return Bins(count, sums[0] / safe, sums[1] / safe)


def expected_calibration_error(probs, target, n_bins=15):
    r"""Compute the expected calibration error ``Σ_m |B_m|/N · |acc(B_m) - conf(B_m)|``.

    The bins are those of :func:`reliability_bins`: equal width, :math:`((m-1)/M,\ m/M]`.

    Args:
        probs (Tensor): predicted probabilities, :math:`(N, C)` (apply a softmax to logits first).
        target (Tensor): class indices, :math:`(N)`.
        n_bins (int, optional): the number of bins M. Default: 15

    Returns:
        Tensor: a scalar in ``[0, 1]``, the probabilities' dtype.

    Explained in the chapter "From logits to predictions and metrics" (``chapters/65_predictions.ipynb``).
    """
    bins = reliability_bins(probs, target, n_bins)
    share = bins.count.to(probs.dtype) / probs.shape[0]
    return (share * (bins.accuracy - bins.confidence).abs()).sum()


def nll_at_temperature(logits, target, temperature):
    """The mean negative log likelihood ``cross_entropy(logits / T, target)`` (lib's, in the logits' dtype).

    Explained in the chapter "From logits to predictions and metrics" (``chapters/65_predictions.ipynb``).
    """
    return functional.cross_entropy(logits / temperature, target)


def fit_temperature(logits, target, low=1e-2, high=1e2, tol=1e-10):
    r"""Return the temperature ``T`` in ``[low, high]`` that minimises ``cross_entropy(logits / T, target)``.

    A golden-section search over ``log T``: deterministic, no learning rate, no random start.
    The search is valid because the loss, as a function of ``1/T``, is convex (a log-sum-exp of
    linear functions minus a linear one), so it has one minimum along any monotone
    reparametrisation such as ``log T``. The search stops when the bracket of ``log T`` is narrower
    than ``tol``; computed in float64.

    Args:
        logits (Tensor): held-out logits, :math:`(N, C)` (detached).
        target (Tensor): their class indices, :math:`(N)`.
        low, high (float, optional): the bracket of ``T``. Default: 0.01 and 100
        tol (float, optional): the final width of the bracket of ``log T``. Default: 1e-10

    Returns:
        float: the fitted temperature (``low`` or ``high`` itself where the loss keeps falling
        towards that end); divide the logits by it before the softmax.

    Explained in the chapter "From logits to predictions and metrics" (``chapters/65_predictions.ipynb``).
    """
    if not 0 < low < high:
        raise ValueError(f"expected 0 < low < high, got {low} and {high}")
    logits = logits.detach().double()
    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5) - 1) / 2

    def nll(log_t):
        return nll_at_temperature(logits, target, math.exp(log_t)).item()

    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(c), nll(d)
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(d)
    # the minimum may lie outside [low, high] (the loss keeps falling towards an end): then that end
    middle = math.exp((a + b) / 2)
    candidates = [(nll_at_temperature(logits, target, t).item(), t) for t in (middle, low, high)]
    return min(candidates)[1]
