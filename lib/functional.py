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
    "linear_cross_entropy",
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


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
                         reduction="mean", ignore_index=None, label_smoothing=0.0, chunk_size=None):
    r"""Compute the cross entropy loss of ``linear(input, linear_weight, linear_bias)`` without its N x C logits.

    The value and the gradients are those of torch's reference path
    ``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``, but the rows of
    ``input`` (the tokens) are processed ``chunk_size`` at a time: each chunk's logits are
    computed, turned in place into the gradient of the loss with respect to them,
    ``scale · (softmax(z) - one_hot(y))`` (smoothed, weighted, 0 where ignored, ``scale`` the
    reduction's factor), and multiplied at once into the chunk's rows of the input's gradient
    and into the weight's and bias's gradients, during the forward pass (the approach of
    Liger-Kernel, Hsu et al. 2024, and of torch's own chunked path). The backward pass only
    multiplies those gradients by the incoming gradient. No tensor of N x C elements is ever
    made: the largest is one chunk's ``chunk_size x C`` logits (or ``linear_weight``'s
    gradient, C x in_features).

    With ``reduction='none'`` the weight's gradient depends on the incoming per-token
    gradients, unknown in the forward pass: the forward keeps each token's log-sum-exp, and
    the backward recomputes each chunk's logits from it (the approach of Cut Cross-Entropy,
    Wijmans et al. 2024, one more matrix product per chunk). Without any gradient wanted
    (``torch.no_grad()`` or no input requiring it) only the loss is computed, in chunks.
    With ``'mean'`` and ``'sum'`` the gradients computed in the forward pass are handed over,
    not copied: a second backward through the same graph (``retain_graph=True``) raises a
    ``RuntimeError``, as torch's chunked path does (``'none'`` recomputes and allows it).
    Second derivatives (``create_graph=True``) raise a ``RuntimeError`` for every reduction,
    where torch's chunked path silently returns a gradient connected to no graph. Use the
    reference path for them.

    Args:
        input (Tensor): input samples, ``(N, in_features)`` or ``(in_features)``.
        linear_weight (Tensor): the linear layer's weight, ``(C, in_features)``.
        target (Tensor): class indices (int64 or uint8), ``(N)`` or ``()``; or class
            probabilities (floating), ``(N, C)`` or ``(C)``.
        linear_bias (Tensor, optional): the linear layer's bias, ``(C)``. Default: ``None``
        weight (Tensor, optional): a manual rescaling weight given to each class, ``(C)``.
        reduction (str, optional): ``'none'`` | ``'mean'`` | ``'sum'``, as in
            :func:`cross_entropy`. Default: ``'mean'``
        ignore_index (int, optional): a class-index target value that contributes neither to
            the loss nor to the gradients. ``None`` means -100 for class indices, and is the
            only value allowed with class probabilities (torch raises otherwise). Default: ``None``
        label_smoothing (float, optional): a float in [0.0, 1.0], as in
            :func:`cross_entropy`. Default: :math:`0.0`
        chunk_size (int, optional): rows of ``input`` per chunk. ``None`` picks
            ``ceil(in_features / 2)`` rows, at least 64 (:func:`_lce_default_chunk_size`):
            for ``in_features >= 128`` one chunk's logits then take about half the memory
            of ``linear_weight``'s gradient, which the backward pass needs anyway, so the
            peak is about 1.5 times that gradient, small against N x C when N is much larger than ``in_features``; and
            each chunk's matrix products stay large enough to be efficient. torch's
            automatic choice (``LinearCrossEntropyOptions()``) takes much smaller chunks in
            float32 (32 rows at N = 4096, in_features = 1024, C = 128256), which were slower
            on a CPU in ``benchmarks/linear_cross_entropy.py``. Default: ``None``

    Shape:
        - Input: :math:`(N, in\_features)` or :math:`(in\_features)`; torch 2.13 raises for
          other dimensions (flatten ``(B, T, H)`` to ``(B·T, H)`` first).
        - Linear weight: :math:`(C, in\_features)`. torch's K-dimensional form
          :math:`(C, d_1, ..., d_K, in\_features)` raises ``NotImplementedError`` here.
        - Target: class indices :math:`(N)` or :math:`()`; class probabilities :math:`(N, C)`
          or :math:`(C)`.

    Returns:
        Tensor: a scalar; with ``reduction='none'``, one loss per row, :math:`(N)` (or
        :math:`()` for an unbatched input).

    torch 2.13's ``F.linear_cross_entropy`` takes ``options`` (a ``LinearCrossEntropyOptions``)
    where this function takes ``chunk_size``; its chunked path falls back to the reference
    path for label smoothing and probability targets, this function chunks them too.

    Explained in the chapter "Cross-entropy at scale" (``chapters/52_at_scale.ipynb``).
    """
    x, W, b, targets = _linear_cross_entropy_inputs(input, linear_weight, target, linear_bias,
                                                    weight, reduction, ignore_index, label_smoothing)
    if chunk_size is None:
        chunk_size = _lce_default_chunk_size(x.size(1))
    elif not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    probs = targets.probs  # differentiable, as torch's: probability targets may require grad
    grads = [t is not None and t.requires_grad for t in (input, linear_weight, linear_bias, probs)]
    if not (torch.is_grad_enabled() and any(grads)):
        losses, _ = _lce_pass(_upcast(x), _upcast(W), _upcast(b), targets, chunk_size)
        out = _lce_reduce(losses, targets, reduction)
    elif reduction == "none":
        out = _LinearCrossEntropyNone.apply(x, W, b, probs, targets, chunk_size)
    else:
        out = _LinearCrossEntropy.apply(x, W, b, probs, targets, chunk_size, reduction, tuple(grads))
    out = out.to(input.dtype)
    return out.reshape(()) if input.dim() == 1 and reduction == "none" else out


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
    if x is None:
        return None
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


