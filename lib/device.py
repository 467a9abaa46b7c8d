"""Where tensors live, and random data that prints the same on every device.

Defined in the appendix "How this book checks itself"
(``chapters/91_how_this_book_checks_itself.ipynb``); introduced in "How to read this book".
"""

import os

import torch

#: Environment variable that overrides the automatic choice, e.g. ``CEE_DEVICE=cpu``.
ENV_VAR = "CEE_DEVICE"


def get_device():
    """Return the device the chapters use: ``$CEE_DEVICE`` if set, else CUDA if available, else CPU.

    Returns:
        torch.device: the device. A ``$CEE_DEVICE`` torch cannot parse raises ``ValueError``;
        one asking for CUDA where torch sees none raises ``RuntimeError``.

    Explained in the chapter "How to read this book" (``chapters/00_how_to_read.ipynb``).
    """
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
    """Return a CPU random generator seeded with ``seed`` (same stream as ``torch.manual_seed(seed)``).

    Args:
        seed (int): the seed; anything else raises ``TypeError``.

    Returns:
        torch.Generator: a new CPU generator.

    Explained in the chapter "How to read this book" (``chapters/00_how_to_read.ipynb``).
    """
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return torch.Generator(device="cpu").manual_seed(seed)


def randn(*size, seed, dtype=torch.float32, device=None):
    """Return a standard normal tensor drawn on the CPU from ``seed``, then moved to ``device``.

    Args:
        *size (int): the shape.
        seed (int): the seed of the CPU generator.
        dtype (:class:`torch.dtype`, optional): Default: ``torch.float32``.
        device (torch.device, optional): Default: :func:`get_device`.

    Returns:
        Tensor: the same values on every device.

    Explained in the chapter "How to read this book" (``chapters/00_how_to_read.ipynb``).
    """
    return _moved(torch.randn(*size, generator=generator(seed), dtype=dtype), device)


def rand(*size, seed, dtype=torch.float32, device=None):
    """Return a uniform [0, 1) tensor drawn on the CPU from ``seed``, then moved to ``device``.

    Args:
        *size (int): the shape.
        seed (int): the seed of the CPU generator.
        dtype (:class:`torch.dtype`, optional): Default: ``torch.float32``.
        device (torch.device, optional): Default: :func:`get_device`.

    Returns:
        Tensor: the same values on every device.

    Explained in the chapter "How to read this book" (``chapters/00_how_to_read.ipynb``).
    """
    return _moved(torch.rand(*size, generator=generator(seed), dtype=dtype), device)


def randint(low, high, size, *, seed, device=None):
    """Return integers in ``[low, high)`` (int64) drawn on the CPU from ``seed``, then moved to ``device``.

    Args:
        low (int): the smallest value.
        high (int): one above the largest value.
        size (tuple): the shape.
        seed (int): the seed of the CPU generator.
        device (torch.device, optional): Default: :func:`get_device`.

    Returns:
        Tensor: int64, the same values on every device.

    Explained in the chapter "How to read this book" (``chapters/00_how_to_read.ipynb``).
    """
    return _moved(torch.randint(low, high, size, generator=generator(seed)), device)


def tensor(data, *, dtype=None, device=None):
    """Return ``torch.tensor(data)`` placed on ``device``.

    Args:
        data: the values (a number, nested lists, ...).
        dtype (:class:`torch.dtype`, optional): Default: inferred from ``data``, as torch does.
        device (torch.device, optional): Default: :func:`get_device`.

    Returns:
        Tensor: a new tensor.

    Explained in the chapter "How to read this book" (``chapters/00_how_to_read.ipynb``).
    """
    return torch.tensor(data, dtype=dtype, device=_or_default(device))


def _or_default(device):
    """``device``, or the chapters' device (:func:`get_device`) when it is ``None``."""
    return get_device() if device is None else device


def _moved(values, device):
    """``values``, drawn on the CPU, moved to ``device`` (default: :func:`get_device`)."""
    return values.to(_or_default(device))
