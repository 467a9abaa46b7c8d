"""Tests of the chapter "Cross-entropy at scale" (chapters/52_at_scale.ipynb) and its modules.

* ``lib.vocab_parallel``: ``python -m lib.vocab_parallel`` with two real processes (gloo, CPU),
  on an even and an uneven split of the vocabulary, prints the single process's loss and
  gradient; a vocabulary smaller than the number of processes is refused.
* ``lib.lm.z_loss``: value and hand-written gradient against autograd through
  ``torch.logsumexp``, and no call of torch's softmax or log-sum-exp kernels.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lib import lm, vocab_parallel

ROOT = Path(__file__).resolve().parents[1]


def _run_vocab_parallel(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "lib.vocab_parallel", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


@pytest.mark.parametrize("args, sizes", [((), [500, 500]), (("--vocab", "1001"), [501, 500]),
                                         (("--vocab", "10", "--world-size", "3", "--tokens", "5"), [4, 3, 3])])
def test_vocab_parallel_equals_single_process(args, sizes):
    run = _run_vocab_parallel(*args)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split("(")[1].split(")")[0] for line in lines[:len(sizes)]] == [str(s) for s in sizes]
    losses = {line.rsplit("loss ", 1)[1] for line in lines[:len(sizes) + 1]}
    assert len(losses) == 1  # every process, and the single process, print the same four decimals
    assert lines[len(sizes) + 1:] == ["same loss on every process: True",
                                      "loss equal to single process's (atol 1e-6): True",
                                      "gradient columns equal to single process's (rtol 1e-5, atol 1e-8): True"]


def test_vocab_parallel_refuses_fewer_classes_than_processes():
    run = _run_vocab_parallel("--vocab", "1")
    assert run.returncode != 0
    assert "ValueError: cannot split 1 classes over 2 processes" in run.stderr


def test_vocab_range_covers_the_vocabulary_once():
    for vocab_size in range(1, 40):
        for world_size in range(1, vocab_size + 1):
            ranges = [vocab_parallel.vocab_range(vocab_size, r, world_size) for r in range(world_size)]
            assert ranges[0][0] == 0 and ranges[-1][1] == vocab_size
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
            widths = [end - start for start, end in ranges]
            assert max(widths) - min(widths) <= 1 and min(widths) >= 1
            # the same split as torch.tensor_split
            assert widths == [len(p) for p in torch.arange(vocab_size).tensor_split(world_size)]
    with pytest.raises(ValueError, match="rank 2 is not in"):
        vocab_parallel.vocab_range(10, 2, 2)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_z_loss_value_and_gradient(reduction, dtype):
    gen = torch.Generator().manual_seed(52)
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-15)
    for shape in [(7, 13), (13,), (1, 1), (4, 1000)]:
        z = torch.randn(*shape, generator=gen, dtype=dtype) * 4 + 10
        coefficient = float(torch.rand((), generator=gen)) * 1e-2
        a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
        mine = lm.z_loss(a, coefficient, reduction)
        reference = coefficient * torch.logsumexp(b, -1) ** 2
        reference = {"mean": reference.mean(), "sum": reference.sum(), "none": reference}[reduction]
        assert mine.dtype == dtype and mine.shape == reference.shape
        assert torch.allclose(mine, reference, **tol)
        upstream = torch.rand(mine.shape, generator=gen, dtype=dtype)
        mine.backward(upstream)
        reference.backward(upstream)
        assert torch.allclose(a.grad, b.grad, **tol)
        assert torch.allclose(lm.log_normalizer(z), torch.logsumexp(z, -1), **tol)


def test_z_loss_arguments():
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        lm.z_loss(torch.zeros(2, 3), reduction="batchmean")
    with pytest.raises(ValueError, match="1 or 2 dimensions"):
        lm.z_loss(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError, match="floating point"):
        lm.z_loss(torch.zeros(2, 3, dtype=torch.long))


class _Operators(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_lm_uses_no_softmax_or_logsumexp_kernel():
    z = torch.randn(5, 7, requires_grad=True)
    with _Operators() as seen:
        lm.z_loss(z).backward()
        lm.log_normalizer(z.detach())
    forbidden = {n for n in seen.names if "softmax" in n or "logsumexp" in n or "loss" in n}
    assert forbidden == set() and {"amax", "exp", "log"} <= seen.names


def test_memory_curves_draws_its_data():
    import matplotlib

    matplotlib.use("Agg")
    from lib import plots

    sizes = [32000, 128256]
    curves = {"a": [1.0, 4.0], "b": [0.5, 0.75]}
    fig = plots.memory_curves(sizes, curves, xlabel="V", ylabel="GiB", title="t")
    (ax,) = fig.axes
    assert {line.get_gid(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.lines} == {
        label: (sizes, values) for label, values in curves.items()}
    assert fig.get_figwidth() <= 6.4 and ax.get_ylim()[0] == 0
    assert min(t.get_fontsize() for t in [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels()]) >= 10
    with pytest.raises(ValueError, match="has 1 values for 2 sizes"):
        plots.memory_curves(sizes, {"c": [1.0]}, xlabel="", ylabel="", title="")
