"""lib.functional's binary losses against torch's, property-based: values, gradients, shapes,
dtypes, broadcast ``weight`` and ``pos_weight``, exception classes and messages.

What tests/test_functional.py already covers is not repeated: there, values with a ``(C,)``
``weight`` and ``pos_weight`` in one dtype, and the clamp at -100; tests/test_argument_checks.py
covers which calls are refused (exception classes) over grids of shapes and dtypes. Here:

- gradients with respect to the input and the target (torch differentiates both losses in the
  target too), also at probabilities 0 and 1 and logits 0, where the textbook formula and
  autograd of the clamped logs disagree with torch;
- ``weight`` of shapes ``(C,)``, ``(N, 1)``, 0-d and the input's, ``pos_weight`` of shapes
  ``(C,)``, ``(1,)`` and 0-d, in float32, float64 and mixed with the input's dtype;
- the exact text of torch's error messages (chapter "Binary and multi-label losses in practice"
  shows them, and the error index lists them).
"""

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import functional as L

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

#: float64: relative 1e-7, since at the 1e-12 floor of x (1 - x) torch and lib round gradients of
#: size 1e12 differently in the last bits.
TOL = {torch.float64: dict(rtol=1e-7, atol=1e-9), torch.float32: dict(rtol=2e-5, atol=2e-5)}
FLOATS = [torch.float32, torch.float64]
FUNCTIONS = ["binary_cross_entropy", "binary_cross_entropy_with_logits"]


def tol(*dtypes):
    return TOL[torch.float32] if torch.float32 in dtypes else TOL[torch.float64]


def call(fn, x, y, weight, pos_weight, reduction):
    kwargs = dict(weight=weight, reduction=reduction)
    if fn.__name__ == "binary_cross_entropy_with_logits":
        kwargs["pos_weight"] = pos_weight
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(x, y, **kwargs)


def outcome(fn, x, y, weight, pos_weight, reduction):
    """The result and the gradients of input and target, or the exception raised."""
    x = x.detach().clone().requires_grad_()
    y = y.detach().clone().requires_grad_(y.is_floating_point())
    try:
        out = call(fn, x, y, weight, pos_weight, reduction)
    except Exception as error:  # noqa: BLE001 - compared with torch's
        return error
    grad_out = torch.linspace(0.5, 2.0, out.numel(), dtype=out.dtype).reshape(out.shape)
    grads = torch.autograd.grad(out, [x, y] if y.requires_grad else [x], grad_out)
    return out.detach(), *grads


