"""lib.calibration against an independent NumPy computation, and the fitted temperature against the NLL."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.calibration import (
    expected_calibration_error,
    fit_temperature,
    nll_at_temperature,
    reliability_bins,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def numpy_ece(probs, target, n_bins):
    """ECE with bins ((m-1)/M, m/M], the edges k/M, computed with NumPy, sample by sample."""
    probs, target = np.asarray(probs, dtype=np.float64), np.asarray(target)
    edges = np.arange(1, n_bins, dtype=np.float64) / n_bins
    counts, right, conf = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    for row, y in zip(probs, target, strict=True):
        c = row.max()
        pred = int(np.argmax(row))  # the first maximum, as torch
        m = int(np.searchsorted(edges, c, side="left"))  # the number of edges strictly below c
        counts[m] += 1
        right[m] += pred == y
        conf[m] += c
    ece = 0.0
    for m in range(n_bins):
        if counts[m]:
            ece += counts[m] / len(target) * abs(right[m] / counts[m] - conf[m] / counts[m])
    return ece, counts


@st.composite
def predictions(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    n, c = draw(st.integers(1, 60)), draw(st.integers(2, 8))
    scale = draw(st.sampled_from([0.1, 1.0, 4.0, 20.0]))
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64) * scale
    target = torch.randint(0, c, (n,), generator=gen)
    if draw(st.booleans()):  # confidences exactly on the edges k/M
        m = draw(st.sampled_from([2, 4, 5, 10]))
        probs = torch.full((n, c), 0.0, dtype=torch.float64)
        k = torch.randint(math.ceil(m / c), m + 1, (n,), generator=gen)
        top = k.double() / m
        probs[:, 0] = top
        probs[:, 1:] = ((1 - top) / (c - 1))[:, None]
        return probs, target
    return torch.softmax(logits, 1), target


@settings(max_examples=300, deadline=None)
@given(case=predictions(), n_bins=st.sampled_from([1, 2, 4, 5, 10, 15, 20]))
def test_ece_matches_numpy(case, n_bins):
    probs, target = case
    expected, counts = numpy_ece(probs.numpy(), target.numpy(), n_bins)
    ece = expected_calibration_error(probs, target, n_bins)
    assert ece.dtype == probs.dtype and ece.shape == ()
    assert math.isclose(ece.item(), expected, rel_tol=1e-12, abs_tol=1e-14)
    assert reliability_bins(probs, target, n_bins).count.tolist() == counts.astype(int).tolist()
    assert 0 <= ece.item() <= 1


def test_ece_of_known_cases():
    # one sample, right, confidence 0.7: gap 0.3; the same sample wrong: gap 0.7
    p = torch.tensor([[0.7, 0.3]], dtype=torch.float64)
    assert math.isclose(expected_calibration_error(p, torch.tensor([0])).item(), 0.3, abs_tol=1e-15)
    assert math.isclose(expected_calibration_error(p, torch.tensor([1])).item(), 0.7, abs_tol=1e-15)
    # a confidence on the edge 0.5 with M = 2 goes to the first bin, (0, 0.5]
    half = torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64)
    assert reliability_bins(half, torch.tensor([0, 0]), 2).count.tolist() == [1, 1]


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        expected_calibration_error(torch.rand(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError):
        expected_calibration_error(torch.rand(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError):
        expected_calibration_error(torch.rand(4, 3), torch.zeros(4, dtype=torch.long), n_bins=0)
    with pytest.raises(ValueError):
        fit_temperature(torch.rand(4, 3), torch.zeros(4, dtype=torch.long), low=2.0, high=1.0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(5, 80), c=st.integers(2, 6),
       scale=st.sampled_from([0.3, 1.0, 3.0, 10.0]), noise=st.sampled_from([0.0, 0.3, 0.7]))
def test_fitted_temperature_minimises_the_nll(seed, n, c, scale, noise):
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(0, c, (n,), generator=gen)
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64) + 2 * F.one_hot(target, c)
    flip = torch.rand(n, generator=gen) < noise
    target = torch.where(flip, torch.randint(0, c, (n,), generator=gen), target)
    logits = logits * scale
    t = fit_temperature(logits, target)
    assert 1e-2 <= t <= 1e2
    best = F.cross_entropy(logits / t, target).item()
    assert math.isclose(nll_at_temperature(logits, target, t).item(), best, rel_tol=1e-12, abs_tol=1e-15)
    for delta in (1e-4, 1e-2, 0.1, 0.5):
        for other in (t * (1 + delta), t / (1 + delta)):
            other = min(max(other, 1e-2), 1e2)
            assert F.cross_entropy(logits / other, target).item() >= best - 1e-12
    if 0.011 < t < 99:  # an interior minimum: the derivative along 1/T vanishes
        beta = torch.tensor(1 / t, dtype=torch.float64, requires_grad=True)
        grad, = torch.autograd.grad(F.cross_entropy(logits * beta, target), beta)
        assert abs(grad.item()) < 1e-6


def test_temperature_of_a_scaled_calibrated_model():
    """Logits drawn from a model with known temperature: labels sampled from softmax(z), logits z * 3.

    The fit should recover T close to 3 (a statistical check over 20000 samples)."""
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(20000, 4, generator=gen, dtype=torch.float64) * 2
    target = torch.multinomial(torch.softmax(z, 1), 1, generator=gen).squeeze(1)
    t = fit_temperature(z * 3, target)
    assert abs(t - 3) < 0.1
