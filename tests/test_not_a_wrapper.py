"""lib.functional is not a wrapper: no path from it reaches torch's softmax, log-sum-exp or loss kernels.

Every public function runs forward and backward (second derivatives too) with every option,
while two recorders watch:

* a ``TorchDispatchMode`` records every ATen operator that reaches the dispatcher, whatever
  the Python route to it (``torch.special.*``, ``torch.ops.aten.*``, ``Tensor`` methods,
  ``torch.nn.functional``, C++ backward formulas, an ``autograd.Function``'s backward);
* a ``TorchFunctionMode`` records every torch function called from Python, by name. It is
  needed for the CompositeImplicitAutograd operators, which decompose before the dispatcher:
  ``torch.kl_div(..., log_target=True)`` reaches it only as ``sub``, ``exp``, ``mul``, ``mean``,
  and ``aten::cross_entropy_loss`` only as ``_log_softmax`` and ``nll_loss_forward``.

The backward passes run through the autograd engine directly, not through ``Tensor.backward``
or ``torch.autograd.grad``: those two are torch functions themselves, and a
``TorchFunctionMode`` switches itself off while it handles one, which would hide the Python
code of lib's hand-written backward passes.

The forbidden operators (``FORBIDDEN_ATEN``), and why each family is in the list:

* softmax and log-softmax, forward and backward, every variant (``_softmax``,
  ``_log_softmax``, ``*_backward_data``, ``special_*``, ``_safe_softmax``, masked, sparse,
  nested): the book builds them from ``exp``, ``amax`` and ``sum``;
* log-sum-exp in any form (``logsumexp``, ``special_logsumexp``, ``logcumsumexp``,
  ``logaddexp``, ``logaddexp2``, a two-term log-sum-exp): the shift by the maximum is the
  book's point;
* every loss kernel (every ATen operator whose name holds ``loss``, ``cross_entropy``,
  ``kl_div``): lib is the loss;
* ``log_sigmoid`` and ``softplus`` (``softplus(x) = -log σ(-x)``): the stable
  ``log σ(x) = -(max(-x, 0) + log1p(exp(-|x|)))`` is what ``binary_cross_entropy_with_logits``
  shows; ``sigmoid`` too, because lib's docstring promises the loss "without forming σ(x)"
  (tests/test_functional.py forbids ``torch.sigmoid`` for the same reason);
* ``xlogy``, ``special_xlogy``, ``special_xlog1py``, ``special_entr``: these are elementwise
  math, not loss kernels, but they hold the convention ``0 · log 0 = 0``, the one
  non-obvious step of ``kl_div`` (torch's own ``kl_div`` calls ``xlogy`` for it); lib spells
  it out with ``where``, and tests/test_functional.py forbids ``torch.xlogy`` too.

Allowed although their names match (``ALLOWED_DESPITE_NAME``): ``hardsigmoid`` (piecewise
linear, no sigmoid), ``logit`` and ``special_logit`` (the inverse of σ, not a loss) and
``poisson`` (random sampling). ``test_forbidden_list_is_complete`` checks that every ATen
operator of the installed torch whose name matches is in one of the two lists, so a new
kernel in a new torch release is classified here before it can slip through.

At the Python level the forbidden names are the same, without overload, plus every
function of ``torch.nn.functional`` that is a softmax, a sigmoid or a loss
(``FORBIDDEN_PYTHON``).
"""

import itertools
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from lib import functional as L

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


FORBIDDEN_ATEN = {
    # softmax and log-softmax
    "softmax", "_softmax", "_softmax_backward_data", "log_softmax", "_log_softmax",
    "_log_softmax_backward_data", "special_softmax", "special_log_softmax", "_safe_softmax",
    "_masked_softmax", "_masked_softmax_backward", "_sparse_softmax", "_sparse_log_softmax",
    "_sparse_softmax_backward_data", "_sparse_log_softmax_backward_data",
    "_nested_tensor_softmax_with_shape",
    # log-sum-exp
    "logsumexp", "special_logsumexp", "logcumsumexp", "_logcumsumexp", "logaddexp", "logaddexp2",
    # losses
    "cross_entropy_loss", "nll_loss", "nll_loss_nd", "nll_loss_forward", "nll_loss_backward",
    "nll_loss2d", "nll_loss2d_forward", "nll_loss2d_backward", "binary_cross_entropy",
    "binary_cross_entropy_backward", "binary_cross_entropy_with_logits", "kl_div",
    "poisson_nll_loss", "multilabel_margin_loss", "multilabel_margin_loss_forward",
    "multilabel_margin_loss_backward", "multi_margin_loss", "multi_margin_loss_backward",
    "soft_margin_loss", "soft_margin_loss_backward", "margin_ranking_loss", "hinge_embedding_loss",
    "cosine_embedding_loss", "triplet_margin_loss", "mse_loss", "mse_loss_backward", "l1_loss",
    "huber_loss", "huber_loss_backward", "smooth_l1_loss", "smooth_l1_loss_backward", "ctc_loss",
    "_ctc_loss", "_ctc_loss_backward", "_cudnn_ctc_loss", "miopen_ctc_loss", "_use_cudnn_ctc_loss",
    "_use_miopen_ctc_loss",
    # sigmoid, log-sigmoid, softplus
    "sigmoid", "sigmoid_", "sigmoid_backward", "_foreach_sigmoid", "_foreach_sigmoid_",
    "log_sigmoid", "log_sigmoid_forward", "log_sigmoid_backward", "softplus", "softplus_backward",
    # 0 · log 0 = 0
    "xlogy", "xlogy_", "special_xlogy", "special_xlog1py", "special_entr",
}
ALLOWED_DESPITE_NAME = {"hardsigmoid", "hardsigmoid_", "hardsigmoid_backward", "logit", "logit_",
                        "logit_backward", "special_logit", "poisson"}
