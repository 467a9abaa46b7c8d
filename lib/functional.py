"""Softmax and the classification losses, from elementary tensor operations.

Every public function mirrors the function of the same name in :mod:`torch.nn.functional`:
same arguments (the deprecated ``size_average`` and ``reduce`` included), same result shape
and dtype, the same values (in float32 and float64; in float16 and bfloat16 see below), and
the same exception class on bad input. None of them calls torch's
softmax, log_softmax, logsumexp or loss functions: each is built from ``exp``, ``log``,
``amax``, ``sum``, ``gather`` and ``where`` so a reader can see how the number is made.
``softmax`` and ``log_softmax`` also write their gradient out by hand (an
``autograd.Function``), which saves memory and time over differentiating each step, and so
does ``cross_entropy`` with class indices: its backward pass is the book's formula
``weight[y] · (softmax(x) - one_hot(y))``.

Half precision: ``lib`` computes each per-sample loss in float32 from the 16-bit logits and
rounds it to the input's dtype; a reduction then adds those 16-bit losses with ``Tensor.sum``
(one rounding) and, for the mean, divides by N in the input's dtype (N itself rounded: 257 is
256 in bfloat16). torch 2.13's CPU kernels keep
some intermediates in 16 bits (``log_softmax`` along the last dimension its log-sum-exp, ``nll_loss`` its partial sums),
so 16-bit results can differ from torch's in the last bits, or by more after a reduction;
chapter "Numerical stability" shows both.

One difference on a GPU: a class index out of range raises the CPU's ``IndexError`` (the
check reads one boolean back from the device, a synchronisation), where torch's CUDA kernel
fails later with a device-side assert.

Defined in Part II, "From logits to loss" (``chapters/2*.ipynb``); the options of
``cross_entropy`` and ``nll_loss`` are explained in Part III (``chapters/3*.ipynb``).
"""

import warnings
from typing import NamedTuple

import torch

__all__ = [
    "softmax",
    "log_softmax",
    "nll_loss",
    "cross_entropy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
]