def agree(name, x, y, weight=None, pos_weight=None, reduction="mean"):
    theirs = outcome(getattr(F, name), x, y, weight, pos_weight, reduction)
    ours = outcome(getattr(L, name), x, y, weight, pos_weight, reduction)
    if isinstance(theirs, Exception):
        assert type(ours) is type(theirs), (ours, theirs)
        assert str(ours) == str(theirs)
        return
    assert not isinstance(ours, Exception), (ours, "torch returned", theirs)
    dtypes = [t.dtype for t in (x, y, weight, pos_weight) if isinstance(t, torch.Tensor)]
    for what, a, b in zip(["value", "input gradient", "target gradient"], ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, (what, a.shape, b.shape, a.dtype, b.dtype)
        torch.testing.assert_close(a, b, equal_nan=True, **tol(*dtypes), msg=lambda m, what=what: f"{what}: {m}")


@st.composite
def problems(draw, fn):
    """An input, a target and broadcastable weights: shapes, dtypes and values drawn."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    x_dtype, y_dtype = draw(st.sampled_from(FLOATS)), draw(st.sampled_from(FLOATS))
    if fn == "binary_cross_entropy" and draw(st.integers(0, 9)) > 0:
        y_dtype = x_dtype  # mostly valid calls; a mixed pair checks torch's dtype message
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    scale = draw(st.sampled_from([1.0, 5.0, 40.0]))
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
    if draw(st.booleans()):  # exact zeros: logit 0, probability 1/2
        x = torch.where(torch.rand(shape, generator=gen) < 0.3, torch.zeros_like(x), x)
    if fn == "binary_cross_entropy":
        x = torch.sigmoid(x)
        if draw(st.booleans()):  # probabilities exactly 0 and 1
            where = torch.rand(shape, generator=gen) < 0.2
            x = torch.where(where, torch.rand(shape, generator=gen).round().double(), x)
    y = torch.rand(shape, generator=gen, dtype=torch.float64)
    if draw(st.booleans()):
        y = y.round()
    c = shape[-1]
    weights = {"none": None, "(C,)": (c,), "(N, 1)": shape[:-1] + (1,), "0-d": (), "input's": shape}
    w_shape = weights[draw(st.sampled_from(list(weights)))]
    w_dtype = draw(st.sampled_from(FLOATS))
    weight = None if w_shape is None else torch.rand(w_shape, generator=gen, dtype=torch.float64).to(w_dtype) * 2
    pos = {"none": None, "(C,)": (c,), "(1,)": (1,), "0-d": ()}
    p_shape = pos[draw(st.sampled_from(list(pos)))]
    p_dtype = draw(st.sampled_from(FLOATS))
    pos_weight = None if p_shape is None else (torch.rand(p_shape, generator=gen, dtype=torch.float64) * 20).to(p_dtype)
    reduction = draw(st.sampled_from(["none", "mean", "sum"]))
    return x.to(x_dtype), y.to(y_dtype), weight, pos_weight, reduction


@settings(max_examples=150, deadline=None)
@given(problem=problems("binary_cross_entropy_with_logits"))
def test_with_logits_values_and_gradients(problem):
    x, y, weight, pos_weight, reduction = problem
    agree("binary_cross_entropy_with_logits", x, y, weight, pos_weight, reduction)


@settings(max_examples=150, deadline=None)
@given(problem=problems("binary_cross_entropy"))
def test_bce_values_and_gradients(problem):
    x, y, weight, _, reduction = problem
    agree("binary_cross_entropy", x, y, weight, None, reduction)


@pytest.mark.parametrize("dtype", FLOATS)
def test_gradients_where_the_textbook_formula_breaks(dtype):
    """Probabilities 0 and 1 (torch: (x - y) / max(x (1 - x), 1e-12); the target's gradient
    log(1 - x) - log x is infinite there) and logit 0 (σ(0) = 1/2; |x| has no derivative at 0)."""
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 1e-13, 1e-40, 0.5], dtype=dtype)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.25], dtype=dtype)
    agree("binary_cross_entropy", p, y, reduction="sum")
    z = torch.zeros(4, dtype=dtype)
    agree("binary_cross_entropy_with_logits", z, torch.tensor([0.0, 1.0, 0.5, 1.0], dtype=dtype),
          pos_weight=torch.tensor(3.0, dtype=dtype), reduction="none")


def test_pos_weight_multiplies_only_the_positive_term():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    y = torch.rand(6, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64).round()
    p = torch.tensor([0.5, 1.0, 4.0, 19.0], dtype=torch.float64)
    expected = -(p * y * F.logsigmoid(x) + (1 - y) * F.logsigmoid(-x))
    torch.testing.assert_close(L.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction="none"), expected,
                               rtol=1e-12, atol=1e-12)


x23 = torch.full((2, 3), 0.25)
y23 = torch.ones(2, 3)
BAD = {
    "integer target, with logits": lambda f: f.binary_cross_entropy_with_logits(x23, y23.long()),
    "class indices, with logits": lambda f: f.binary_cross_entropy_with_logits(x23, torch.tensor([0.0, 2.0])),
    "(N, 1) input, (N,) target": lambda f: f.binary_cross_entropy_with_logits(x23[:, :1], torch.ones(2)),
    "class indices, BCE": lambda f: f.binary_cross_entropy(x23, torch.tensor([0.0, 2.0])),
    "integer target, BCE": lambda f: f.binary_cross_entropy(x23, y23.long()),
    "double target, BCE": lambda f: f.binary_cross_entropy(x23, y23.double()),
    "probability above 1": lambda f: f.binary_cross_entropy(x23 * 5, y23),
    "pos_weight per sample": lambda f: f.binary_cross_entropy_with_logits(x23, y23, pos_weight=torch.ones(2)),
    "pos_weight (C,) on (N, C, H, W)": lambda f: f.binary_cross_entropy_with_logits(
        torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4), pos_weight=torch.ones(3)),
    "weight per sample as (N,)": lambda f: f.binary_cross_entropy_with_logits(x23, y23, weight=torch.ones(2)),
    "weight per sample as (N,), BCE": lambda f: f.binary_cross_entropy(x23, y23, weight=torch.ones(2)),
    "bad reduction": lambda f: f.binary_cross_entropy_with_logits(x23, y23, reduction="avg"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_errors_have_torchs_class_and_message(case):
    with pytest.raises(Exception) as theirs:
        BAD[case](F)
    with pytest.raises(Exception) as ours:
        BAD[case](L)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)
