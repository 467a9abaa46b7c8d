"""lib.functional.linear_cross_entropy against torch 2.13's reference path, and its memory.

The reference is what torch's own docstring calls the reference implementation,
``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``: the loss and the
gradients of the input, the linear weight and the bias must agree for every option, every
chunk size (dividing N or not), float32 and float64. Errors: the class and message of torch's
``F.linear_cross_entropy``. Memory: counted with :mod:`lib.memory`, no tensor of N x C
elements is created in the forward or backward pass.
"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_not_a_wrapper import forbidden, run_recorded

from lib import functional as L
from lib import memory

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TOLERANCES = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-9, "atol": 1e-10}}


def reference(x, W, target, *, linear_bias=None, ignore_index=None, **options):
    """torch's reference path, ``ignore_index=None`` mapped as ``F.linear_cross_entropy`` maps it."""
    ignore_index = -100 if ignore_index is None else ignore_index
    return F.cross_entropy(F.linear(x, W, linear_bias), target, ignore_index=ignore_index, **options)


def values_and_grads(fn, x, W, b, target, upstream_seed, **options):
    """The loss and the gradients of x, W (and b, and a probability target: torch differentiates
    with respect to it) of ``fn``, with a random upstream gradient."""
    leaves = [t.detach().requires_grad_() for t in (x, W, b) if t is not None]
    bias = leaves[2] if b is not None else None
    if target.is_floating_point():
        target = target.detach().requires_grad_()
        leaves.append(target)
    loss = fn(leaves[0], leaves[1], target, linear_bias=bias, **options)
    upstream = (torch.rand(loss.shape, generator=torch.Generator().manual_seed(upstream_seed), dtype=torch.float64)
                + 0.5).to(loss.dtype)
    grads = torch.autograd.grad((loss * upstream).sum(), leaves)
    return (loss.detach(), *grads)


