"""lib.imbalance against independent formulas, torch's cross-entropy and autograd (property-based).

The binary focal loss is compared with torchvision's formula written out here directly
(torchvision is not a dependency): ``p = sigmoid(x)``, ``ce = BCEWithLogits(x, t)``,
``p_t = p t + (1 - p)(1 - t)``, ``loss = alpha_t (1 - p_t)^gamma ce``.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import functional as L
from lib.imbalance import focal_loss, sigmoid_focal_loss

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

reductions = st.sampled_from(["none", "mean", "sum"])
gammas = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5])


@st.composite
def multiclass(draw, dtype=torch.float64):
    """Logits of shape (C), (N, C) or (N, C, d), targets with some ignored, an optional weight."""
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    c = draw(st.integers(2, 6))
    layout = draw(st.sampled_from(["1-d", "2-d", "3-d"]))
    n, d = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    shape = {"1-d": (c,), "2-d": (n, c), "3-d": (n, c, d)}[layout]
    scale = draw(st.sampled_from([0.5, 3.0, 10.0]))
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype)
    t_shape = {"1-d": (), "2-d": (n,), "3-d": (n, d)}[layout]
    ignore_index = draw(st.sampled_from([-100, 1]))
    t = torch.randint(0, c, t_shape, generator=gen)
    if layout != "1-d" and draw(st.booleans()):
        t.view(-1)[0] = ignore_index
    w = (torch.rand(c, generator=gen, dtype=torch.float64) * 3 + 0.1).to(dtype) if draw(st.booleans()) else None
    return x, t, w, ignore_index


def independent_focal(x, t, w, gamma, ignore_index, reduction):
    """The focal loss from torch's softmax, one position at a time, in float64."""
    x = x.double()
    class_dim = 0 if x.dim() == 1 else 1
    p = torch.softmax(x, class_dim).movedim(class_dim, -1).reshape(-1, x.shape[class_dim])
    flat = t.reshape(-1)
    losses, weights = [], []
    for row, y in zip(p, flat.tolist(), strict=True):
        if y == ignore_index:
            losses.append(0.0)
            weights.append(0.0)
            continue
        wy = 1.0 if w is None else float(w[y])
        pt = float(row[y])
        losses.append(-wy * (1 - pt) ** gamma * math.log(pt))
        weights.append(wy)
    losses = torch.tensor(losses, dtype=torch.float64)
    if reduction == "none":
        return losses.reshape(t.shape)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / sum(weights)


@settings(max_examples=200, deadline=None)
@given(case=multiclass(), gamma=gammas, reduction=reductions)
def test_focal_loss_matches_the_formula(case, gamma, reduction):
    x, t, w, ii = case
    expected = independent_focal(x, t, w, gamma, ii, reduction)
    got = focal_loss(x, t, w, gamma=gamma, ignore_index=ii, reduction=reduction)
    assert got.shape == expected.shape and got.dtype == x.dtype
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(case=multiclass(), reduction=reductions, dtype=st.sampled_from([torch.float32, torch.float64]))
def test_gamma_zero_is_cross_entropy(case, reduction, dtype):
    x, t, w, ii = case
    x = x.to(dtype)
    w = None if w is None else w.to(dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    ref = F.cross_entropy(x, t, w, ignore_index=ii, reduction=reduction)
    got = focal_loss(x, t, w, gamma=0.0, ignore_index=ii, reduction=reduction)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    assert torch.allclose(got, ref, equal_nan=True, **tol)
    assert torch.allclose(got, L.cross_entropy(x, t, w, ignore_index=ii, reduction=reduction), equal_nan=True, **tol)


@settings(max_examples=100, deadline=None)
@given(case=multiclass(), gamma=gammas, reduction=st.sampled_from(["mean", "sum"]))
def test_focal_loss_gradient_matches_finite_differences(case, gamma, reduction):
    x, t, w, ii = case
    if reduction == "mean" and bool((t == ii).all()):
        return  # 0/0: no target left
    x = (x / 3).requires_grad_()  # moderate logits: central differences stay accurate
    loss = focal_loss(x, t, w, gamma=gamma, ignore_index=ii, reduction=reduction)
    grad, = torch.autograd.grad(loss, x)
    h = 1e-6
    fd = torch.zeros_like(x)
    for i in range(x.numel()):
        e = torch.zeros_like(x).view(-1)
        e[i] = h
        e = e.view_as(x)
        with torch.no_grad():
            up = focal_loss(x + e, t, w, gamma=gamma, ignore_index=ii, reduction=reduction)
            down = focal_loss(x - e, t, w, gamma=gamma, ignore_index=ii, reduction=reduction)
        fd.view(-1)[i] = (up - down) / (2 * h)
    assert torch.allclose(grad, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0])
def test_gradient_is_finite_where_p_t_rounds_to_one(gamma, dtype):
    """A confident right sample (p_t == 1 in floating point) has loss 0 and gradient 0 for gamma > 0,
    the cross-entropy's for gamma = 0; never NaN (0 < gamma < 1 made pow's gradient inf there)."""
    x = torch.tensor([[60.0, 0.0, -5.0], [0.3, -0.2, 0.1]], dtype=dtype, requires_grad=True)
    t = torch.tensor([0, 2])
    grad, = torch.autograd.grad(focal_loss(x, t, gamma=gamma, reduction="sum"), x)
    assert torch.isfinite(grad).all()
    if gamma > 0:
        assert torch.equal(grad[0], torch.zeros(3, dtype=dtype))
    else:
        assert torch.allclose(grad, torch.autograd.grad(F.cross_entropy(x, t, reduction="sum"), x)[0])


