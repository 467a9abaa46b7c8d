"""Entropy, cross-entropy and KL divergence of discrete distributions, from scratch.

Each function takes probabilities along ``dim`` (default: the last one) and returns a tensor of
the input's shape without ``dim``. Logarithms are natural (nats) unless ``base`` is given
(``base=2`` gives bits). Conventions: ``0 · log 0 = 0``; where ``p > 0`` and ``q = 0`` the
cross-entropy and the KL divergence are ``inf``.

Defined in the chapters "Entropy", "Cross-entropy" and "KL divergence" (``chapters/1*.ipynb``).
"""

import math

import torch


def sum_tolerance(dtype):
    """Return how far from 1 a distribution of ``dtype`` may sum: ``sqrt(eps)``.

    Args:
        dtype (:class:`torch.dtype`): a floating dtype.

    Returns:
        float: 3.5e-4 for float32, 1.5e-8 for float64.

    Explained in the chapter "Entropy" (``chapters/11_entropy.ipynb``), where distributions are checked.
    """
    return math.sqrt(torch.finfo(dtype).eps)


def surprise(p, base=None):
    """Return the surprise (self-information) ``-log p`` of each probability, in nats or in ``base``.

    Args:
        p (Tensor or array-like): probabilities in [0, 1], of any shape.
        base (float, optional): the base of the logarithm (``2``: bits). Default: ``None`` (nats).

    Returns:
        Tensor: ``p``'s shape; ``+0`` for ``p = 1``, ``inf`` for ``p = 0``.

    Explained in the chapter "Entropy" (``chapters/11_entropy.ipynb``).
    """
    p = _as_probabilities(p, "p")
    return _in_base(0.0 - torch.log(p), base)  # 0 - x, not -x: a certain outcome gives +0, not -0


def entropy(p, dim=-1, base=None):
    """Return the entropy ``H(p) = -Σ p log p`` of the distributions along ``dim``.

    Args:
        p (Tensor or array-like): probabilities.
        dim (int, optional): the dimension of the outcomes. Default: -1
        base (float, optional): the base of the logarithm (``2``: bits). Default: ``None`` (nats).

    Shape:
        - p: any shape with at least one dimension; each slice along ``dim`` sums to 1.
        - Output: the input's shape without ``dim``.

    Returns:
        Tensor: one entropy per distribution, ``0 · log 0 = 0``.

    Explained in the chapter "Entropy" (``chapters/11_entropy.ipynb``).
    """
    p = _as_distribution(p, "p", dim)
    return _in_base(0.0 - _weighted_by(p, torch.log(p)).sum(dim), base)


def cross_entropy(p, q, dim=-1, base=None):
    """Return the cross-entropy ``H(p, q) = -Σ p log q`` of ``q`` relative to ``p`` along ``dim``.

    Args:
        p (Tensor or array-like): the true distributions.
        q (Tensor or array-like): the model's distributions, ``p``'s shape and dtype.
        dim (int, optional): the dimension of the outcomes. Default: -1
        base (float, optional): the base of the logarithm (``2``: bits). Default: ``None`` (nats).

    Shape:
        - p, q: any shape with at least one dimension; each slice along ``dim`` sums to 1.
        - Output: the input's shape without ``dim``.

    Returns:
        Tensor: one cross-entropy per pair; ``inf`` where ``p > 0`` and ``q = 0``.

    Explained in the chapter "Cross-entropy" (``chapters/12_cross_entropy.ipynb``).
    """
    p, q = _as_pair(p, q, dim)
    return _in_base(0.0 - _weighted_by(p, torch.log(q)).sum(dim), base)


def kl_divergence(p, q, dim=-1, base=None):
    """Return the Kullback-Leibler divergence ``D_KL(p‖q) = Σ p log(p / q)`` along ``dim``.

    Args:
        p (Tensor or array-like): the true distributions.
        q (Tensor or array-like): the model's distributions, ``p``'s shape and dtype.
        dim (int, optional): the dimension of the outcomes. Default: -1
        base (float, optional): the base of the logarithm (``2``: bits). Default: ``None`` (nats).

    Shape:
        - p, q: any shape with at least one dimension; each slice along ``dim`` sums to 1.
        - Output: the input's shape without ``dim``.

    Returns:
        Tensor: one divergence per pair; ``inf`` where ``p > 0`` and ``q = 0``.

    Explained in the chapter "KL divergence" (``chapters/13_kl_divergence.ipynb``).
    """
    p, q = _as_pair(p, q, dim)
    return _in_base(_weighted_by(p, torch.log(p) - torch.log(q)).sum(dim), base)


def _weighted_by(p, values):
    """``p * values`` where ``p > 0``, and 0 where ``p = 0``, whatever ``values`` holds there
    (``-inf`` or ``nan``): the convention ``0 · log 0 = 0``, coded with :func:`torch.where`."""
    return torch.where(p > 0, p * values, torch.zeros_like(p))


def _as_floating(values):
    """``values`` as a tensor; integers and booleans in the default floating dtype."""
    tensor = torch.as_tensor(values)
    return tensor if tensor.is_floating_point() else tensor.to(torch.get_default_dtype())


def _as_probabilities(values, name):
    """Return ``values`` as a floating tensor, checked to hold probabilities in [0, 1]."""
    tensor = _as_floating(values)
    bad = ~((tensor >= 0) & (tensor <= 1))
    if bad.any():
        raise ValueError(f"{name} must hold probabilities in [0, 1]; found {tensor[bad].flatten()[0].item()}")
    return tensor


def _as_distribution(values, name, dim):
    """Return ``values`` as a floating tensor whose slices along ``dim`` are distributions."""
    tensor = _as_floating(values)
    if tensor.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (the outcomes), got a scalar")
    tensor.size(dim)  # raises torch's IndexError for a dim out of range
    if (tensor < 0).any() or tensor.isnan().any():
        raise ValueError(f"{name} must be non-negative probabilities, found a negative or nan entry")
    totals = tensor.sum(dim)
    tolerance = sum_tolerance(tensor.dtype)
    off = (totals - 1).abs() > tolerance
    if off.any():
        worst = totals[off].flatten()[0].item()
        raise ValueError(
            f"{name} must sum to 1 along dim={dim} (within {tolerance:.1e}); one sums to {worst:.6g}"
        )
    return tensor


def _as_pair(p, q, dim):
    """Check ``p`` and ``q`` as distributions of the same shape and dtype."""
    p = _as_distribution(p, "p", dim)
    q = _as_distribution(q, "q", dim)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    if p.dtype != q.dtype:
        raise ValueError(f"p and q must have the same dtype, got {p.dtype} and {q.dtype}")
    return p, q


def _in_base(nats, base):
    """Convert a quantity in nats to ``base`` (``None``: keep nats)."""
    if base is None:
        return nats
    if not base > 0 or base == 1:
        raise ValueError(f"base must be positive and not 1, got {base}")
    return nats / math.log(base)