SUSPICIOUS = re.compile(r"softmax|logsumexp|logcumsumexp|logaddexp|loss|cross_entropy|kl_div|sigmoid|"
                        r"softplus|xlogy|xlog1py|entr$|logit")
FORBIDDEN_PYTHON = FORBIDDEN_ATEN | {
    "softmin", "gumbel_softmax", "logsigmoid", "cross_entropy", "nll_loss", "gaussian_nll_loss",
    "binary_cross_entropy_with_logits", "linear_cross_entropy", "kl_div", "special_expit",
    "expit", "multilabel_soft_margin_loss", "multilabel_margin_loss", "cosine_embedding_loss",
}


def _aten_name(op):
    """``aten::_log_softmax`` and ``_log_softmax.default`` both become ``_log_softmax``."""
    return op._schema.name.split("::", 1)[-1]


def _python_name(func):
    if isinstance(func, torch._ops.OpOverload):
        return _aten_name(func)
    if isinstance(func, torch._ops.OpOverloadPacket):
        return func._qualified_op_name.split("::", 1)[-1]
    return getattr(func, "__name__", repr(func))


class _Dispatched(TorchDispatchMode):
    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.append(("aten", _aten_name(func)))
        return func(*args, **(kwargs or {}))


class _Called(TorchFunctionMode):
    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.append(("python", _python_name(func)))
        return func(*args, **(kwargs or {}))


def _grad(outputs, inputs, create_graph=False):
    """Gradients through the autograd engine itself (see the module docstring for why)."""
    outputs = (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)
    seeds = tuple(torch.ones_like(o) for o in outputs)
    return torch.autograd.Variable._execution_engine.run_backward(
        outputs, seeds, create_graph, create_graph, tuple(inputs), True)


def run_recorded(call, inputs, second_order=False):
    """Run ``call()``, its backward to ``inputs`` (and a second backward), recording every op."""
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _Dispatched(seen), _Called(seen):
            out = call()
            grads = _grad(out.sum(), inputs, create_graph=second_order)
            if second_order:
                used = [(g, x) for g, x in zip(grads, inputs, strict=True) if g is not None and g.requires_grad]
                if used:
                    _grad(sum((g * g).sum() for g, _ in used), [x for _, x in used])
    return seen


def forbidden(seen):
    names = {"aten": FORBIDDEN_ATEN, "python": FORBIDDEN_PYTHON}
    return sorted({f"{level}: {name}" for level, name in seen if name in names[level]})


# --- the cases: every public function, every option --------------------------------------------

def _gen(seed):
    return torch.Generator().manual_seed(seed)


LAYOUTS = {"1-d": (5,), "2-d": (4, 5), "3-d": (3, 5, 2), "4-d": (2, 5, 2, 2), "5-d": (2, 5, 2, 1, 2)}


def classification_cases():
    for (layout, shape), dtype, target_kind, weighted, ignore_index, reduction, smoothing in itertools.product(
            LAYOUTS.items(), [torch.float32, torch.float64, torch.bfloat16],
            ["int64", "uint8", "probabilities"], [False, True], [-100, 1], ["mean", "sum", "none"], [0.0, 0.2]):
        if target_kind == "uint8" and len(shape) > 2:
            continue  # torch takes uint8 class indices for 1-d and 2-d inputs only
        if target_kind == "probabilities" and ignore_index >= 0:
            continue
        yield pytest.param(shape, dtype, target_kind, weighted, ignore_index, reduction, smoothing,
                           id=f"{layout}-{str(dtype)[6:]}-{target_kind}-w{int(weighted)}-ii{ignore_index}"
                              f"-{reduction}-ls{smoothing}")


