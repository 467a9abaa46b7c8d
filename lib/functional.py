"""Softmax and the classification losses, from elementary tensor operations.

Every public function mirrors the function of the same name in :mod:`torch.nn.functional`:
same arguments (the deprecated ``size_average`` and ``reduce`` included), same result shape
and dtype, same values, and the same exception class on bad input. None of them calls torch's
softmax, log_softmax, logsumexp or loss functions: each is built from ``exp``, ``log``,
``amax``, ``sum``, ``gather`` and ``where`` so a reader can see how the number is made.

Defined in Part II, "From logits to loss" (``chapters/2*.ipynb``); the options of
``cross_entropy`` and ``nll_loss`` are explained in Part III (``chapters/3*.ipynb``).
"""

import warnings

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
    """Return ``exp(x) / Σ exp(x)`` along ``dim``, computed as ``exp(x - max) / Σ exp(x - max)``."""
    x, dim = _softmax_input(input, dim, dtype, "softmax", _stacklevel)
    if x.numel() == 0:
        return x.clone()
    work = _upcast(x)
    exps = (work - _row_max(work, dim)).exp()
    return (exps / exps.sum(dim, keepdim=True)).to(x.dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """Return ``x - log Σ exp(x)`` along ``dim``, with the log-sum-exp shifted by the maximum."""
    x, dim = _softmax_input(input, dim, dtype, "log_softmax", _stacklevel)
    if x.numel() == 0:
        return x.clone()
    work = _upcast(x)
    shifted = work - _row_max(work, dim)
    return (shifted - shifted.exp().sum(dim, keepdim=True).log()).to(x.dtype)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Return the negative log-likelihood ``-weight[y] · input[y]`` of class-index targets, reduced."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_nll_shapes(input, target)
    class_dim = 0 if input.dim() == 1 else 1
    n_classes = input.size(class_dim)
    _check_weight(weight, n_classes, input)
    target = target.reshape(()) if input.dim() == 1 else target

    ignored = target == ignore_index
    index = torch.where(ignored, torch.zeros_like(target), target).long()
    _check_bounds(index, ignored, n_classes)

    picked = input.gather(class_dim, index.unsqueeze(class_dim)).squeeze(class_dim)
    per_target = torch.ones_like(picked) if weight is None else weight[index]
    per_target = torch.where(ignored, torch.zeros_like(per_target), per_target)
    losses = torch.where(ignored, torch.zeros_like(picked), -per_target * picked)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / per_target.sum()


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Return the cross-entropy between logits ``input`` and class indices or class probabilities."""
    reduction = _reduction(size_average, reduce, reduction)
    class_dim = 0 if input.dim() == 1 else 1
    if input.shape == target.shape:
        return _cross_entropy_probabilities(input, target, weight, ignore_index, reduction,
                                            label_smoothing, class_dim)
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    log_probs = log_softmax(input, class_dim)
    losses = nll_loss(log_probs, target, weight, None, ignore_index, None, reduction)
    if label_smoothing <= 0.0:
        return losses
    return _smooth_class_indices(log_probs, target, weight, ignore_index, reduction,
                                 label_smoothing, class_dim, losses)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """Return ``-w [y log x + (1 - y) log(1 - x)]`` for probabilities ``x``, each log clamped at -100."""
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
    if (~((input >= 0) & (input <= 1))).any():
        raise RuntimeError("all elements of input should be between 0 and 1")
    log_x = input.log().clamp(min=-100)
    log_1mx = (-input).log1p().clamp(min=-100)
    losses = (target - 1) * log_1mx - target * log_x
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """Return binary cross-entropy on logits, ``(1 - y) x - log σ(x)``, without forming ``σ(x)``."""
    reduction = _reduction(size_average, reduce, reduction)
    if target.size() != input.size():
        raise ValueError(f"Target size ({target.size()}) must be the same as input size ({input.size()})")
    if not target.is_floating_point():
        raise RuntimeError(
            f"result type {_name(input.dtype)} can't be cast to the desired output type "
            f"{_name(target.dtype)}"
        )
    log_sigmoid = -((-input).clamp(min=0) + (-input.abs()).exp().log1p())
    if pos_weight is not None:
        log_sigmoid = log_sigmoid * ((pos_weight - 1) * target + 1)
    losses = (1 - target) * input - log_sigmoid
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Return the KL divergence ``Σ target (log target - input)`` of log-probabilities ``input``."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    elif reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support size."
            "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
            "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
            stacklevel=2,
        )
    if reduction != "batchmean" and reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if log_target:
        losses = target.exp() * (target - input)
    else:
        target_log_target = torch.where(target == 0, torch.zeros_like(target), target * target.log())
        losses = target_log_target - target * input
    if reduction == "batchmean":
        return losses.sum() / input.size(0) if input.dim() != 0 else losses.sum()
    return _reduce(losses, reduction)


# --- the pieces -----------------------------------------------------------------------------


def _row_max(x, dim):
    """The maximum along ``dim``, kept as a constant: the shift cancels, so no gradient flows into it."""
    return x.detach().amax(dim, keepdim=True)


def _upcast(x):
    """Half precision is computed in float32, as torch does, and cast back at the end."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _softmax_input(input, dim, dtype, name, stacklevel):
    if dim is None:
        dim = 0 if input.dim() in (0, 1, 3) else 1
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. "
            "Change the call to include dim=X as an argument.",
            stacklevel=stacklevel,
        )
    x = input if dtype is None else input.to(dtype)
    if not x.is_floating_point():
        raise NotImplementedError(f'"{name}" not implemented for {_name(x.dtype)!r}')
    if x.dim() > 0:
        x.size(dim)  # torch's IndexError for a dim out of range
    elif dim not in (0, -1):
        raise IndexError(f"Dimension out of range (expected to be in range of [-1, 0], but got {dim})")
    return x, dim


