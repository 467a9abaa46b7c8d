"""Printing tensors the same way on every device.

A tensor on a GPU prints as ``tensor(0.5981, device='cuda:0')`` and a tensor that is part of
a graph as ``tensor(0.5981, grad_fn=<NllLossBackward0>)``. The book's outputs must be the same
text on every machine, so chapters print through this module.

Defined in the appendix "How this book checks itself"
(``chapters/91_how_this_book_checks_itself.ipynb``); introduced in "How to read this book".
"""

import os

import torch

#: Decimals shown for floating-point values, torch's own default.
DECIMALS = 4


def fmt(value, decimals=DECIMALS):
    """Return ``value`` as text, device- and autograd-neutral: a tensor as ``tensor(...)``, a float rounded."""
    if isinstance(value, torch.Tensor):
        with _print_options(decimals):
            return repr(value.detach().cpu())
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(fmt(v, decimals) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return repr(value)


def show(*values, decimals=DECIMALS, sep="  "):
    """Print ``values`` with :func:`fmt`, on one line."""
    print(sep.join(fmt(v, decimals) for v in values))


def table(rows, header, decimals=DECIMALS):
    """Print ``rows`` (sequences of numbers, tensors or text) as an aligned plain-text table.

    Columns of text are aligned left; a column with numbers (or numbers written as text) is
    aligned right, so that digits line up.
    """
    cells = [[str(h) for h in header]]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells, the header {len(header)}")
        cells.append([_cell(v, decimals) for v in row])
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    is_text = [bool(rows) and all(isinstance(row[i], str) and not _numeric(row[i]) for row in rows)
               for i in range(len(header))]

    def line(row):
        aligned = [c.ljust(w) if text else c.rjust(w) for c, w, text in zip(row, widths, is_text, strict=True)]
        return "  ".join(aligned).rstrip()

    lines = [line(r) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    print("\n".join(lines))


def setup():
    """Make a notebook show tensors with :func:`fmt`, figures as PNG, errors without traceback.

    Figures are stored as PNG drawn at twice their dpi, with their width at their dpi in the
    output metadata (:func:`retina_png`), so that the page shows them at that width, sharp on a
    high-density screen.
    """
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    shell.display_formatter.formatters["text/plain"].for_type(
        torch.Tensor, lambda value, printer, cycle: printer.text(fmt(value))
    )
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")
    from matplotlib.figure import Figure

    shell.display_formatter.formatters["image/png"].for_type(Figure, retina_png)
    shell.InteractiveTB.set_mode(mode="Minimal")
    if os.environ.get("CEE_AUDIT_RECORD"):  # set by tools.reexecute: record for the rounding audit
        from lib import _audit

        _audit.start()


def retina_png(figure):
    """``(base64 PNG, {"width": w})``: ``figure`` drawn at twice its dpi, ``w`` its width in pixels at its dpi.

    IPython's "retina" format also stores the height; MyST-NB turns both into a fixed
    ``style="width: ...; height: ..."``, and a page narrower than the figure then shrinks the
    width but not the height. With the width alone the height follows the aspect ratio.
    """
    from IPython.core.pylabtools import retina_figure

    shown = retina_figure(figure, base64=True)
    return None if shown is None else (shown[0], {"width": shown[1]["width"]})


def _numeric(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cell(value, decimals):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


class _print_options:
    def __init__(self, decimals):
        self.decimals = decimals

    def __enter__(self):
        self.saved = torch._tensor_str.PRINT_OPTS.precision
        torch.set_printoptions(precision=self.decimals)

    def __exit__(self, *exc):
        torch.set_printoptions(precision=self.saved)
