"""The rounding audit's recorder: every floating-point value :mod:`lib.display` formats.

Off for readers and for nbval. The re-execute tool (``tools/reexecute.py``) sets the
environment variable :data:`ENV_VAR` to a file name for the kernel it starts, and
:func:`lib.display.setup` then calls :func:`start`, which wraps :func:`lib.display.fmt` and the
table's cell formatter so that each value they print is appended to that file, one JSON line
per tensor or float: ``[dtype, decimals, mode, [values...]]``. ``mode`` is how the
value is written: torch's ``"fixed"``, ``"sci"`` or ``"int"`` notation for a tensor, ``"text"``
for Python's ``{:.4f}``. :mod:`tools.rounding_audit` turns the lines into distances to the
nearest rounding boundary.

The re-execute tool writes a line ``["cell", n]`` to the same file before it sends code cell
``n`` (counted from 1) to the kernel, so each record follows the mark of its cell.
"""

import json
import os

import torch

from lib import display

#: Set by the re-execute tool to the file that receives the records.
ENV_VAR = "CEE_AUDIT_RECORD"

_started = False


def start(path=None):
    """Record every value :mod:`lib.display` formats into ``path`` (default: ``$CEE_AUDIT_RECORD``)."""
    global _started
    path = path or os.environ.get(ENV_VAR)
    if not path or _started:
        return
    _started = True
    fmt, cell = display.fmt, display._cell

    def write(dtype, decimals, mode, values):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps([dtype, decimals, mode, values]) + "\n")

    def tensor(value, decimals, mode=None):
        value = value.detach().cpu()
        if not value.is_floating_point() or value.numel() == 0:
            return
        if mode is None:
            with display._print_options(decimals):
                formatter = torch._tensor_str._Formatter(value)
            mode = "sci" if formatter.sci_mode else "int" if formatter.int_mode else "fixed"
        write(str(value.dtype), decimals, mode, value.double().flatten().tolist())

    def recording_fmt(value, decimals=display.DECIMALS):
        if isinstance(value, torch.Tensor):
            tensor(value, decimals)
        elif isinstance(value, float):
            write("float", decimals, "text", [value])
        return fmt(value, decimals)

    def recording_cell(value, decimals):
        if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
            tensor(value, decimals, mode="text")
        elif isinstance(value, float):
            write("float", decimals, "text", [value])
        return cell(value, decimals)

    display.fmt, display._cell = recording_fmt, recording_cell

