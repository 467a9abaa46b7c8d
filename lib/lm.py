"""Losses that language models add to cross-entropy: the z-loss of PaLM.

A language model's logits over a vocabulary of V tokens define the softmax's normaliser
``Z = Σ_j exp(x_j)``. Cross-entropy does not care about ``log Z`` itself (adding a constant to
every logit changes no probability), so it can drift far from 0, where float32 and bfloat16 lose
digits. PaLM adds ``1e-4 · log² Z`` per token to keep it near 0. It needs only the log-sum-exp,
which the cross-entropy computes anyway (a fused loss can reuse it; :func:`z_loss` is separate
and computes its own), and its gradient is ``2 · c · log Z · softmax(x)``.

Built, like :mod:`lib.functional`, from ``amax``, ``exp``, ``sum`` and ``log``: no call of torch's
softmax, log-sum-exp or loss functions.

Defined in the chapter "Cross-entropy at scale: never materialise the logits"
(``chapters/52_at_scale.ipynb``).
"""

import torch

__all__ = ["log_normalizer", "z_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def log_normalizer(input, dim=-1):
    """``log Z = log Σ_j exp(x_j)`` along ``dim``, shifted by the maximum so nothing overflows.

    Args:
        input (Tensor): logits.
        dim (int): the class dimension. Default: ``-1``.

    Returns:
        Tensor: ``input``'s shape without ``dim``.

    Explained in the chapter "Cross-entropy at scale" (``chapters/52_at_scale.ipynb``).
    """
    shift = input.amax(dim, keepdim=True)
    return ((input - shift).exp().sum(dim, keepdim=True).log() + shift).squeeze(dim)


def z_loss(input, coefficient=1e-4, reduction="mean"):
    """PaLM's auxiliary z-loss ``coefficient · (log Σ_j exp(x_j))²`` of each row of logits.

    Its gradient with respect to the logits of a row is ``2 · coefficient · log Z · softmax(x)``
    (times the reduction's ``1/N`` for the mean), written out by hand in the backward pass: the
    forward pass keeps ``exp(x - max)`` and reuses it.

    Args:
        input (Tensor): logits of shape ``(C)`` or ``(N, C)``, classes along the last dimension.
        coefficient (float): the weight ``c`` of ``log² Z``. Default: ``1e-4`` (PaLM's).
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``, over the rows. Default: ``'mean'``.

    Shape:
        - Input: ``(C)`` or ``(N, C)``.
        - Output: scalar; ``()`` or ``(N)`` with ``reduction='none'``.

    Explained in the chapter "Cross-entropy at scale" (``chapters/52_at_scale.ipynb``).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if input.dim() not in (1, 2):
        raise ValueError(f"Expected input of 1 or 2 dimensions (classes last), got {input.dim()}")
    if not input.is_floating_point():
        raise TypeError(f"Expected floating point logits, got {input.dtype}")
    losses = _ZLoss.apply(input, float(coefficient))
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


class _ZLoss(torch.autograd.Function):
    """``c · log² Z`` per row, with the gradient ``2 c · log Z · exp(x - log Z)``."""

    @staticmethod
    def forward(ctx, x, coefficient):
        shift = x.amax(-1, keepdim=True)
        exps = (x - shift).exp()
        total = exps.sum(-1, keepdim=True)
        log_z = total.log() + shift
        ctx.save_for_backward(exps, total, log_z)
        ctx.coefficient = coefficient
        return coefficient * log_z.squeeze(-1) ** 2

    @staticmethod
    def backward(ctx, grad):
        exps, total, log_z = ctx.saved_tensors
        probabilities = exps / total
        return 2 * ctx.coefficient * (grad.unsqueeze(-1) * log_z) * probabilities, None