def _classification_inputs(shape, dtype, target_kind, weighted, ignore_index):
    x = torch.randn(shape, generator=_gen(0), dtype=torch.float64).to(dtype).requires_grad_()
    class_dim = 0 if len(shape) == 1 else 1
    n_classes = shape[class_dim]
    if target_kind == "probabilities":
        target = torch.rand(shape, generator=_gen(1), dtype=torch.float64).to(dtype).requires_grad_()
    else:
        index_shape = shape[:class_dim] + shape[class_dim + 1:]
        target = torch.randint(0, n_classes, index_shape, generator=_gen(1))
        if target.dim():
            target.view(-1)[0] = ignore_index
        target = target.to(torch.uint8) if target_kind == "uint8" else target
    weight = torch.rand(n_classes, generator=_gen(2), dtype=torch.float64).to(dtype) if weighted else None
    return x, target, weight


@pytest.mark.parametrize("shape, dtype, target_kind, weighted, ignore_index, reduction, smoothing",
                         list(classification_cases()))
def test_cross_entropy_and_nll_loss_reach_no_forbidden_op(shape, dtype, target_kind, weighted,
                                                          ignore_index, reduction, smoothing):
    x, target, weight = _classification_inputs(shape, dtype, target_kind, weighted, ignore_index)
    inputs = [x] + ([target] if target.requires_grad else [])
    second = dtype == torch.float64
    seen = run_recorded(lambda: L.cross_entropy(x, target, weight, ignore_index=ignore_index, reduction=reduction,
                                                label_smoothing=smoothing), inputs, second)
    assert not forbidden(seen), forbidden(seen)
    if target_kind != "probabilities" and smoothing == 0:
        seen = run_recorded(lambda: L.nll_loss(x, target, weight, ignore_index=ignore_index, reduction=reduction),
                            [x], second)
        assert not forbidden(seen), forbidden(seen)
    assert any(level == "aten" for level, _ in seen)  # the recorder saw the computation


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(), (5,), (3, 5), (2, 3, 4), (0, 4)])
def test_softmax_and_log_softmax_reach_no_forbidden_op(shape, dtype):
    x = torch.randn(shape, generator=_gen(3), dtype=torch.float64).to(dtype).requires_grad_()
    for fn, dim, out_dtype in itertools.product([L.softmax, L.log_softmax], [None, 0, -1],
                                                [None, torch.float64]):
        seen = run_recorded(lambda fn=fn, dim=dim, out_dtype=out_dtype: fn(x, dim, dtype=out_dtype), [x],
                            second_order=dtype == torch.float64)
        assert not forbidden(seen), (fn.__name__, dim, out_dtype, forbidden(seen))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(), (5,), (3, 5), (2, 3, 4), (0, 4)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_losses_reach_no_forbidden_op(shape, dtype, reduction):
    logits = (torch.randn(shape, generator=_gen(4), dtype=torch.float64) * 3).to(dtype).requires_grad_()
    probs = torch.rand(shape, generator=_gen(5), dtype=torch.float64).to(dtype).requires_grad_()
    target = torch.rand(shape, generator=_gen(6), dtype=torch.float64).to(dtype).requires_grad_()
    last = shape[-1:]
    weight = torch.rand(last, generator=_gen(7), dtype=torch.float64).to(dtype)
    pos_weight = (torch.rand(last, generator=_gen(8), dtype=torch.float64) * 3).to(dtype).requires_grad_()
    second = dtype == torch.float64
    for w, pw in itertools.product([None, weight], [None, pos_weight]):
        seen = run_recorded(lambda w=w, pw=pw: L.binary_cross_entropy_with_logits(logits, target, w,
                                                                                   reduction=reduction,
                                                                                   pos_weight=pw),
                            [logits, target] + ([pw] if pw is not None else []), second)
        assert not forbidden(seen), forbidden(seen)
    for w in [None, weight]:
        seen = run_recorded(lambda w=w: L.binary_cross_entropy(probs, target, w, reduction=reduction),
                            [probs, target], second)
        assert not forbidden(seen), forbidden(seen)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(), (5,), (3, 5), (2, 3, 4), (0, 4)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
def test_kl_div_reaches_no_forbidden_op(shape, dtype, reduction):
    log_q = torch.randn(shape, generator=_gen(9), dtype=torch.float64).to(dtype).requires_grad_()
    p = torch.rand(shape, generator=_gen(10), dtype=torch.float64)
    if p.numel():
        p.view(-1)[0] = 0.0  # the 0 · log 0 = 0 case
    for log_target in [False, True]:
        target = (p.log() if log_target else p).to(dtype).requires_grad_()
        seen = run_recorded(lambda target=target, log_target=log_target: L.kl_div(log_q, target, reduction=reduction,
                                                                                  log_target=log_target),
                            [log_q, target], second_order=dtype == torch.float64)
        assert not forbidden(seen), forbidden(seen)


