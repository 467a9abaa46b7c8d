"""lib against torch on the book's device: CUDA when there is one (or CEE_DEVICE), else the CPU.

The other tests of lib run on the CPU; these run the same comparisons where the chapters run,
so that the GPU check (``.ci/gpu``) tests lib on CUDA kernels too.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from lib import device, memory
from lib import functional as L

DEV = device.get_device()
REDUCTIONS = ["none", "mean", "sum"]


def data(shape=(37, 11), seed=0):
    logits = device.randn(*shape, seed=seed) * 3
    labels = device.randint(0, shape[1], (shape[0],) + tuple(shape[2:]), seed=seed + 1)
    return logits, labels


def close(ours, theirs, dtype=torch.float32):
    tolerance = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    torch.testing.assert_close(ours, theirs, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("reduction, label_smoothing, weighted, ignore",
                         list(itertools.product(REDUCTIONS, [0.0, 0.1], [False, True], [False, True])))
def test_class_indices(reduction, label_smoothing, weighted, ignore):
    logits, labels = data()
    if ignore:
        labels[::5] = -100
    weight = device.rand(11, seed=9) + 0.1 if weighted else None
    kwargs = dict(weight=weight, reduction=reduction, label_smoothing=label_smoothing)
    x_ours, x_theirs = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours, theirs = L.cross_entropy(x_ours, labels, **kwargs), F.cross_entropy(x_theirs, labels, **kwargs)
    assert ours.device == theirs.device == logits.device
    close(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    close(x_ours.grad, x_theirs.grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_probabilities_and_spatial_targets(reduction):
    logits, _ = data((6, 5, 4, 3), seed=3)
    soft = F.softmax(device.randn(6, 5, 4, 3, seed=5), dim=1)
    close(L.cross_entropy(logits, soft, reduction=reduction, label_smoothing=0.2),
          F.cross_entropy(logits, soft, reduction=reduction, label_smoothing=0.2))
    labels = device.randint(0, 5, (6, 4, 3), seed=6)
    labels[0, 0, 0] = 255
    close(L.cross_entropy(logits, labels, ignore_index=255, reduction=reduction),
          F.cross_entropy(logits, labels, ignore_index=255, reduction=reduction))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    logits, labels = data(seed=7)
    close(L.cross_entropy(logits.to(dtype), labels), F.cross_entropy(logits.to(dtype), labels), dtype)
    close(L.softmax(logits.to(dtype), 1), F.softmax(logits.to(dtype), 1), dtype)


def test_other_functions():
    logits, labels = data(seed=11)
    probabilities = device.rand(37, 11, seed=12)
    targets = device.rand(37, 11, seed=13)
    close(L.log_softmax(logits, 0), F.log_softmax(logits, 0))
    close(L.nll_loss(F.log_softmax(logits, 1), labels), F.nll_loss(F.log_softmax(logits, 1), labels))
    close(L.binary_cross_entropy(probabilities, targets), F.binary_cross_entropy(probabilities, targets))
    close(L.binary_cross_entropy_with_logits(logits, targets), F.binary_cross_entropy_with_logits(logits, targets))
    close(L.kl_div(F.log_softmax(logits, 1), F.softmax(logits.flip(0), 1), reduction="batchmean"),
          F.kl_div(F.log_softmax(logits, 1), F.softmax(logits.flip(0), 1), reduction="batchmean"))


def test_one_n_by_c_tensor_on_the_device():
    logits, labels = data((64, 10), seed=15)

    def step():
        x = logits.detach().requires_grad_()
        L.cross_entropy(x, labels).backward()
        return x.grad

    grad, made = memory.allocations(step)
    assert grad.device == logits.device
    assert [a.operation for a in made if a.shape == (64, 10)] == ["sub"]


def test_out_of_range_target_is_an_index_error_on_every_device():
    logits, labels = data(seed=17)
    labels[3] = 11
    with pytest.raises(IndexError, match="Target 11 is out of bounds"):
        L.cross_entropy(logits, labels)
    if DEV.type == "cpu":
        with pytest.raises(IndexError, match="Target 11 is out of bounds"):
            F.cross_entropy(logits, labels)
