"""Where tensors live, and random data that prints the same on every device.

Defined in the appendix "How this book checks itself"
(``chapters/91_how_this_book_checks_itself.ipynb``); introduced in "How to read this book".
"""

import os

import torch

#: Environment variable that overrides the automatic choice, e.g. ``CEE_DEVICE=cpu``.
ENV_VAR = "CEE_DEVICE"


def get_device():
    """Return the device the chapters use: ``$CEE_DEVICE`` if set, else CUDA if available, else CPU."""
    requested = os.environ.get(ENV_VAR, "").strip()
    if not requested:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as err:
        raise ValueError(f"{ENV_VAR}={requested!r} is not a device torch understands: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{ENV_VAR}={requested!r} asks for CUDA, but torch sees no CUDA device")
    return device


def generator(seed):
    """Return a CPU random generator seeded with ``seed`` (same stream as ``torch.manual_seed(seed)``)."""
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return torch.Generator(device="cpu").manual_seed(seed)


def randn(*size, seed, dtype=torch.float32, device=None):
    """Standard normal tensor drawn on the CPU from ``seed``, then moved to ``device`` (default: :func:`get_device`)."""
    values = torch.randn(*size, generator=generator(seed), dtype=dtype)
    return values.to(get_device() if device is None else device)


def rand(*size, seed, dtype=torch.float32, device=None):
    """Uniform [0, 1) tensor drawn on the CPU from ``seed``, then moved to ``device``."""
    values = torch.rand(*size, generator=generator(seed), dtype=dtype)
    return values.to(get_device() if device is None else device)


def randint(low, high, size, *, seed, device=None):
    """Integers in ``[low, high)`` (int64) drawn on the CPU from ``seed``, then moved to ``device``."""
    values = torch.randint(low, high, size, generator=generator(seed))
    return values.to(get_device() if device is None else device)


def tensor(data, *, dtype=None, device=None):
    """``torch.tensor(data)`` placed on ``device`` (default: :func:`get_device`)."""
    return torch.tensor(data, dtype=dtype, device=get_device() if device is None else device)