_REDUCTIONS = ("none", "mean", "sum")


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    r"""Apply a softmax function: ``exp(x) / Σ exp(x)`` along ``dim``.

    Computed as ``exp(x - max) / Σ exp(x - max)``, which is the same in exact arithmetic and
    cannot overflow; the backward pass is written by hand (:class:`_Softmax`).

    Args:
        input (Tensor): input
        dim (int): A dimension along which softmax will be computed. ``None`` warns, as in
          torch, and picks 0 for 0-, 1- and 3-dimensional inputs, else 1.
        _stacklevel (int): where the implicit-``dim`` warning points (as in torch).
        dtype (:class:`torch.dtype`, optional): the desired data type of returned tensor.
          If specified, the input tensor is cast to :attr:`dtype` first. Default: None.

    Returns:
        Tensor: the input's shape and (or :attr:`dtype`'s) dtype; each slice along ``dim`` is
        in ``[0, 1]`` and sums to 1.

    Explained in the chapter "Logits, softmax and CrossEntropyLoss" (``chapters/21_logits_softmax.ipynb``).
    """
    x, dim = _softmax_input(input, dim, dtype, "softmax", _stacklevel)
    if x.numel() == 0:
        return x.clone()
    return _Softmax.apply(_upcast(x), dim).to(x.dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    r"""Apply a softmax followed by a logarithm: ``x - log Σ exp(x)`` along ``dim``.

    The log-sum-exp is shifted by the maximum, ``(x - max) - log Σ exp(x - max)``, so nothing
    overflows; the backward pass is written by hand (:class:`_LogSoftmax`).

    Args:
        input (Tensor): input
        dim (int): A dimension along which log_softmax will be computed. ``None`` warns, as
          in torch, and picks 0 for 0-, 1- and 3-dimensional inputs, else 1.
        _stacklevel (int): where the implicit-``dim`` warning points (as in torch).
        dtype (:class:`torch.dtype`, optional): the desired data type of returned tensor.
          If specified, the input tensor is cast to :attr:`dtype` first. Default: None.

    Returns:
        Tensor: log-probabilities, of the input's shape and (or :attr:`dtype`'s) dtype.

    Explained in the chapter "LogSoftmax + NLLLoss" (``chapters/22_logsoftmax_nllloss.ipynb``).
    """
    x, dim = _softmax_input(input, dim, dtype, "log_softmax", _stacklevel)
    if x.numel() == 0:
        return x.clone()
    return _LogSoftmax.apply(_upcast(x), dim).to(x.dtype)


class _LogSoftmax(torch.autograd.Function):
    """log_softmax with its textbook gradient, saving only its output (as torch does).

    Forward: ``y = (x - m) - log Σ exp(x - m)`` with ``m = max x``, in one N x C buffer.
    Backward: ``∂L/∂x = g - exp(y) · Σ g``, i.e. ``g - softmax(x) · Σ g``.
    """

    @staticmethod
    def forward(ctx, x, dim):
        exps, shift = _shifted_exp(x, dim)
        log_sum = exps.sum(dim, keepdim=True).log_()
        out = torch.sub(x, shift, out=exps).sub_(log_sum)  # (x - m) - log Σ, in the same buffer
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        total = grad.sum(ctx.dim, keepdim=True)
        if torch.is_grad_enabled():  # a second derivative is wanted: every step differentiable
            return grad - out.exp() * total, None
        return out.exp().mul_(total).neg_().add_(grad), None  # the same, in one new tensor


class _Softmax(torch.autograd.Function):
    """softmax with its textbook gradient: ``∂L/∂x = s · (g - Σ g s)`` for ``s = softmax(x)``."""

    @staticmethod
    def forward(ctx, x, dim):
        exps, _ = _shifted_exp(x, dim)
        out = exps.div_(exps.sum(dim, keepdim=True))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        total = (grad * out).sum(ctx.dim, keepdim=True)
        if torch.is_grad_enabled():  # a second derivative is wanted: every step differentiable
            return out * (grad - total), None
        return (grad - total).mul_(out), None  # the same, in one new tensor


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    r"""Compute the negative log likelihood loss ``-weight[y] · input[y]`` of class-index targets.

    Args:
        input (Tensor): log-probabilities; see Shape.
        target (Tensor): class indices, int64 or uint8; see Shape.
        weight (Tensor, optional): a manual rescaling weight given to each class. If given,
            has to be a Tensor of size `C`, of the input's dtype.
        size_average (bool, optional): Deprecated (see :attr:`reduction`).
        ignore_index (int, optional): a target value that contributes neither to the loss
            nor to the input gradient; ``'mean'`` averages over the other targets. Default: -100
        reduce (bool, optional): Deprecated (see :attr:`reduction`).
        reduction (str, optional): ``'none'`` | ``'mean'`` | ``'sum'``. ``'mean'`` divides the
            sum by the total weight ``Σ weight[y]`` of the targets not ignored (their number
            without :attr:`weight`). Default: ``'mean'``

    Shape:
        - Input: :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, ..., d_K)` with :math:`K \geq 1`.
        - Target: :math:`()`, :math:`(N)` or :math:`(N, d_1, ..., d_K)`, each value in :math:`[0, C)`
          or :attr:`ignore_index`.

    Returns:
        Tensor: a scalar; with ``reduction='none'``, one loss per target, the target's shape.

    Explained in the chapter "LogSoftmax + NLLLoss" (``chapters/22_logsoftmax_nllloss.ipynb``);
    its options in ``chapters/31_weight.ipynb``, ``chapters/32_ignore_index.ipynb`` and
    ``chapters/33_reduction.ipynb``.
    """
    reduction = _reduction(size_average, reduce, reduction)
    losses, targets = _nll_losses(input, target, weight, ignore_index, reduction)
    return _reduce_over_targets(losses, reduction, targets.weights)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    r"""Compute the cross entropy loss between input logits and target.

    With class indices ``y``: ``weight[y] · (log Σ exp(x) - x[y])``, in one step with a
    hand-written backward pass (:class:`_SoftmaxCrossEntropy`); with label smoothing,
    ``log_softmax`` followed by ``nll_loss`` and the smoothing term. With class probabilities
    ``p``: ``-Σ weight · p · log_softmax(x)`` over the classes.

    Args:
        input (Tensor): unnormalized logits; see Shape.
        target (Tensor): class indices (int64 or uint8) or class probabilities (floating,
            the input's shape); see Shape.
        weight (Tensor, optional): a manual rescaling weight given to each class. If given,
            has to be a Tensor of size `C`, of the input's dtype.
        size_average (bool, optional): Deprecated (see :attr:`reduction`).
        ignore_index (int, optional): a class-index target value that contributes neither to
            the loss nor to the input gradient; only for class indices. Default: -100
        reduce (bool, optional): Deprecated (see :attr:`reduction`).
        reduction (str, optional): ``'none'`` | ``'mean'`` | ``'sum'``. For class indices
            ``'mean'`` divides by the total weight of the targets not ignored, for class
            probabilities by the number of positions (:math:`N \cdot d_1 \cdots d_K`).
            Default: ``'mean'``
        label_smoothing (float, optional): a float in [0.0, 1.0]; the target becomes
            ``(1 - ε) · target + ε / C``. Default: :math:`0.0`.

    Shape:
        - Input: :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, ..., d_K)` with :math:`K \geq 1`.
        - Target: class indices :math:`()`, :math:`(N)` or :math:`(N, d_1, ..., d_K)`, each
          value in :math:`[0, C)` or :attr:`ignore_index`; class probabilities: the input's shape.

    Returns:
        Tensor: a scalar; with ``reduction='none'``, one loss per position, the input's shape
        without the class dimension.

    Explained in the chapter "Logits, softmax and CrossEntropyLoss"
    (``chapters/21_logits_softmax.ipynb``); its options in ``chapters/31_weight.ipynb`` to
    ``chapters/35_targets.ipynb``.
    """
    reduction = _reduction(size_average, reduce, reduction)
    class_dim = 0 if input.dim() == 1 else 1
    if input.shape == target.shape:
        return _cross_entropy_probabilities(input, target, weight, ignore_index, reduction,
                                            label_smoothing, class_dim)
    _check_label_smoothing(label_smoothing)
    if label_smoothing <= 0.0:
        return _cross_entropy_class_indices(input, target, weight, ignore_index, reduction)
    log_probs = log_softmax(input, class_dim)
    nll, targets = _nll_losses(log_probs, target, weight, ignore_index, reduction)
    return _smooth_class_indices(log_probs, target, targets, weight, reduction, label_smoothing,
                                 class_dim, nll)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    r"""Compute binary cross entropy ``-w [y log x + (1 - y) log(1 - x)]`` between the target and input probabilities.

    Each logarithm is clamped at -100, as in torch, so a probability of 0 or 1 gives a
    finite loss.

    Args:
        input (Tensor): probabilities in [0, 1], of any shape.
        target (Tensor): the input's shape and dtype, values between 0 and 1.
        weight (Tensor, optional): a manual rescaling weight, broadcast to the input's shape.
        size_average (bool, optional): Deprecated (see :attr:`reduction`).
        reduce (bool, optional): Deprecated (see :attr:`reduction`).
        reduction (str, optional): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``

    Returns:
        Tensor: a scalar; with ``reduction='none'``, the input's shape.

    Explained in the chapter "Two classes or many" (``chapters/23_two_classes.ipynb``).
    """
    reduction = _reduction(size_average, reduce, reduction)
    if target.size() != input.size():
        raise ValueError(
            f"Using a target size ({target.size()}) that is different to the input size "
            f"({input.size()}) is deprecated. Please ensure they have the same size."
        )
    if weight is not None:
        weight = weight.expand(torch.broadcast_shapes(target.size(), weight.size()))
    if target.dtype != input.dtype:
        raise RuntimeError(f"Found dtype {_name(target.dtype)} but expected {_name(input.dtype)}")
    if not input.is_floating_point():
        raise NotImplementedError(f'"binary_cross_entropy" not implemented for {_name(input.dtype)!r}')
    if weight is not None:
        _check_in_place(input, weight)
    if (~((input >= 0) & (input <= 1))).any():
        raise RuntimeError("all elements of input should be between 0 and 1")
    losses = _BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        losses = (losses * weight).to(input.dtype)  # torch multiplies in place: the input's dtype
    return _reduce(losses, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    r"""Compute binary cross entropy between target and input logits: ``(1 - y) x - log σ(x)``.

    ``log σ(x)`` is computed as ``-(max(-x, 0) + log1p(exp(-|x|)))``, without forming ``σ(x)``.

    Args:
        input (Tensor): unnormalized scores (logits), of any floating dtype and shape.
        target (Tensor): the input's shape, floating, values between 0 and 1.
        weight (Tensor, optional): a manual rescaling weight, broadcast to the input's shape.
        size_average (bool, optional): Deprecated (see :attr:`reduction`).
        reduce (bool, optional): Deprecated (see :attr:`reduction`).
        reduction (str, optional): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``
        pos_weight (Tensor, optional): a weight of positive examples, broadcast with the
            target (one per class along the last dimension). Default: ``None``

    Returns:
        Tensor: a scalar; with ``reduction='none'``, the input's shape, in the target's dtype.

    Explained in the chapter "Two classes or many" (``chapters/23_two_classes.ipynb``).
    """
    reduction = _reduction(size_average, reduce, reduction)
    if target.size() != input.size():
        raise ValueError(f"Target size ({target.size()}) must be the same as input size ({input.size()})")
    if not input.is_floating_point():
        raise NotImplementedError(f'"log_sigmoid_cpu" not implemented for {_name(input.dtype)!r}')
    if not target.is_floating_point():
        raise RuntimeError(
            f"result type {_name(input.dtype)} can't be cast to the desired output type "
            f"{_name(target.dtype)}"
        )
    # -|x| written so that its gradient at x = 0 is +1, the branch that clamp(-x, min=0) takes
    # there: the derivative of log σ at 0 comes out as 1 - 1/2, not 1 (input.abs() has gradient 0)
    minus_abs = torch.where(input > 0, -input, input)
    log_sigmoid = -((-input).clamp(min=0) + minus_abs.exp().log1p())
    if pos_weight is not None:
        log_weight = (pos_weight - 1) * target + 1
        _check_in_place(log_sigmoid, log_weight)
        log_sigmoid = (log_sigmoid * log_weight).to(input.dtype)
    # torch works in place on (1 - target): the loss has the target's dtype and shape
    losses = ((1 - target) * input - log_sigmoid).to(target.dtype)
    if weight is not None:
        torch.broadcast_tensors(losses, weight)  # torch's message when they do not broadcast at all
        _check_in_place(losses, weight)
        losses = (losses * weight).to(target.dtype)
    return _reduce(losses, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    r"""Compute the KL divergence loss ``Σ target (log target - input)`` of log-probabilities ``input``.

    Where ``target`` is 0 the term is 0 (the convention ``0 · log 0 = 0``).

    Args:
        input (Tensor): log-probabilities, of any floating dtype and shape.
        target (Tensor): the input's shape; probabilities, or log-probabilities with
            :attr:`log_target`.
        size_average (bool, optional): Deprecated (see :attr:`reduction`).
        reduce (bool, optional): Deprecated (see :attr:`reduction`).
        reduction (str, optional): ``'none'`` | ``'batchmean'`` | ``'sum'`` | ``'mean'``.
            ``'batchmean'`` divides the sum by the batch size ``input.size(0)``, ``'mean'``
            (which warns, as torch does) by the number of elements. Default: ``'mean'``
        log_target (bool): whether ``target`` is given as log-probabilities. Default: ``False``

    Returns:
        Tensor: a scalar; with ``reduction='none'``, the input's shape.

    Explained in the chapter "KL divergence" (``chapters/13_kl_divergence.ipynb``).
    """
    # stacklevel 4: the deprecation warning points at kl_div's caller (the other losses' at the loss)
    reduction = _reduction(size_average, reduce, reduction, _REDUCTIONS + ("batchmean",), stacklevel=4)
    if reduction == "mean" and size_average is None and reduce is None:
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support size."
            "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
            "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
            stacklevel=2,
        )
    if not input.is_floating_point() or not target.is_floating_point():
        raise RuntimeError("kl_div: Integral inputs not supported.")
    if log_target:
        losses = target.exp() * (target - input)
    else:
        losses = _zero_where(target == 0, target * target.log()) - target * input
    if reduction == "batchmean":
        return losses.sum() / input.size(0) if input.dim() != 0 else losses.sum()
    return _reduce(losses, reduction)


# --- the pieces -----------------------------------------------------------------------------


class _BinaryCrossEntropy(torch.autograd.Function):
    """The unweighted binary cross-entropy ``-[y log x + (1 - y) log(1 - x)]``, each log clamped at
    -100, with torch's gradients: ``(x - y) / max(x (1 - x), 1e-12)`` for the input (finite at 0
    and 1, where the clamped logs have none) and ``log(1 - x) - log x``, unclamped, for the target."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        log_x = x.log().clamp(min=-100)
        log_1mx = (-x).log1p().clamp(min=-100)
        return (y - 1) * log_1mx - y * log_x

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        grad_x = grad * (x - y) / (x * (1 - x)).clamp(min=1e-12) if ctx.needs_input_grad[0] else None
        grad_y = grad * ((-x).log1p() - x.log()) if ctx.needs_input_grad[1] else None
        return grad_x, grad_y


def _upcast(x):
    """Half precision is computed in float32 and cast back at the end (torch keeps some 16-bit intermediates)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _shifted_exp(x, dim):
    """Return ``exp(x - m)`` and ``m = max x`` along ``dim``: every exponent is <= 0, so nothing overflows."""
    shift = x.amax(dim, keepdim=True)
    return (x - shift).exp_(), shift


def _zero_where(mask, values):
    """``values`` with 0 where ``mask`` holds (an ignored target, a 0 weight, a 0 probability)."""
    return torch.where(mask, torch.zeros_like(values), values)


def _softmax_input(input, dim, dtype, name, stacklevel):
    if dim is None:
        dim = 0 if input.dim() in (0, 1, 3) else 1
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. "
            "Change the call to include dim=X as an argument.",
            stacklevel=stacklevel,
        )
    if input.dim() > 0:
        input.size(dim)  # torch's IndexError for a dim out of range
    elif dim not in (0, -1):
        raise IndexError(f"Dimension out of range (expected to be in range of [-1, 0], but got {dim})")
    x = input if dtype is None else input.to(dtype)
    if not x.is_floating_point() and x.numel():  # torch returns an empty integer tensor as it is
        raise NotImplementedError(f'"{name}" not implemented for {_name(x.dtype)!r}')
    return x, dim


class _Targets(NamedTuple):
    """Class-index targets, prepared once: which are ignored, what to gather, what each weighs."""

    ignored: torch.Tensor  # target == ignore_index
    index: torch.Tensor  # int64 class index to gather, 0 where ignored
    weights: torch.Tensor  # weight[y] (1 without weight), 0 where ignored


def _class_targets(input, target, weight, ignore_index, reduction, unbatched_shape):
    """torch's checks of class-index targets, in torch's order, then the targets as :class:`_Targets`.

    For a 1-d input (one sample) the target is reshaped to ``unbatched_shape``.
    """
    _check_nll_shapes(input, target)
    n_classes = input.size(0 if input.dim() == 1 else 1)
    weight = _check_weight(weight, n_classes, input)
    _check_spatial_target(input, target, reduction)
    target = target.reshape(unbatched_shape) if input.dim() == 1 else target

    ignored = target == ignore_index
    index = torch.where(ignored, torch.zeros_like(target), target).long()
    _check_bounds(index, ignored, n_classes)
    weights = torch.ones(index.shape, dtype=input.dtype, device=input.device) if weight is None else weight[index]
    return _Targets(ignored, index, _zero_where(ignored, weights))


def _nll_losses(input, target, weight, ignore_index, reduction):
    """The per-target losses ``-weight[y] · input[y]`` of :func:`nll_loss` (0 where ignored), and the targets."""
    targets = _class_targets(input, target, weight, ignore_index, reduction, ())
    class_dim = 0 if input.dim() == 1 else 1
    picked = input.gather(class_dim, targets.index.unsqueeze(class_dim)).squeeze(class_dim)
    return _zero_where(targets.ignored, -targets.weights * picked), targets


def _reduce_over_targets(losses, reduction, weights):
    """Reduce per-target losses; ``'mean'`` is the weighted mean ``Σ losses / Σ weights``.

    ``weights`` sums to the total weight of the targets not ignored: the per-target weights
    (0 where ignored), the weights of the kept targets alone, or their mask (their number).
    """
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / weights.sum()


def _cross_entropy_class_indices(input, target, weight, ignore_index, reduction):
    """log_softmax followed by nll_loss, done in one step (see :class:`_SoftmaxCrossEntropy`)."""
    if input.dim() == 0:  # torch's log_softmax along dim 1 fails first
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    if not input.is_floating_point() and input.numel():
        raise NotImplementedError(f'"log_softmax" not implemented for {_name(input.dtype)!r}')
    targets = _class_targets(input, target, weight, ignore_index, reduction, (1,))
    batched = input.unsqueeze(0) if input.dim() == 1 else input
    losses = _SoftmaxCrossEntropy.apply(_upcast(batched), targets.index, targets.weights).to(input.dtype)
    losses = losses.reshape(()) if input.dim() == 1 else losses
    return _reduce_over_targets(losses, reduction, targets.weights)


class _SoftmaxCrossEntropy(torch.autograd.Function):
    """Per-target losses ``w_y · (log Σ exp(x) - x_y)`` along dim 1, with the gradient of the
    chapter "LogSoftmax + NLLLoss": ``∂ℓ/∂x = w_y · (softmax(x) - one_hot(y))``.

    Equal to ``nll_loss(log_softmax(x), y, reduction='none')``. Between the two passes it keeps
    the shifted exponentials ``exp(x - max)`` (one N x C tensor, as torch keeps the
    log-probabilities), so the backward pass needs no second ``exp``, and the backward pass
    writes the gradient into that same buffer: forward and backward together allocate one
    N x C tensor, which ends as ``x.grad``. A second backward through the same graph
    (``retain_graph=True``) finds the buffer spent and recomputes it from ``x``. A weight of 0
    (an ignored target) gives a loss and a gradient of exactly 0.
    """

    @staticmethod
    def forward(ctx, x, index, per_target):
        exps, shift = _shifted_exp(x, 1)
        total = exps.sum(1, keepdim=True)
        picked = x.gather(1, index.unsqueeze(1))
        losses = (total.log() - (picked - shift)).squeeze(1)  # -((x_y - m) - log Σ), as torch rounds it
        ctx.save_for_backward(x, index, per_target, total)
        # Kept on ctx, not saved: save_for_backward would forbid the in-place use in backward.
        ctx.exps = exps
        return _zero_where(per_target == 0, per_target * losses)

    @staticmethod
    def backward(ctx, grad):
        x, index, per_target, total = ctx.saved_tensors
        scale = _zero_where(per_target == 0, grad * per_target).unsqueeze(1)
        if torch.is_grad_enabled():  # a second derivative is wanted: every step differentiable
            one_hot = torch.zeros_like(x).scatter_(1, index.unsqueeze(1), 1.0)
            return (softmax(x, 1) - one_hot) * scale, None, None
        exps, ctx.exps = ctx.exps, None  # the buffer becomes the gradient
        if exps is None:  # spent by an earlier backward through this graph: recompute it
            exps, _ = _shifted_exp(x, 1)
        gradient = exps.mul_(scale / total)  # w · softmax(x), in place
        return gradient.scatter_add_(1, index.unsqueeze(1), -scale), None, None  # minus w · one_hot


def _cross_entropy_probabilities(input, target, weight, ignore_index, reduction, label_smoothing,
                                 class_dim):
    if not target.is_floating_point():
        raise RuntimeError(
            f"Expected floating point type for target with class probabilities, got {_name(target.dtype)}"
        )
    if ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    n_classes = input.size(class_dim)  # torch's IndexError for a 0-d input
    _check_one_weight_per_class(weight, n_classes, "cross_entropy: ")
    log_probs = log_softmax(input, class_dim)
    _check_label_smoothing(label_smoothing)
    if label_smoothing > 0.0:
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    if weight is not None:
        log_probs = log_probs * weight.view(_class_shape(input, class_dim))
    losses = -(log_probs * target).sum(class_dim)
    if reduction == "mean":
        return losses.sum() / (input.numel() / n_classes) if n_classes else losses.sum() / 0
    return _reduce(losses, reduction)


def _smooth_class_indices(log_probs, target, targets, weight, reduction, label_smoothing, class_dim,
                          nll):
    """``(1 - ε) · nll + ε/C · Σ_c (-w_c log p_c)``, each term reduced over the targets."""
    n_classes = log_probs.size(class_dim)
    if weight is not None and weight.dim() != 1:  # torch views the weight as (1, C, 1, ...) by its size(0)
        shape = [1] * log_probs.dim()
        shape[class_dim] = weight.size(0)
        raise RuntimeError(f"shape '{shape}' is invalid for input of size {weight.numel()}")
    if log_probs.dim() == 1 and target.dim() == 1:  # torch masks the () loss in place with a (1,) mask
        raise RuntimeError("output with shape [] doesn't match the broadcast shape [1]")
    weighted = log_probs if weight is None else log_probs * weight.view(_class_shape(log_probs, class_dim))
    smooth = _zero_where(targets.ignored, -weighted.sum(class_dim))
    # torch's smoothing term adds the weights of the kept targets only (without weight: counts
    # them), the same total as the nll term's, in another order
    kept = ~targets.ignored if weight is None else targets.weights[~targets.ignored]
    nll = _reduce_over_targets(nll, reduction, targets.weights)
    total = _reduce_over_targets(smooth, reduction, kept)
    return (1 - label_smoothing) * nll + total * (label_smoothing / n_classes)


def _check_nll_shapes(input, target):
    """torch's shape and dtype checks of ``nll_loss``, in torch's order (the order decides the class)."""
    if input.dim() < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.dim()})")
    if input.dim() != 1:
        got = target.size(0) if target.dim() > 0 else 0
        if input.size(0) != got:
            raise ValueError(f"Expected input batch_size ({input.size(0)}) to match target batch_size ({got}).")
    if input.dim() <= 2:
        if target.dim() > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if target.dtype not in (torch.int64, torch.uint8):
            raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_name(target.dtype)}")
        if input.dim() == 1 and target.dim() == 1 and target.numel() != 1:
            raise ValueError(
                f"For 1D input, 1D target must have size 1, but got target size: {target.numel()}"
            )
        if input.dim() == 2 and target.dim() == 0:  # an empty batch against a 0-d target
            raise IndexError("Dimension specified as 0 but tensor has no dimensions")
        return
    expected = (input.size(0),) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(target.shape)}")
    if target.dtype not in (torch.int64, torch.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_name(target.dtype)}")