class _LinearTargets(NamedTuple):
    """The targets of :func:`linear_cross_entropy`, checked once, one row per row of the input."""

    index: torch.Tensor  # (N,) int64 class index, 0 where ignored (class indices), else None
    ignored: torch.Tensor  # (N,) bool (class indices), else None
    kept: torch.Tensor  # (N,) weight[y] (1 without weight), 0 where ignored: the 'mean' denominator's terms
    probs: torch.Tensor  # (N, C) class probabilities (probability targets), else None
    weight: torch.Tensor  # (C,) class weights, or None
    smoothing: float


_C_TYPE_NAMES = {torch.float32: "float", torch.float64: "double", torch.float16: "c10::Half",
                 torch.bfloat16: "c10::BFloat16"}


def _linear_cross_entropy_inputs(input, linear_weight, target, linear_bias, weight, reduction,
                                 ignore_index, label_smoothing):
    """torch 2.13's checks of ``linear_cross_entropy``, in its order; the input as ``(N, H)`` and the targets."""
    if input.dim() < 1 or input.dim() > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.dim()}")
    if linear_weight.dim() < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.dim()}")
    if input.shape[-1] != linear_weight.shape[-1]:
        raise RuntimeError(
            "expected equal input and linear_weight last dimensions (in_features), "
            f"got {input.shape[-1]} and {linear_weight.shape[-1]}, respectively"
        )
    n_classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if out_features and input.dim() == 1:
        raise RuntimeError(
            f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} requires batched "
            f"input, (N, {input.shape[-1]}), got unbatched input with shape {tuple(input.shape)}"
        )
    if linear_bias is not None and tuple(linear_bias.shape) != (n_classes, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(n_classes, *out_features)}, got {tuple(linear_bias.shape)}")
    if out_features:
        raise NotImplementedError(
            "lib's linear_cross_entropy takes a (C, in_features) linear_weight; for torch's "
            f"K-dimensional loss (linear_weight of shape {tuple(linear_weight.shape)}) use "
            "cross_entropy(linear(input, linear_weight).reshape(...), target)"
        )
    logits_shape = (*input.shape[:-1], n_classes)
    probabilities = tuple(target.shape) == logits_shape
    if probabilities and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    if linear_weight.dtype != input.dtype:  # torch's linear fails first
        raise RuntimeError(
            "expected m1 and m2 to have the same dtype, but got: "
            f"{_C_TYPE_NAMES.get(input.dtype, _name(input.dtype))} != "
            f"{_C_TYPE_NAMES.get(linear_weight.dtype, _name(linear_weight.dtype))}"
        )
    if linear_bias is not None and linear_bias.dtype != input.dtype:
        raise RuntimeError(
            f"self and mat2 must have the same dtype, but got {_name(linear_bias.dtype)} and {_name(input.dtype)}"
        )
    if not input.is_floating_point():  # torch's linear works, its log_softmax does not
        raise NotImplementedError(f'"log_softmax_lastdim_kernel_impl" not implemented for {_name(input.dtype)!r}')
    reduction = _reduction(None, None, reduction)
    logits = input.new_empty(()).expand(logits_shape)  # the logits' shape and dtype, without their memory
    x = input.unsqueeze(0) if input.dim() == 1 else input
    if probabilities:
        if not target.is_floating_point():
            raise RuntimeError(
                f"Expected floating point type for target with class probabilities, got {_name(target.dtype)}"
            )
        _check_one_weight_per_class(weight, n_classes, "cross_entropy: ")
        _check_label_smoothing(label_smoothing)
        kept = torch.ones(x.size(0), dtype=x.dtype, device=x.device)  # 'mean' divides by N
        return x, linear_weight, linear_bias, _LinearTargets(
            None, None, kept, target.reshape(x.size(0), n_classes), weight, label_smoothing)
    _check_label_smoothing(label_smoothing)
    if label_smoothing > 0.0 and input.dim() == 1 and target.dim() == 1:  # as cross_entropy
        raise RuntimeError("output with shape [] doesn't match the broadcast shape [1]")
    targets = _class_targets(logits, target, weight, ignore_index, reduction, (1,))
    return x, linear_weight, linear_bias, _LinearTargets(
        targets.index.reshape(-1), targets.ignored.reshape(-1), targets.weights.reshape(-1), None,
        None if weight is None else weight.reshape(-1), label_smoothing)