def test_legacy_arguments_reach_no_forbidden_op():
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, 2, 1, 1])
    p = torch.rand(4, 3)
    for size_average, reduce in [(True, None), (False, None), (None, False), (False, True)]:
        legacy = {"size_average": size_average, "reduce": reduce}
        for call in [lambda legacy=legacy: L.cross_entropy(x, y, **legacy),
                     lambda legacy=legacy: L.nll_loss(x, y, **legacy),
                     lambda legacy=legacy: L.kl_div(x, p, **legacy),
                     lambda legacy=legacy: L.binary_cross_entropy(p.requires_grad_(), p.detach().round(), **legacy),
                     lambda legacy=legacy: L.binary_cross_entropy_with_logits(x, p, **legacy)]:
            seen = run_recorded(call, [x])
            assert not forbidden(seen), forbidden(seen)


# --- the recorder itself --------------------------------------------------------------------

def test_forbidden_list_is_complete():
    """Every ATen operator of this torch whose name looks like a softmax, sigmoid or loss is classified."""
    names = {schema.name.split("::", 1)[1] for schema in torch._C._jit_get_all_schemas()
             if schema.name.startswith("aten::")}
    unclassified = sorted(n for n in names if SUSPICIOUS.search(n) and n not in FORBIDDEN_ATEN | ALLOWED_DESPITE_NAME)
    assert not unclassified, unclassified
    assert not ALLOWED_DESPITE_NAME & FORBIDDEN_ATEN


def _wrapped_routes():
    """Ways a wrapper could reach torch's kernels; each must be caught."""
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, 2, 1, 1])
    p = torch.rand(4, 3)
    return {
        "torch.special.log_softmax": lambda: torch.special.log_softmax(x, 1),
        "torch.special.softmax": lambda: torch.special.softmax(x, 1),
        "torch.ops.aten.cross_entropy_loss": lambda: torch.ops.aten.cross_entropy_loss(x, y),
        "torch.ops.aten._log_softmax": lambda: torch.ops.aten._log_softmax(x, 1, False),
        "F.cross_entropy": lambda: F.cross_entropy(x, y),
        "F.cross_entropy, probabilities": lambda: F.cross_entropy(x, p),
        "Tensor.log_softmax": lambda: x.log_softmax(1),
        "Tensor.softmax": lambda: x.softmax(1),
        "torch.logsumexp": lambda: x - torch.logsumexp(x, 1, keepdim=True),
        "torch.logaddexp": lambda: torch.logaddexp(x, torch.zeros(())),
        "F.nll_loss": lambda: F.nll_loss(x, y),
        "torch._C._nn.nll_loss_nd": lambda: torch._C._nn.nll_loss_nd(x, y, None, 1, -100),
        "F.binary_cross_entropy": lambda: F.binary_cross_entropy(p.requires_grad_(), p.detach()),
        "F.binary_cross_entropy_with_logits": lambda: F.binary_cross_entropy_with_logits(x, p),
        "F.logsigmoid": lambda: F.logsigmoid(x),
        "F.softplus": lambda: F.softplus(x),
        "torch.sigmoid": lambda: torch.sigmoid(x),
        "F.kl_div": lambda: F.kl_div(x, p, reduction="sum"),
        "torch.kl_div, log_target": lambda: torch.kl_div(x, p.log(), reduction=1, log_target=True),
        "torch.xlogy": lambda: torch.xlogy(p, p) - p * x,
        "torch.special.entr": lambda: torch.special.entr(p) + x,
    }


@pytest.mark.parametrize("route", list(_wrapped_routes()))
def test_the_recorder_catches_every_route_to_torch(route):
    call = _wrapped_routes()[route]
    x = torch.randn(4, 3, requires_grad=True)  # a leaf for the backward; the routes use their own
    seen = run_recorded(lambda: call() + 0 * x.sum(), [x])
    assert forbidden(seen), f"{route} went unnoticed: {sorted(set(seen))}"


def test_the_recorder_sees_a_hand_written_backward():
    """A forbidden op called only in an autograd.Function's backward is caught at both levels."""
    class Sneaky(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * torch.special.softmax(x, 0)

    x = torch.randn(3, requires_grad=True)
    seen = run_recorded(lambda: Sneaky.apply(x), [x])
    assert ("aten", "_softmax") in seen and ("python", "special_softmax") in seen