def _check_spatial_target(input, target, reduction):
    """For 3 or more input dimensions torch's kernel takes int64 targets only (none at all: any)."""
    if input.dim() > 2 and target.dtype != torch.int64 and (target.numel() or reduction == "none"):
        raise RuntimeError(f"expected scalar type Long but found {_name(target.dtype)}")


def _check_weight(weight, n_classes, input):
    """torch's weight checks of ``nll_loss``; returns the weight as one value per class.

    For inputs of 3 or more dimensions torch accepts any weight with one element per class
    (a ``(1, C)`` weight too); for 1-d and 2-d inputs it must be 1-d.
    """
    if weight is not None and input.dim() > 2 and weight.numel() != n_classes:
        raise RuntimeError("weight tensor should be defined either for all or no classes")
    if input.dim() <= 2:
        _check_one_weight_per_class(weight, n_classes)
    if not input.is_floating_point():
        raise NotImplementedError(f'"nll_loss_out_frame" not implemented for {_name(input.dtype)!r}')
    if weight is None:
        return None
    if weight.dtype != input.dtype:
        raise RuntimeError(f"expected scalar type {_name(input.dtype)} but found {_name(weight.dtype)}")
    return weight.reshape(-1)


def _check_one_weight_per_class(weight, n_classes, prefix=""):
    """torch's check that ``weight`` is 1-d with one value per class (``prefix`` as torch's message has it)."""
    if weight is not None and (weight.numel() != n_classes or weight.dim() != 1):
        raise RuntimeError(
            f"{prefix}weight tensor should be defined either for all {n_classes} classes "
            f"or no classes but got weight tensor of shape: {list(weight.shape)}"
        )