def test_gradient_at_gamma_two_by_formula():
    """d/dz of -(1-p)^2 log p along the target logit: the paper's closed form, for two classes."""
    z = torch.linspace(-6, 6, 49, dtype=torch.float64)
    x = torch.stack([z, torch.zeros_like(z)], dim=1).requires_grad_()
    t = torch.zeros(49, dtype=torch.long)
    grad, = torch.autograd.grad(focal_loss(x, t, gamma=2.0, reduction="sum"), x)
    p = 1 / (1 + torch.exp(-z))
    # dFL/dp = 2(1-p) log p - (1-p)^2 / p ; dp/dz = p(1-p)
    expected = (2 * (1 - p) * torch.log(p) - (1 - p) ** 2 / p) * p * (1 - p)
    assert torch.allclose(grad[:, 0], expected, rtol=1e-10, atol=1e-14)


@settings(max_examples=100, deadline=None)
@given(case=multiclass())
def test_exp_of_weighted_cross_entropy_is_pt_to_the_weight(case):
    """The public-implementation bug: exp(-CE(weight=w)) is p_t ** w[y], not p_t."""
    x, t, w, ii = case
    if w is None:
        w = torch.full((x.shape[0 if x.dim() == 1 else 1],), 2.5, dtype=x.dtype)
    class_dim = 0 if x.dim() == 1 else 1
    keep = t != ii
    ce = F.cross_entropy(x, t, w, ignore_index=ii, reduction="none")
    pt = torch.softmax(x, class_dim).gather(class_dim, t.clamp_min(0).unsqueeze(class_dim)).squeeze(class_dim)
    wy = w[t.clamp_min(0)]
    assert torch.allclose(torch.exp(-ce)[keep], (pt ** wy)[keep], rtol=1e-9, atol=1e-300)


def test_weights_cancel_in_a_batch_of_one_class():
    gen = torch.Generator().manual_seed(64)
    for _ in range(30):
        x = torch.randn(7, 4, generator=gen, dtype=torch.float64)
        y = torch.full((7,), int(torch.randint(0, 4, (), generator=gen)))
        w = torch.rand(4, generator=gen, dtype=torch.float64) * 5 + 0.1
        assert torch.allclose(focal_loss(x, y, w), focal_loss(x, y), rtol=1e-12)


def test_bad_arguments_raise_torch_exception_classes():
    x, t = torch.randn(3, 4), torch.tensor([0, 1, 3])
    for bad in ("avg", "batchmean", None):
        with pytest.raises(ValueError) as ours:
            focal_loss(x, t, reduction=bad)
        with pytest.raises(ValueError) as theirs:
            F.cross_entropy(x, t, reduction=bad)
        assert str(ours.value) == str(theirs.value)
        with pytest.raises(ValueError, match="Invalid Value for arg 'reduction'"):
            sigmoid_focal_loss(x, torch.ones_like(x), reduction=bad)
    pairs = [((x, torch.tensor([0, 1, 4])), {}), ((x, torch.tensor([0, 1])), {}), ((x, t.float()), {}),
             ((x, t), {"weight": torch.ones(3)}), ((x, t), {"weight": torch.ones(4, dtype=torch.float64)})]
    for args, kwargs in pairs:
        with pytest.raises(Exception) as theirs:
            F.cross_entropy(*args, **kwargs)
        with pytest.raises(type(theirs.value)):
            focal_loss(*args, **kwargs)
    with pytest.raises(ValueError, match="gamma"):
        focal_loss(x, t, gamma=-1.0)


def torchvision_formula(inputs, targets, alpha, gamma, reduction):
    """torchvision.ops.sigmoid_focal_loss, written out from its documented formula."""
    p = torch.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from([(), (5,), (3, 4), (2, 3, 2)]),
       alpha=st.sampled_from([-1.0, 0.0, 0.25, 0.5, 0.9]), gamma=gammas, reduction=reductions,
       soft=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_sigmoid_focal_loss_matches_torchvision_formula(seed, shape, alpha, gamma, reduction, soft, dtype):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 4).to(dtype).requires_grad_()
    t = torch.rand(shape, generator=gen, dtype=torch.float64)
    t = (t if soft else (t < 0.3).double()).to(dtype)
    ours = sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction)
    ref = torchvision_formula(x, t, alpha, gamma, reduction)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-13)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    assert torch.allclose(ours, ref, **tol)
    g_ours, = torch.autograd.grad(ours.sum(), x)
    g_ref, = torch.autograd.grad(ref.sum(), x)
    assert torch.allclose(g_ours, g_ref, **tol)


def test_sigmoid_focal_loss_gamma_zero_alpha_off_is_bce():
    gen = torch.Generator().manual_seed(65)
    x = torch.randn(50, generator=gen, dtype=torch.float64) * 5
    t = (torch.rand(50, generator=gen) < 0.2).double()
    assert torch.allclose(sigmoid_focal_loss(x, t, alpha=-1, gamma=0, reduction="mean"),
                          F.binary_cross_entropy_with_logits(x, t), rtol=1e-12)