def _cross_entropy_probabilities(input, target, weight, ignore_index, reduction, label_smoothing,
                                 class_dim):
    if not target.is_floating_point():
        raise RuntimeError(
            f"Expected floating point type for target with class probabilities, got {_name(target.dtype)}"
        )
    if ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    n_classes = input.size(class_dim)
    log_probs = log_softmax(input, class_dim)
    if label_smoothing > 0.0:
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    if weight is not None:
        if weight.numel() != n_classes or weight.dim() != 1:
            raise RuntimeError(
                f"cross_entropy: weight tensor should be defined either for all {n_classes} classes "
                f"or no classes but got weight tensor of shape: {list(weight.shape)}"
            )
        log_probs = log_probs * weight.view(_class_shape(input, class_dim))
    losses = -(log_probs * target).sum(class_dim)
    if reduction == "mean":
        return losses.sum() / (input.numel() / n_classes) if n_classes else losses.sum() / 0
    return _reduce(losses, reduction)


def _smooth_class_indices(log_probs, target, weight, ignore_index, reduction, label_smoothing,
                          class_dim, nll):
    """The ε/C · Σ_c (-w_c log p_c) term of label smoothing, with the weighted-mean denominator."""
    n_classes = log_probs.size(class_dim)
    if input_is_unbatched := log_probs.dim() == 1:
        target = target.reshape(())
    ignored = target == ignore_index
    weighted = log_probs if weight is None else log_probs * weight.view(_class_shape(log_probs, class_dim))
    smooth = -weighted.sum(class_dim)
    smooth = torch.where(ignored, torch.zeros_like(smooth), smooth)
    if reduction == "none":
        total = smooth
    elif reduction == "sum":
        total = smooth.sum()
    elif weight is None:
        total = smooth.sum() / (~ignored).sum()
    else:
        kept = target[~ignored] if not input_is_unbatched else target.reshape(1)[~ignored.reshape(1)]
        total = smooth.sum() / weight[kept.long()].sum()
    return (1 - label_smoothing) * nll + total * (label_smoothing / n_classes)


def _check_nll_shapes(input, target):
    if input.dim() < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.dim()})")
    if input.dim() == 1:
        if target.dim() > 1 or (target.dim() == 1 and target.numel() != 1):
            raise ValueError(
                f"For 1D input, 1D target must have size 1, but got target size: {target.numel()}"
            )
    elif target.dim() == 0 or input.size(0) != target.size(0):
        got = target.size(0) if target.dim() > 0 else 0
        raise ValueError(f"Expected input batch_size ({input.size(0)}) to match target batch_size ({got}).")
    if input.dim() <= 2:
        if target.dim() > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if target.dtype not in (torch.int64, torch.uint8):
            raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_name(target.dtype)}")
    else:
        expected = (input.size(0),) + tuple(input.shape[2:])
        if tuple(target.shape) != expected:
            raise RuntimeError(f"Expected target size {list(expected)}, got {list(target.shape)}")
        if target.dtype != torch.int64:
            raise RuntimeError(f"expected scalar type Long but found {_name(target.dtype)}")


def _check_weight(weight, n_classes, input):
    if weight is None:
        return
    if weight.numel() != n_classes or weight.dim() != 1:
        raise RuntimeError(
            f"weight tensor should be defined either for all {n_classes} classes or no classes "
            f"but got weight tensor of shape: {list(weight.shape)}"
        )
    if weight.dtype != input.dtype:
        raise RuntimeError(f"expected scalar type {_name(input.dtype)} but found {_name(weight.dtype)}")


def _check_bounds(index, ignored, n_classes):
    out = ~ignored & ((index < 0) | (index >= n_classes))
    if out.any():
        raise IndexError(f"Target {index[out].flatten()[0].item()} is out of bounds.")


def _class_shape(input, class_dim):
    shape = [1] * input.dim()
    shape[class_dim] = input.size(class_dim)
    return shape


def _reduction(size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        return _legacy_reduction(size_average, reduce)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _legacy_reduction(size_average, reduce):
    """Map the deprecated ``size_average``/``reduce`` pair to a ``reduction`` string, as torch does."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "none" if not reduce else ("mean" if size_average else "sum")
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
        stacklevel=3,
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