def _check_label_smoothing(label_smoothing):
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")


def _check_in_place(out, other):
    """torch's error when ``out *= other`` would have to grow ``out``."""
    shape = torch.broadcast_shapes(out.shape, other.shape)  # torch's RuntimeError if incompatible
    if shape != out.shape:
        raise RuntimeError(f"output with shape {list(out.shape)} doesn't match the broadcast shape {list(shape)}")


def _check_bounds(index, ignored, n_classes):
    out = ~ignored & ((index < 0) | (index >= n_classes))
    if out.any():
        raise IndexError(f"Target {index[out].flatten()[0].item()} is out of bounds.")


def _class_shape(input, class_dim):
    shape = [1] * input.dim()
    shape[class_dim] = input.size(class_dim)
    return shape


def _reduction(size_average, reduce, reduction, valid=_REDUCTIONS, stacklevel=3):
    """The ``reduction`` to apply: from the deprecated ``size_average``/``reduce`` if either is
    given (with torch's warning, ``stacklevel`` frames up from here), else ``reduction``, checked."""
    if size_average is not None or reduce is not None:
        return _legacy_reduction(size_average, reduce, stacklevel)
    if reduction not in valid:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _legacy_reduction(size_average, reduce, stacklevel):
    """Map the deprecated ``size_average``/``reduce`` pair to a ``reduction`` string, as torch does."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "none" if not reduce else ("mean" if size_average else "sum")
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
        stacklevel=stacklevel,
    )
    return reduction


def _reduce(losses, reduction):
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


_DTYPE_NAMES = {
    torch.float16: "Half", torch.bfloat16: "BFloat16", torch.float32: "Float",
    torch.float64: "Double", torch.int64: "Long", torch.int32: "Int", torch.int16: "Short",
    torch.int8: "Char", torch.uint8: "Byte", torch.bool: "Bool",
}


def _name(dtype):
    """torch's C++ name of a dtype, as its error messages print it."""
    return _DTYPE_NAMES.get(dtype, str(dtype))