def _lce_default_chunk_size(in_features):
    """:func:`linear_cross_entropy`'s default rows per chunk: ``ceil(in_features / 2)``, at least 64."""
    return max(64, -(-in_features // 2))


def _lce_pass(x, W, b, targets, chunk_size, scale=None, needs=(False, False, False, False)):
    """The per-row losses of :func:`linear_cross_entropy`, ``chunk_size`` rows at a time.

    With ``scale`` (one factor per row), also the gradients of ``Σ scale · losses`` with
    respect to ``x``, ``W``, ``b`` and the probability targets (those ``needs`` asks for, else
    None): each chunk's logits become their gradient in place and are multiplied into the first
    three at once; the targets' gradient, ``-(1 - ε) · w · log softmax``, is target-sized anyway.
    """
    n_rows = x.size(0)
    losses = x.new_empty(n_rows)
    grad_x = x.new_empty(x.shape) if needs[0] else None
    grad_W = torch.zeros_like(W) if needs[1] else None
    grad_b = torch.zeros_like(b) if needs[2] and b is not None else None
    grad_p = x.new_empty(targets.probs.shape) if needs[3] and targets.probs is not None else None
    buffer = None  # one chunk's logits, reused: the first chunk is the largest
    for start in range(0, n_rows, chunk_size):
        rows = slice(start, min(start + chunk_size, n_rows))
        if buffer is None:
            logits = buffer = torch.mm(x[rows], W.t())
        else:
            logits = torch.mm(x[rows], W.t(), out=buffer[: rows.stop - rows.start])
        if b is not None:
            logits.add_(b)
        if grad_p is not None:  # z - max, before the logits become their exponentials
            torch.sub(logits, logits.amax(1, keepdim=True), out=grad_p[rows])
        losses[rows], exps, total, dense = _lce_chunk_(logits, targets, rows)
        if scale is None:
            continue
        if grad_p is not None:  # log softmax, times -(1 - ε) w and the row's factor
            grad_p[rows].sub_(total.log()).mul_((-(1 - targets.smoothing) * scale[rows]).unsqueeze(1))
            if targets.weight is not None:
                grad_p[rows].mul_(targets.weight)
        gradient = _lce_logit_gradient_(exps, total, dense, targets, rows, scale[rows])
        if grad_x is not None:
            torch.mm(gradient, W, out=grad_x[rows])
        if grad_W is not None:
            grad_W.addmm_(gradient.t(), x[rows])
        if grad_b is not None:
            grad_b.add_(gradient.sum(0))
    return losses, (grad_x, grad_W, grad_b, grad_p)


def _lce_chunk_(logits, targets, rows):
    """One chunk's per-row losses; ``logits`` becomes ``exp(logits - max)`` in place.

    Also returns the sums ``Σ exp(logits - max)`` (one per row, ``(n, 1)``) and the chunk's
    dense target term (``w · ((1 - ε) p + ε / C)`` for probability targets, a chunk-sized
    tensor; None for class indices).
    """
    n_classes = logits.size(1)
    eps = targets.smoothing
    dense = None
    if targets.probs is None:
        picked = logits.gather(1, targets.index[rows].unsqueeze(1)).squeeze(1)
        if eps > 0.0:  # Σ_c w_c z_c, before the logits are overwritten
            weighted = logits.sum(1) if targets.weight is None else logits @ targets.weight
    else:
        dense = targets.probs[rows].to(logits.dtype)
        if eps > 0.0:
            dense = dense * (1 - eps) + eps / n_classes
        if targets.weight is not None:
            dense = dense * targets.weight
        mass = dense.sum(1)
        weighted = (dense.unsqueeze(1) @ logits.unsqueeze(2)).reshape(-1)  # Σ_c q_c z_c, no N x C product
    exps, shift = _shifted_exp_(logits)
    total = exps.sum(1, keepdim=True)
    log_sum = total.log().squeeze(1)  # log Σ exp(z - m)
    if targets.probs is not None:
        return mass * (log_sum + shift.squeeze(1)) - weighted, exps, total, dense
    ignored, kept = targets.ignored[rows], targets.kept[rows]
    losses = _zero_where(ignored, kept * (log_sum - (picked - shift.squeeze(1))))
    if eps > 0.0:
        weights = n_classes if targets.weight is None else targets.weight.sum()
        smooth = _zero_where(ignored, weights * (log_sum + shift.squeeze(1)) - weighted)
        losses = (1 - eps) * losses + (eps / n_classes) * smooth
    return losses, exps, total, dense


def _lce_logit_gradient_(exps, total, dense, targets, rows, scale):
    """``exps`` becomes in place the gradient of ``Σ scale · losses`` with respect to the chunk's logits.

    With ``p = exps / total`` (the softmax), each row's gradient is ``scale · (mass · p - q)``
    where ``q`` is the row's weighted (smoothed) target and ``mass = Σ_c q_c``: for class
    indices ``q = (1 - ε) w_y one_hot(y) + ε / C · w`` (0 where ignored), for probabilities
    the ``dense`` term.
    """
    if dense is not None:
        mass = dense.sum(1)
        probs = exps.mul_((mass * scale).unsqueeze(1) / total)  # one pass: softmax, scaled
        return probs.addcmul_(dense, scale.unsqueeze(1), value=-1)  # dense may be the caller's target: not modified
    n_classes, eps = exps.size(1), targets.smoothing
    counted = _zero_where(targets.ignored[rows], scale)  # 0 where ignored, also where scale is inf
    one_hot = (1 - eps) * targets.kept[rows] * counted
    uniform = (eps / n_classes) * counted
    weights = n_classes if targets.weight is None else targets.weight.sum()
    probs = exps.mul_((one_hot + uniform * weights).unsqueeze(1) / total)  # one pass: softmax, scaled
    probs.scatter_add_(1, targets.index[rows].unsqueeze(1), -one_hot.unsqueeze(1))
    if eps > 0.0:
        if targets.weight is None:
            probs.sub_(uniform.unsqueeze(1))
        else:
            probs.addr_(uniform, targets.weight, alpha=-1)
    return probs


def _shifted_exp_(x):
    """:func:`_shifted_exp` along dim 1, in place: ``x`` becomes ``exp(x - m)``."""
    shift = x.amax(1, keepdim=True)
    return x.sub_(shift).exp_(), shift


def _lce_reduce(losses, targets, reduction):
    return _reduce_over_targets(losses, reduction, targets.kept)


def _lce_scale(targets, reduction, like):
    """The factor of each row's loss in the reduced loss: 1 for 'sum', 1 / Σ kept weights for 'mean'."""
    n_rows = targets.kept.size(0)
    factor = 1.0 if reduction == "sum" else 1.0 / targets.kept.sum()
    return torch.ones(n_rows, dtype=like.dtype, device=like.device).mul_(factor)


class _LinearCrossEntropy(torch.autograd.Function):
    """``'mean'`` and ``'sum'``: the gradients are computed in the forward pass (:func:`_lce_pass`)
    and handed over by the backward pass, multiplied in place by the incoming gradient."""

    @staticmethod
    def forward(ctx, x, W, b, probs, targets, chunk_size, reduction, needs):
        x32, W32, b32 = _upcast(x), _upcast(W), _upcast(b)
        scale = _lce_scale(targets, reduction, x32)
        losses, grads = _lce_pass(x32, W32, b32, targets, chunk_size, scale, needs)
        ctx.grads = grads
        ctx.dtypes = tuple(None if t is None else t.dtype for t in (x, W, b, probs))
        return _lce_reduce(losses, targets, reduction)

    @staticmethod
    def backward(ctx, grad):
        _check_first_order()
        grads, ctx.grads = ctx.grads, None
        if grads is None:
            raise RuntimeError(
                "linear_cross_entropy: backward called twice; its gradients were computed in "
                "the forward pass and handed over by the first backward. retain_graph=True needs "
                "the reference path cross_entropy(linear(...), ...)"
            )
        out = tuple(None if g is None else g.mul_(grad).to(t) for g, t in zip(grads, ctx.dtypes, strict=True))
        return (*out, None, None, None, None)  # targets, chunk_size, reduction, needs


class _LinearCrossEntropyNone(torch.autograd.Function):
    """``'none'``: the backward pass recomputes each chunk's logits, scaled by the incoming per-row gradient."""

    @staticmethod
    def forward(ctx, x, W, b, probs, targets, chunk_size):
        losses, _ = _lce_pass(_upcast(x), _upcast(W), _upcast(b), targets, chunk_size)
        ctx.save_for_backward(x, W, b, probs)
        ctx.targets, ctx.chunk_size = targets, chunk_size
        return losses

    @staticmethod
    def backward(ctx, grad):
        _check_first_order()
        x, W, b, probs = ctx.saved_tensors
        needs = ctx.needs_input_grad[:4]
        _, grads = _lce_pass(_upcast(x), _upcast(W), _upcast(b), ctx.targets, ctx.chunk_size,
                             grad.to(_upcast(x).dtype), needs)
        out = tuple(None if g is None else g.to(t.dtype) for g, t in zip(grads, (x, W, b, probs), strict=True))
        return (*out, None, None)


def _check_first_order():
    if torch.is_grad_enabled():
        raise RuntimeError(
            "linear_cross_entropy: second derivatives (create_graph=True) are not supported; "
            "use the reference path cross_entropy(linear(...), ...)"
        )


_DTYPE_NAMES = {
    torch.float16: "Half", torch.bfloat16: "BFloat16", torch.float32: "Float",
    torch.float64: "Double", torch.int64: "Long", torch.int32: "Int", torch.int16: "Short",
    torch.int8: "Char", torch.uint8: "Byte", torch.bool: "Bool",
}


def _name(dtype):
    """torch's C++ name of a dtype, as its error messages print it."""
    return _DTYPE_NAMES.get(dtype, str(dtype))
