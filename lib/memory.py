"""Which operations create tensors: the memory a computation allocates, counted exactly.

A GPU's memory limits the batch and the vocabulary a loss can afford, and the tensors of
size N x C decide it. :func:`allocations` runs a function under a dispatch mode that sees
every ATen operation PyTorch executes, in the forward and the backward pass alike, and
records each tensor whose storage the operation created (views and in-place results share
their input's storage and are not counted). The operations are the same on every device, so
a chapter can print the count on any machine.

Defined in the chapter "Cross-entropy on a GPU" (``chapters/41_gpu.ipynb``).
"""

from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


@dataclass(frozen=True)
class Allocation:
    """A tensor created by one ATen operation: its name, shape, and size in bytes."""

    operation: str
    shape: tuple
    nbytes: int


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.allocations = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs))}
        out = func(*args, **kwargs)
        for t in _tensors(out):
            if t.untyped_storage().data_ptr() not in inputs:
                name = func.overloadpacket.__name__
                self.allocations.append(Allocation(name, tuple(t.shape), t.untyped_storage().nbytes()))
        return out


def _tensors(tree):
    """The tensors among the leaves of a nested structure of arguments or results."""
    return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]


def allocations(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)``; return its result and the list of :class:`Allocation` it made.

    Put the backward pass inside ``fn`` to count it too. Only tensors are counted, not
    the memory an operation uses internally and frees before it returns.

    Args:
        fn (callable): the computation to watch.
        *args, **kwargs: passed to ``fn``.

    Returns:
        tuple: ``fn``'s result, and a list of :class:`Allocation`, one per tensor created, in
        the order the ATen operations ran.

    Explained in the chapter "Cross-entropy on a GPU" (``chapters/41_gpu.ipynb``).
    """
    recorder = _Recorder()
    with recorder:
        result = fn(*args, **kwargs)
    return result, recorder.allocations
