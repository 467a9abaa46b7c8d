"""lib.info against an independent float64 reference written with NumPy."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import info


def np_entropy(p):
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def np_cross_entropy(p, q):
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(q), 0.0), axis=-1)


def np_kl(p, q):
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / q), 0.0), axis=-1)


def random_distributions(rng, shape, zero_fraction):
    """Dirichlet-like rows with some entries set exactly to zero, renormalised."""
    values = rng.exponential(size=shape)
    values[rng.random(shape) < zero_fraction] = 0.0
    values[..., 0] += (values.sum(-1) == 0)  # no all-zero row
    return values / values.sum(-1, keepdims=True)


@st.composite
def distribution_pairs(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    zeros = draw(st.sampled_from([0.0, 0.3, 0.6]))
    return random_distributions(rng, shape, zeros), random_distributions(rng, shape, zeros)


@settings(max_examples=150, deadline=None)
@given(distribution_pairs())
def test_matches_numpy_reference_in_float64(pair):
    p, q = pair
    tp, tq = torch.from_numpy(p), torch.from_numpy(q)
    np.testing.assert_allclose(info.entropy(tp).numpy(), np_entropy(p), rtol=1e-10, atol=1e-10)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(info.surprise(tp).numpy(), -np.log(p), rtol=1e-10, atol=1e-10)
    for ours, ref in [(info.cross_entropy(tp, tq), np_cross_entropy(p, q)), (info.kl_divergence(tp, tq), np_kl(p, q))]:
        ours = ours.numpy()
        assert np.array_equal(np.isinf(ours), np.isinf(ref))
        finite = np.isfinite(ref)
        np.testing.assert_allclose(ours[finite], ref[finite], rtol=1e-10, atol=1e-10)


@settings(max_examples=80, deadline=None)
@given(distribution_pairs())
def test_identities(pair):
    p, q = (torch.from_numpy(a) for a in pair)
    h, ce, kl = info.entropy(p), info.cross_entropy(p, q), info.kl_divergence(p, q)
    finite = torch.isfinite(ce)
    torch.testing.assert_close(ce[finite], (h + kl)[finite], rtol=1e-10, atol=1e-10)  # H(p,q) = H(p) + KL
    assert (ce >= h - 1e-12).all()  # Gibbs' inequality
    assert (kl >= -1e-12).all()
    torch.testing.assert_close(info.kl_divergence(p, p), torch.zeros_like(h), rtol=0, atol=1e-12)
    n = p.shape[-1]
    assert (h <= math.log(n) + 1e-12).all() and (h >= 0).all()


def test_the_three_games():
    assert info.entropy(torch.tensor([0.5, 0.5])).item() == pytest.approx(math.log(2), abs=1e-7)
    assert info.entropy(torch.tensor([0.9, 0.1])).item() == pytest.approx(0.3250829733914482, abs=1e-7)
    assert info.entropy(torch.tensor([1.0, 0.0])).item() == 0.0


def test_zero_log_zero_is_zero_and_signs_are_positive():
    certain = torch.tensor([1.0, 0.0])
    assert str(info.entropy(certain).item()) == "0.0"  # +0, not -0
    assert str(info.surprise(torch.tensor(1.0)).item()) == "0.0"
    assert info.cross_entropy(certain, torch.tensor([0.5, 0.5])).item() == pytest.approx(math.log(2))


def test_q_zero_where_p_positive_is_inf():
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])
    assert info.cross_entropy(p, q).item() == math.inf
    assert info.kl_divergence(p, q).item() == math.inf
    assert info.kl_divergence(q, p).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_kept(dtype):
    p = torch.tensor([[0.2, 0.8], [0.5, 0.5]], dtype=dtype)
    for value in (info.entropy(p), info.cross_entropy(p, p), info.kl_divergence(p, p), info.surprise(p)):
        assert value.dtype == dtype


def test_dim_and_shape():
    p = torch.tensor([[0.2, 0.5], [0.8, 0.5]], dtype=torch.float64)  # distributions down the columns
    assert info.entropy(p, dim=0).shape == (2,)
    torch.testing.assert_close(info.entropy(p, dim=0), info.entropy(p.T))
    with pytest.raises(ValueError):
        info.entropy(p)  # rows do not sum to one


def test_base():
    p = torch.tensor([0.25] * 4, dtype=torch.float64)
    assert info.entropy(p, base=2).item() == pytest.approx(2.0, abs=1e-12)
    assert info.kl_divergence(p, p, base=2).item() == 0.0
    with pytest.raises(ValueError, match="base"):
        info.entropy(p, base=1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: info.entropy(torch.tensor([1.2, -0.2])), "non-negative"),
        (lambda: info.entropy(torch.tensor([0.5, float("nan")])), "non-negative"),
        (lambda: info.entropy(torch.tensor([0.5, 0.6])), "sum to 1"),
        (lambda: info.entropy(torch.tensor(1.0)), "at least one dimension"),
        (lambda: info.cross_entropy(torch.tensor([0.5, 0.5]), torch.tensor([0.2, 0.3, 0.5])), "same shape"),
        (lambda: info.kl_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5], dtype=torch.float64)),
         "same dtype"),
        (lambda: info.surprise(torch.tensor([1.5])), r"\[0, 1\]"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_sum_tolerance_is_stated_per_dtype():
    assert info.sum_tolerance(torch.float32) == pytest.approx(3.45e-4, rel=1e-2)
    assert info.sum_tolerance(torch.float64) == pytest.approx(1.49e-8, rel=1e-2)
    info.entropy(torch.tensor([0.5, 0.5 + 1e-4]))  # inside float32's tolerance
    with pytest.raises(ValueError):
        info.entropy(torch.tensor([0.5, 0.5 + 1e-6], dtype=torch.float64))
