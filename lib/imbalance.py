"""Losses for imbalanced classes beyond ``weight``: the focal loss, multi-class and binary.

``focal_loss`` follows the conventions of :func:`lib.functional.cross_entropy` for class-index
targets (``weight``, ``ignore_index``, ``reduction``, the same shapes and the same exception
classes), so that with ``gamma=0`` it *is* the (weighted) cross-entropy. ``sigmoid_focal_loss``
has the signature and semantics of ``torchvision.ops.sigmoid_focal_loss`` (torchvision is not a
dependency of this book: its formula is written out independently in ``tests/test_imbalance.py``).

Both are built from :func:`lib.functional.log_softmax`, :func:`lib.functional.binary_cross_entropy_with_logits`
and elementary tensor operations. The focal loss is from Lin et al., "Focal Loss for Dense
Object Detection" (ICCV 2017).

Defined in the chapter "Imbalance beyond weight" (``chapters/64_imbalance.ipynb``).
"""

import torch

from lib import functional
from lib.functional import _class_targets, _reduce_over_targets, _reduction, _zero_where

__all__ = ["focal_loss", "sigmoid_focal_loss"]


def focal_loss(input, target, weight=None, gamma=2.0, ignore_index=-100, reduction="mean"):
    r"""Compute the multi-class focal loss ``-weight[y] · (1 - p_y)^gamma · log p_y`` of class-index targets.

    ``p_y`` is the softmax probability of the target class, computed as ``exp(log_softmax(x)[y])``:
    never as ``exp(-cross_entropy(x, y, weight=w))``, which is ``p_y ** w[y]`` once there are
    class weights. ``1 - p_y`` is computed as ``-expm1(log p_y)``, accurate when ``p_y`` is near 1; where ``p_y``
    rounds to exactly 1 the loss and its gradient are 0 (also for ``0 < gamma < 1``, where a plain
    ``(1 - p_y) ** gamma`` would give a NaN gradient).

    Args:
        input (Tensor): unnormalized logits; see Shape.
        target (Tensor): class indices (int64, or uint8 for 1-d and 2-d inputs); see Shape.
        weight (Tensor, optional): one weight per class, the ``alpha_t`` of the paper; of size
            `C` and the input's dtype. Default: None (every class 1).
        gamma (float, optional): the focusing parameter, ``>= 0``; ``0`` gives the
            cross-entropy. Default: 2.0
        ignore_index (int, optional): a target value that contributes neither to the loss nor
            to the input gradient; ``'mean'`` averages over the other targets. Default: -100
        reduction (str, optional): ``'none'`` | ``'mean'`` | ``'sum'``. ``'mean'`` divides the
            sum by the total weight ``Σ weight[y]`` of the targets not ignored (their number
            without :attr:`weight`), as :func:`torch.nn.functional.cross_entropy` does; a bad
            value raises ``ValueError``. Default: ``'mean'``

    Shape:
        - Input: :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, ..., d_K)` with :math:`K \geq 1`.
        - Target: :math:`()`, :math:`(N)` or :math:`(N, d_1, ..., d_K)`, each value in :math:`[0, C)`
          or :attr:`ignore_index`.

    Returns:
        Tensor: a scalar; with ``reduction='none'``, one loss per target, the target's shape.

    Explained in the chapter "Imbalance beyond weight" (``chapters/64_imbalance.ipynb``).
    """
    reduction = _reduction(None, None, reduction)
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if input.dim() == 0:  # as cross_entropy: log_softmax along dim 1 fails first
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    class_dim = 0 if input.dim() == 1 else 1
    targets = _class_targets(input, target, weight, ignore_index, reduction, ())
    log_probs = functional.log_softmax(input, class_dim)
    log_pt = log_probs.gather(class_dim, targets.index.unsqueeze(class_dim)).squeeze(class_dim)
    one_minus_pt = -torch.expm1(log_pt)  # 1 - p_t, accurate near p_t = 1
    # (1 - p_t) ** gamma, 0 ** 0 = 1. Where p_t rounds to exactly 1 the factor is the constant
    # 0 ** gamma: pow's gradient there, gamma * 0 ** (gamma - 1), is inf for 0 < gamma < 1 and
    # would turn the (exactly 0) gradient of -(1 - p_t) ** gamma * log p_t into NaN.
    certain = one_minus_pt == 0
    modulating = torch.where(certain, 0.0 ** gamma, torch.where(certain, 1.0, one_minus_pt) ** gamma)
    losses = _zero_where(targets.ignored, -targets.weights * modulating * log_pt)
    return _reduce_over_targets(losses, reduction, targets.weights)


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2, reduction="none"):
    r"""Compute the binary focal loss of ``torchvision.ops.sigmoid_focal_loss``, elementwise.

    ``loss = alpha_t · (1 - p_t)^gamma · BCE(x, t)`` with ``p = σ(x)``,
    ``p_t = p·t + (1 - p)·(1 - t)`` and ``alpha_t = alpha·t + (1 - alpha)·(1 - t)``; a negative
    ``alpha`` switches the ``alpha_t`` factor off. ``BCE`` is
    :func:`lib.functional.binary_cross_entropy_with_logits`; ``p`` is ``exp(log σ(x))``.

    Args:
        inputs (Tensor): logits, any shape.
        targets (Tensor): binary labels (0 or 1; probabilities are accepted), the shape of
            :attr:`inputs`.
        alpha (float, optional): weight of the positives in ``[0, 1]``, ``1 - alpha`` that of the
            negatives; ``-1`` for no weighting. Default: 0.25
        gamma (float, optional): the focusing parameter. Default: 2
        reduction (str, optional): ``'none'`` | ``'mean'`` | ``'sum'``; ``'mean'`` is the plain
            mean over the elements. Anything else raises ``ValueError`` (as torchvision).
            Default: ``'none'``

    Shape:
        - Inputs: :math:`(*)`; Targets: :math:`(*)`, the same shape.

    Returns:
        Tensor: the inputs' shape with ``reduction='none'``, else a scalar.

    Explained in the chapter "Imbalance beyond weight" (``chapters/64_imbalance.ipynb``).
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"Invalid Value for arg 'reduction': '{reduction} \n "
                         "Supported reduction modes: 'none', 'mean', 'sum'")
    p = _log_sigmoid(inputs).exp()
    ce_loss = functional.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _log_sigmoid(x):
    """``log σ(x) = -(max(-x, 0) + log1p(exp(-|x|)))``, finite for every finite ``x``."""
    return -((-x).clamp_min(0) + torch.log1p(torch.exp(-x.abs())))