@st.composite
def problems(draw):
    n = draw(st.integers(0, 9))
    h = draw(st.integers(1, 5))
    c = draw(st.integers(1, 8))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, generator=g, dtype=dtype) * 2
    W = torch.randn(c, h, generator=g, dtype=dtype)
    b = torch.randn(c, generator=g, dtype=dtype) if draw(st.booleans()) else None
    options = {"reduction": draw(st.sampled_from(["mean", "sum", "none"])),
               "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))}
    if draw(st.booleans()):
        options["weight"] = torch.rand(c, generator=g, dtype=dtype) * 2 + 0.1
    if draw(st.booleans()):  # class probabilities (ignore_index must stay None)
        target = torch.rand(n, c, generator=g, dtype=dtype)
        target = target / target.sum(1, keepdim=True)
    else:
        target = torch.randint(0, c, (n,), generator=g)
        ignore_index = draw(st.sampled_from([None, -100, 0, c - 1]))
        options["ignore_index"] = ignore_index
        kind = draw(st.sampled_from(["none", "some", "all"]))
        ignored = -100 if ignore_index is None else ignore_index
        if kind == "all":
            target[:] = ignored
        elif kind == "some":
            target[torch.rand(n, generator=g) < 0.4] = ignored
    chunk = draw(st.integers(1, max(n, 1) + 2))
    return x, W, b, target, options, chunk, seed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_values_and_gradients_equal_torchs_reference_path(problem):
    x, W, b, target, options, chunk, seed = problem
    expected = values_and_grads(reference, x, W, b, target, seed, **options)
    got = values_and_grads(L.linear_cross_entropy, x, W, b, target, seed, chunk_size=chunk, **options)
    for e, g in zip(expected, got, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        torch.testing.assert_close(g, e, equal_nan=True, **TOLERANCES[x.dtype])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target_kind", ["index", "probabilities"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_unbatched_input_equals_torchs(reduction, target_kind, smoothing):
    g = torch.Generator().manual_seed(1)
    x, W, b = torch.randn(4, generator=g), torch.randn(6, 4, generator=g), torch.randn(6, generator=g)
    target = torch.tensor(2) if target_kind == "index" else torch.rand(6, generator=g).softmax(0)
    options = {"reduction": reduction, "label_smoothing": smoothing}
    expected = values_and_grads(F.linear_cross_entropy, x, W, b, target, 0, **options)
    got = values_and_grads(L.linear_cross_entropy, x, W, b, target, 0, **options)
    for e, g_ in zip(expected, got, strict=True):
        assert g_.shape == e.shape
        torch.testing.assert_close(g_, e)


def test_all_ignored_mean_is_nan_with_zero_gradients_as_torchs():
    x, W = torch.randn(5, 3), torch.randn(4, 3)
    target = torch.full((5,), -100)
    expected = values_and_grads(reference, x, W, None, target, 0)
    got = values_and_grads(L.linear_cross_entropy, x, W, None, target, 0, chunk_size=2)
    assert got[0].isnan() and expected[0].isnan()
    for e, g in zip(expected[1:], got[1:], strict=True):
        assert torch.equal(g, e) and not g.any()


def test_half_precision_is_computed_in_float32_and_rounded():
    g = torch.Generator().manual_seed(2)
    x, W = torch.randn(16, 8, generator=g), torch.randn(20, 8, generator=g)
    target = torch.randint(0, 20, (16,), generator=g)
    for dtype in (torch.bfloat16, torch.float16):
        expected = values_and_grads(reference, x.to(dtype).double(), W.to(dtype).double(), None, target, 0)
        got = values_and_grads(L.linear_cross_entropy, x.to(dtype), W.to(dtype), None, target, 0, chunk_size=5)
        for e, g_ in zip(expected, got, strict=True):
            assert g_.dtype == dtype
            torch.testing.assert_close(g_.double(), e, rtol=2e-2, atol=2e-3)


def test_without_gradients_only_the_loss_is_computed():
    g = torch.Generator().manual_seed(3)
    x, W = torch.randn(30, 4, generator=g), torch.randn(50, 4, generator=g)
    target = torch.randint(0, 50, (30,), generator=g)
    with torch.no_grad():
        loss, made = memory.allocations(L.linear_cross_entropy, x, W, target, chunk_size=7)
    torch.testing.assert_close(loss, reference(x, W, target))
    assert loss.grad_fn is None
    assert max(a.nbytes for a in made) <= 7 * 50 * 4  # no gradient buffer of W (50 x 4 x 4 bytes = 800)


def test_the_probability_target_is_not_modified():
    g = torch.Generator().manual_seed(4)
    x, W = torch.randn(6, 3, generator=g, requires_grad=True), torch.randn(5, 3, generator=g)
    target = torch.rand(6, 5, generator=g).softmax(1)
    kept = target.clone()
    L.linear_cross_entropy(x, W, target, chunk_size=4).backward()
    assert torch.equal(target, kept)


# --- memory: no N x C tensor ---------------------------------------------------------------------

N, H, C, CHUNK = 96, 4, 40, 16  # the gradients of the input (N x H) and weight (C x H) are smaller than a chunk


@pytest.mark.parametrize("case", ["mean", "sum", "none", "weight+smoothing", "probabilities", "bias"])
def test_forward_and_backward_allocate_no_n_by_c_tensor(case):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(N, H, generator=g, requires_grad=True)
    W = torch.randn(C, H, generator=g, requires_grad=True)
    b = torch.randn(C, generator=g, requires_grad=True) if case == "bias" else None
    target = torch.randint(0, C, (N,), generator=g)
    options = {"reduction": case if case in ("mean", "sum", "none") else "mean"}
    if case == "weight+smoothing":
        options.update(weight=torch.rand(C, generator=g) + 0.5, label_smoothing=0.1)
    if case == "probabilities":
        target = torch.rand(N, C, generator=g).softmax(1)

    def forward_backward():
        L.linear_cross_entropy(x, W, target, linear_bias=b, chunk_size=CHUNK, **options).sum().backward()

    _, made = memory.allocations(forward_backward)
    largest = max(a.nbytes // 4 for a in made)
    assert largest <= CHUNK * C < N * C, [a for a in made if a.nbytes // 4 > CHUNK * C]
    # the test can fail: the reference path creates N x C tensors
    _, made = memory.allocations(lambda: reference(x, W, target, linear_bias=b, **options).sum().backward())
    assert max(a.nbytes // 4 for a in made) >= N * C


def test_the_default_chunk_is_half_the_input_features_at_least_64():
    assert L._lce_default_chunk_size(1024) == 512 and L._lce_default_chunk_size(4095) == 2048
    assert L._lce_default_chunk_size(8) == 64
    x = torch.randn(300, 8, requires_grad=True)
    W = torch.randn(60, 8)
    _, made = memory.allocations(lambda: L.linear_cross_entropy(x, W, torch.zeros(300, dtype=torch.long)).backward())
    assert max(a.nbytes // 4 for a in made) == 64 * 60  # one chunk's logits, larger than x's gradient (300 x 8)


# --- autograd: what the chunked forward cannot do ---------------------------------------------------

def test_a_second_backward_raises_for_the_scalar_reductions():
    x = torch.randn(6, 3, requires_grad=True)
    loss = L.linear_cross_entropy(x, torch.randn(5, 3), torch.randint(0, 5, (6,)))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward called twice"):
        loss.backward()


def test_reduction_none_recomputes_so_a_second_backward_works():
    x = torch.randn(6, 3, requires_grad=True)
    W = torch.randn(5, 3)
    target = torch.randint(0, 5, (6,))
    loss = L.linear_cross_entropy(x, W, target, reduction="none", chunk_size=4).sum()
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_second_derivatives_raise(reduction):
    x = torch.randn(6, 3, requires_grad=True)
    loss = L.linear_cross_entropy(x, torch.randn(5, 3), torch.randint(0, 5, (6,)), reduction=reduction)
    with pytest.raises(RuntimeError, match="second derivatives"):
        torch.autograd.grad(loss.sum(), x, create_graph=True)


@pytest.mark.parametrize("options", [{}, {"reduction": "none"}, {"label_smoothing": 0.2, "weight": "w"},
                                     {"probabilities": True, "reduction": "sum"}])
def test_reaches_no_forbidden_op(options):
    options = dict(options)
    x = torch.randn(7, 3, requires_grad=True)
    W = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    target = torch.rand(7, 5).softmax(1) if options.pop("probabilities", False) else torch.randint(0, 5, (7,))
    if options.get("weight") == "w":
        options["weight"] = torch.rand(5) + 0.5
    seen = run_recorded(lambda: L.linear_cross_entropy(x, W, target, linear_bias=b, chunk_size=3, **options),
                        [x, W, b])
    assert seen and forbidden(seen) == []


# --- errors: torch's classes and messages ---------------------------------------------------------

def _bad_calls():
    x, W, y = torch.randn(5, 4), torch.randn(7, 4), torch.randint(0, 7, (5,))
    probs = torch.rand(5, 7).softmax(1)
    return {
        "3-d input": ((torch.randn(2, 5, 4), W, torch.randint(0, 7, (2, 5))), {}),
        "1-d weight": ((x, W[0], y), {}),
        "in_features": ((x, W[:, :3], y), {}),
        "bias shape": ((x, W, y), {"linear_bias": torch.ones(6)}),
        "probabilities with ignore_index": ((x, W, probs), {"ignore_index": -100}),
        "weight dtype of linear": ((x, W.double(), y), {}),
        "bias dtype": ((x, W, y), {"linear_bias": torch.ones(7).double()}),
        "integer input": ((x.long(), W.long(), y), {}),
        "reduction": ((x, W, y), {"reduction": "batchmean"}),
        "target dtype": ((x, W, y.int()), {}),
        "target batch": ((x, W, y[:4]), {}),
        "target out of bounds": ((x, W, torch.full((5,), 7)), {}),
        "class weight shape": ((x, W, y), {"weight": torch.ones(6)}),
        "class weight dtype": ((x, W, y), {"weight": torch.ones(7).double()}),
        "label smoothing": ((x, W, y), {"label_smoothing": 1.5}),
        "probabilities class weight": ((x, W, probs), {"weight": torch.ones(6)}),
        "integer probabilities": ((x, W, probs.long()), {}),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
def test_errors_have_torchs_class_and_message(case):
    args, kwargs = _bad_calls()[case]
    with pytest.raises(Exception) as expected:
        F.linear_cross_entropy(*args, **kwargs)
    with pytest.raises(expected.type) as got:
        L.linear_cross_entropy(*args, **kwargs)
    assert str(got.value) == str(expected.value)


def test_k_dimensional_weight_and_bad_chunk_size_raise_clear_errors():
    x, y = torch.randn(5, 4), torch.randint(0, 7, (5,))
    with pytest.raises(NotImplementedError, match="K-dimensional"):
        L.linear_cross_entropy(x, torch.randn(7, 3, 4), torch.randint(0, 7, (5, 3)))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size must be a positive int"):
            L.linear_cross_entropy(x, torch.randn(7, 4), y, chunk_size=bad)
