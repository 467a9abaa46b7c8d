"""What every figure draws, checked number by number.

nbval skips PNG output, so a figure could draw the wrong curve, or markers in the wrong place,
and the chapters would still pass. These tests read the data back from the matplotlib artists
each ``lib.plots`` function draws (lines, vertical and horizontal lines, scatter offsets, bar
rectangles, titles, labels and legends) and compare it

* with formulas written here in NumPy and float64, independent of ``lib.info`` and
  ``lib.functional`` (which the figures themselves use), and
* with the numbers the chapters print, read from the stored notebooks: the figure a chapter
  shows is drawn again with the chapter's own call, and its markers, bars and title numbers
  must equal the numbers the chapter's cells print (to the printed precision), and the claims
  of the figure's caption and alt text (cell metadata ``mystnb``) must hold for the drawn data.

Cells are found by their content (the cell that calls ``plots.margin_curve(``, the cell that
defines ``batches``), not by their position, so edits elsewhere in a chapter don't break them.
Every artist must carry a ``gid``; :func:`drawn` fails on an artist no test knows about.
"""

import ast
import json
import math
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from lib import plots  # noqa: E402
from tools import guards  # noqa: E402

#: Half a unit in the last printed place, for numbers printed with 4 and 3 decimals.
PRINTED_4 = 0.5e-4 + 1e-12
PRINTED_3 = 0.5e-3 + 1e-12
WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


# --------------------------------------------------------------------------------------------
# Independent formulas (NumPy, float64)
# --------------------------------------------------------------------------------------------

def coin_entropy_bits(p):
    """H(p, 1 - p) in bits, with 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = [np.where(x > 0, -x * np.log2(x), 0.0) for x in (p, 1 - p)]
    return terms[0] + terms[1]


def kl_nats(p, q):
    """D_KL(p || q) = sum p log(p / q) in nats, with 0 log 0 = 0."""
    p, q = (np.asarray(v, dtype=np.float64) for v in (p, q))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)))


def two_class_loss(margin):
    """-log sigmoid(margin) = log(1 + exp(-margin)), computed stably."""
    return np.logaddexp(0.0, -np.asarray(margin, dtype=np.float64))


def smoothed_loss(q_true, eps, n_classes):
    """Cross-entropy with label smoothing ``eps`` of a prediction that gives ``q_true`` to the
    true class and shares the rest equally among the other classes, written from the smoothed
    target: weight 1 - eps + eps/C on the true class, eps/C on each of the C - 1 others."""
    q_true = np.asarray(q_true, dtype=np.float64)
    on_true = 1 - eps + eps / n_classes
    on_each_other = eps / n_classes
    loss = -on_true * np.log(q_true)
    if on_each_other > 0:  # 0 log 0 = 0: without smoothing the other classes add nothing, even at q_true = 1
        with np.errstate(divide="ignore"):
            loss = loss - (n_classes - 1) * on_each_other * np.log((1 - q_true) / (n_classes - 1))
    return loss


def numeric_argmin(f, low, high, points=2_000_001):
    """Where ``f`` is smallest on a fine grid of ``[low, high]`` (no closed form used)."""
    grid = np.linspace(low, high, points)
    return float(grid[np.argmin(f(grid))]), (high - low) / (points - 1)


# --------------------------------------------------------------------------------------------
# Reading a figure back
# --------------------------------------------------------------------------------------------

def drawn(ax):
    """The axes' artists by ``gid``: lines and scatter sets one each, bars a list per gid.

    Fails if an artist has no gid, if two lines or scatter sets share one, or if the axes hold
    images or texts (which no test would check).
    """
    found = {}
    for artist in [*ax.lines, *ax.collections]:
        gid = artist.get_gid()
        assert gid, f"an artist without a gid: {artist}"
        assert gid not in found, f"two artists with gid {gid!r}"
        found[gid] = artist
    for patch in ax.patches:
        gid = patch.get_gid()
        assert gid, f"a patch without a gid: {patch}"
        found.setdefault(gid, []).append(patch)
    assert not ax.images and not ax.texts
    return found


def xy(line):
    return np.asarray(line.get_xdata(), dtype=np.float64), np.asarray(line.get_ydata(), dtype=np.float64)


def axline_at(ax, line, axis):
    """The position of an ``axvline`` (``axis="x"``) or an ``axhline`` (``axis="y"``): constant
    along ``axis`` in data coordinates, spanning the axes across it."""
    x, y = xy(line)
    along, across = (x, y) if axis == "x" else (y, x)
    grid = ax.get_xaxis_transform(which="grid") if axis == "x" else ax.get_yaxis_transform(which="grid")
    assert line.get_transform() == grid
    assert along[0] == along[1] and list(across) == [0.0, 1.0]
    return float(along[0])


def offsets(collection):
    return np.asarray(collection.get_offsets(), dtype=np.float64)


def bars(patches):
    """``(centre x, height, width)`` of each bar rectangle, in data coordinates."""
    return [(float(r.get_x()) + float(r.get_width()) / 2, float(r.get_height()), float(r.get_width()))
            for r in patches]


def legend_texts(legend):
    return [t.get_text() for t in legend.get_texts()]


def title_numbers(text):
    return [float(n) for n in re.findall(r"-?\d+\.\d+", text)]


# --------------------------------------------------------------------------------------------
# Reading the chapters
# --------------------------------------------------------------------------------------------

def source(cell):
    return "".join(cell.get("source", []))


def printed(cell):
    return "\n".join(guards._text(o) for o in cell.get("outputs", []))


def notebooks():
    return [(path, json.loads(path.read_text(encoding="utf-8"))) for path in guards.chapter_notebooks()]


def shows_a_figure(cell, function):
    """Whether ``cell`` draws ``plots.<function>(...)`` on the page (a check cell only inspects it)."""
    return (cell["cell_type"] == "code" and f"plots.{function}(" in source(cell)
            and guards.CHECK not in cell.get("metadata", {}).get("tags", []))


def figure_cells(function):
    """``(notebook, index, call)`` of every chapter cell that draws ``plots.<function>(...)``."""
    found = []
    for _, nb in notebooks():
        for index, cell in enumerate(nb["cells"]):
            if shows_a_figure(cell, function):
                calls = [node for node in ast.walk(ast.parse(source(cell))) if isinstance(node, ast.Call)
                         and isinstance(node.func, ast.Attribute) and node.func.attr == function]
                assert len(calls) == 1
                found.append((nb, index, calls[0]))
    assert found, f"no chapter draws plots.{function}"
    return found


def the_figure_cell(function):
    (found,) = figure_cells(function)
    return found


def literal_call(call):
    """The positional and keyword arguments of a call whose arguments are all literals."""
    return [ast.literal_eval(a) for a in call.args], {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def prose_before(nb, index):
    """The markdown cell just above a figure cell: the sentence that introduces the figure."""
    cells = [c for c in nb["cells"][:index] if c["cell_type"] == "markdown"]
    return " ".join(source(cells[-1]).split()) if cells else ""


def is_red(collection):
    """Every marker of a scatter set is red (as in "the red dots")."""
    return all(r > 0.6 and g < 0.3 and b < 0.3 for r, g, b, _ in collection.get_facecolors())


def caption_and_alt(cell):
    figure = cell["metadata"]["mystnb"]
    return figure["figure"]["caption"], figure["image"]["alt"]


def code_cell(nb, pattern, before=None):
    """The last code cell (before index ``before``) whose source matches the regex ``pattern``."""
    cells = nb["cells"][:before]
    matches = [c for c in cells if c["cell_type"] == "code" and re.search(pattern, source(c), re.M)]
    assert matches, f"no code cell matches {pattern!r}"
    return matches[-1]


def assigned(cell, name):
    """The expression node assigned to ``name`` in a cell (``name = ...`` or ``a, name = ..., ...``)."""
    for node in ast.walk(ast.parse(source(cell))):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                return node.value
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                for t, v in zip(target.elts, node.value.elts, strict=True):
                    if isinstance(t, ast.Name) and t.id == name:
                        return v
    raise AssertionError(f"{name} is not assigned in {source(cell)!r}")


def tensor_literal(node):
    """The list and the dtype name of ``torch.tensor([...], dtype=torch.X, ...)``."""
    assert isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.tensor"
    dtype = next((ast.unparse(k.value) for k in node.keywords if k.arg == "dtype"), "torch.float32")
    return ast.literal_eval(node.args[0]), dtype


def parse_table(text):
    """Rows of a ``lib.display.table`` printout as dicts keyed by the header; the dashed line
    under the header gives the column boundaries."""
    lines = text.strip("\n").splitlines()
    start = next(i for i, line in enumerate(lines) if i > 0 and set(line) <= {"-", " "} and "-" in line)
    spans = [m.span() for m in re.finditer(r"-+", lines[start])]

    bounds = [a for a, _ in spans] + [None]

    def cut(line):
        return [line[bounds[k]:bounds[k + 1]].strip() for k in range(len(spans))]

    header = cut(lines[start - 1])
    return [dict(zip(header, cut(line), strict=True)) for line in lines[start + 1:] if line.strip()]


def printed_tensors(text):
    """The numbers printed as ``tensor(x)`` or ``tensor([x, y])``, in order."""
    return [float(n) for n in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", " ".join(re.findall(r"tensor\(([^)]*)\)", text)))]


def test_parse_table_reads_columns_by_the_dashes():
    text = "name         H [bits]\n-----------  --------\nfair           1.0000\nnine in ten    0.4690\n"
    assert parse_table(text) == [{"name": "fair", "H [bits]": "1.0000"},
                                 {"name": "nine in ten", "H [bits]": "0.4690"}]


# --------------------------------------------------------------------------------------------
# binary_entropy (chapter "Entropy")
# --------------------------------------------------------------------------------------------

def test_binary_entropy_draws_the_entropy_of_a_coin():
    fig = plots.binary_entropy()
    ax = fig.axes[0]
    art = drawn(ax)
    assert set(art) == {"entropy", "fair coin", "games"}
    p, h = xy(art["entropy"])
    np.testing.assert_allclose(p, np.linspace(0, 1, 201), rtol=0, atol=1e-15)
    np.testing.assert_allclose(h, coin_entropy_bits(p), rtol=0, atol=1e-12)
    assert h[0] == 0 and h[-1] == 0 and h.max() == pytest.approx(1, abs=1e-15)
    # the dotted line marks the maximum, the fair coin
    assert axline_at(ax, art["fair coin"], "x") == 0.5 == p[np.argmax(h)]
    assert art["fair coin"].get_linestyle() == ":"
    np.testing.assert_allclose(offsets(art["games"]), [[0.5, 1.0], [0.9, coin_entropy_bits(0.9)]], rtol=0, atol=1e-12)
    assert ax.get_xlabel() == "p = probability of heads"
    assert ax.get_ylabel() == "H(p, 1 - p)  [bits]"
    assert "fair coin" in ax.get_title()
    assert ax.get_xlim() == (0, 1) and ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= h.max()
    assert len(xy(drawn(plots.binary_entropy(points=11).axes[0])["entropy"])[0]) == 11


def test_binary_entropy_markers_are_the_chapters_games():
    nb, index, call = the_figure_cell("binary_entropy")
    args, kwargs = literal_call(call)
    fig = plots.binary_entropy(*args, **kwargs)
    ax = fig.axes[0]
    art = drawn(ax)
    caption, alt = caption_and_alt(nb["cells"][index])
    # the table of the games, and each game's distribution [heads, tails]
    table_cell = code_cell(nb, r"\bgames\s*=\s*\{", before=index)
    games = ast.literal_eval(re.sub(r":\s*(\w+)", r": '\1'", ast.unparse(assigned(table_cell, "games"))))
    rows = {row["game"]: row for row in parse_table(printed(table_cell))}
    assert set(rows) == set(games)
    heads = {}
    for game, variable in games.items():
        dist, _ = tensor_literal(assigned(code_cell(nb, rf"^{variable}\s*=", before=index), variable))
        heads[game] = dist[0]
        assert float(rows[game]["H [bits]"]) == pytest.approx(coin_entropy_bits(dist[0]), abs=PRINTED_4)
    # "dots at the fair game and at the nine-in-ten game"
    marked = ["fair", "nine in ten"]
    for game in marked:
        assert game.replace(" ", "-") in alt or game in alt
    dots = offsets(art["games"])
    assert len(dots) == len(marked)
    for (x, y), game in zip(dots, marked, strict=True):
        assert x == heads[game]
        assert y == pytest.approx(float(rows[game]["H [bits]"]), abs=PRINTED_4)
        assert np.interp(x, *xy(art["entropy"])) == pytest.approx(y, abs=1e-12)  # on the curve
    # "The red dots mark the fair game and the nine-in-ten game."
    assert "red dots" in prose_before(nb, index) and is_red(art["games"])
    # the dotted line marks the fair game, where the entropy is largest
    assert axline_at(ax, art["fair coin"], "x") == heads["fair"]
    # caption: "zero at 0 and 1, one bit at one half"; alt: "0 bits at both ends, a maximum of 1 bit"
    assert "zero at 0 and 1, one bit at one half" in caption
    p, h = xy(art["entropy"])
    assert (p[0], h[0], p[-1], h[-1]) == (0, 0, 1, 0)
    assert np.interp(0.5, p, h) == pytest.approx(1, abs=1e-12) and h.max() == pytest.approx(1, abs=1e-12)
    assert "bits" in alt and "[bits]" in ax.get_ylabel()


# --------------------------------------------------------------------------------------------
# surprise_curve (chapter "Cross-entropy")
# --------------------------------------------------------------------------------------------

def test_surprise_curve_draws_minus_log_q():
    fig = plots.surprise_curve()
    ax = fig.axes[0]
    art = drawn(ax)
    assert set(art) == {"loss", "log 2"}
    q, loss = xy(art["loss"])
    np.testing.assert_allclose(q, np.linspace(0.005, 1, 400), rtol=0, atol=1e-15)
    np.testing.assert_allclose(loss, -np.log(q), rtol=0, atol=1e-12)
    assert axline_at(ax, art["log 2"], "y") == pytest.approx(math.log(2), abs=1e-15)
    assert art["log 2"].get_linestyle() == ":"
    assert ax.get_xlabel() == "q = probability the model gives to the true class"
    assert ax.get_ylabel() == "loss = -log q  [nats]"
    bottom, top = ax.get_ylim()
    assert bottom == 0 and loss.max() <= top  # the whole curve is visible
    assert len(xy(drawn(plots.surprise_curve(points=10).axes[0])["loss"])[0]) == 10


def test_surprise_curve_matches_the_chapters_table():
    nb, index, call = the_figure_cell("surprise_curve")
    args, kwargs = literal_call(call)
    ax = plots.surprise_curve(*args, **kwargs).axes[0]
    art = drawn(ax)
    q, loss = xy(art["loss"])
    caption, alt = caption_and_alt(nb["cells"][index])
    table_cell = next(c for c in nb["cells"][index:] if c["cell_type"] == "code" and "-log q" in printed(c))
    rows = [(float(r["q(true class)"]), float(r["-log q [nats]"])) for r in parse_table(printed(table_cell))]
    inside = [(q_true, value) for q_true, value in rows if q[0] <= q_true <= q[-1]]
    assert len(inside) >= 4
    for q_true, value in inside:
        # -log q is linear in log q: interpolating the drawn points in log q reads the curve exactly
        assert np.interp(math.log(q_true), np.log(q), loss) == pytest.approx(value, abs=PRINTED_4)
    # alt: "a dotted horizontal line at log 2 meets it at q = one half", "down to zero at q = 1"
    half = dict(rows)[0.5]
    assert axline_at(ax, art["log 2"], "y") == pytest.approx(half, abs=PRINTED_4)
    assert np.interp(math.log(0.5), np.log(q), loss) == pytest.approx(half, abs=PRINTED_4)
    assert "dotted horizontal line at log 2 meets it at q = one half" in alt and "down to zero at q = 1" in alt
    assert q[-1] == 1 and loss[-1] == 0
    assert "above 5 nats" in alt and loss[0] > 5  # the largest value drawn, at the left end
    assert "−log q" in caption and "-log q" in ax.get_ylabel()


# --------------------------------------------------------------------------------------------
# kl_pair (chapter "KL divergence")
# --------------------------------------------------------------------------------------------

KL_TITLE = re.compile(r"KL\((\w+)‖(\w+)\) = (\d+\.\d{4}|inf) nats")


def check_kl_pair(p, q, labels=("p", "q")):
    fig = plots.kl_pair(p, q, labels=labels) if labels != ("p", "q") else plots.kl_pair(p, q)
    ax = fig.axes[0]
    art = drawn(ax)
    p64, q64 = (torch.as_tensor(v).double().numpy() for v in (p, q))
    assert set(art) == set(labels)
    n = len(p64)
    for label, values, shift in ((labels[0], p64, -0.2), (labels[1], q64, +0.2)):
        drawn_bars = bars(art[label])
        assert len(drawn_bars) == n
        for k, (centre, height, width) in enumerate(drawn_bars):
            assert centre == pytest.approx(k + shift, abs=1e-6)
            assert width == pytest.approx(0.4, abs=1e-7)
            assert height == pytest.approx(values[k], abs=1e-7)
    title = KL_TITLE.findall(ax.get_title())
    assert [t[:2] for t in title] == [tuple(labels), tuple(labels[::-1])]
    forward, backward = kl_nats(p64, q64), kl_nats(q64, p64)
    assert float(title[0][2]) == pytest.approx(forward, abs=PRINTED_4 + 1e-6)
    assert float(title[1][2]) == pytest.approx(backward, abs=PRINTED_4 + 1e-6)
    assert legend_texts(ax.get_legend()) == list(labels)
    assert list(ax.get_xticks()) == list(range(n))
    assert ax.get_xlabel() == "outcome" and ax.get_ylabel() == "probability"
    return ax, title


def test_kl_pair_draws_both_distributions_and_both_divergences():
    f64 = torch.float64
    check_kl_pair(torch.tensor([0.8, 0.15, 0.05], dtype=f64), torch.tensor([0.34, 0.33, 0.33], dtype=f64))
    check_kl_pair(torch.tensor([0.8, 0.15, 0.05]), torch.tensor([0.34, 0.33, 0.33]))  # float32
    check_kl_pair([0.5, 0.5, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4], labels=("data", "model"))  # 0 log 0 = 0
    g = torch.Generator().manual_seed(13)
    for _ in range(5):
        p, q = torch.rand(6, generator=g, dtype=torch.float64), torch.rand(6, generator=g, dtype=torch.float64)
        check_kl_pair(p / p.sum(), q / q.sum())


def test_kl_pair_is_the_chapters_pair():
    nb, index, call = the_figure_cell("kl_pair")
    names = [ast.unparse(a) for a in call.args]
    assert not call.keywords
    defining = code_cell(nb, rf"^{names[0]}\s*=", before=index)
    (p, dtype_p), (q, dtype_q) = (tensor_literal(assigned(defining, name)) for name in names)
    dtype = getattr(torch, dtype_p.removeprefix("torch."))
    assert dtype_q == dtype_p
    ax, title = check_kl_pair(torch.tensor(p, dtype=dtype), torch.tensor(q, dtype=dtype))
    # the chapter prints KL(p, q) and KL(q, p): the title shows the same four digits
    shown = re.findall(r"kl_divergence\((\w+), (\w+)\)", source(defining))
    values = printed_tensors(printed(defining))
    assert len(shown) == len(values) == 2
    title_by_pair = {(a, b): v for a, b, v in title}
    for (a, b), value in zip(shown, values, strict=True):
        labels = dict(zip(names, ("p", "q"), strict=True))
        assert title_by_pair[(labels[a], labels[b])] == f"{value:.4f}"
    # alt: "over three outcomes: p is 0.80, 0.15, 0.05 and q is 0.34, 0.33, 0.33;
    # the title gives KL(p||q) and KL(q||p) in nats"
    caption, alt = caption_and_alt(nb["cells"][index])
    count = re.search(r"over (\w+) outcomes", alt)
    assert count and WORDS[count.group(1)] == len(p)
    for label, _values in (("p", p), ("q", q)):
        listed = re.search(rf"\b{label} is ((?:\d+\.\d+(?:, )?)+)", alt)
        assert listed, f"the alt text does not list {label}"
        quoted = listed.group(1).split(", ")
        heights = [h for _, h, _ in bars(drawn(ax)[label])]
        assert len(quoted) == len(heights)
        for text, height in zip(quoted, heights, strict=True):
            assert float(text) == pytest.approx(height, abs=0.5 * 10 ** -len(text.split(".")[1]) + 1e-7)
    assert "KL(p||q)" in alt and "KL(q||p)" in alt and "nats" in alt
    # caption: "A peaked distribution p and a nearly uniform q"
    assert "peaked distribution p" in caption and "nearly uniform q" in caption
    assert max(p) > 0.5 and max(q) - min(q) < 0.05


# --------------------------------------------------------------------------------------------
# margin_curve (chapter "Two classes or many")
# --------------------------------------------------------------------------------------------

def test_margin_curve_draws_the_two_class_loss():
    fig = plots.margin_curve()
    ax = fig.axes[0]
    art = drawn(ax)
    assert set(art) == {"loss", "hinge", "batches"}
    m, loss = xy(art["loss"])
    np.testing.assert_allclose(m, np.linspace(-6, 6, 241), rtol=0, atol=1e-14)
    np.testing.assert_allclose(loss, two_class_loss(m), rtol=0, atol=1e-12)
    m_h, hinge = xy(art["hinge"])
    np.testing.assert_array_equal(m_h, m)
    np.testing.assert_array_equal(hinge, np.maximum(0.0, -m))
    assert art["hinge"].get_linestyle() == "--"
    dots = offsets(art["batches"])
    np.testing.assert_array_equal(dots[:, 0], [-6, -2, 2, 6])
    np.testing.assert_allclose(dots[:, 1], two_class_loss(dots[:, 0]), rtol=0, atol=1e-12)
    assert legend_texts(ax.get_legend()) == ["cross-entropy = log(1 + exp(-margin))", "max(0, -margin)"]
    assert ax.get_xlabel() == "logit margin  x[true] - x[other]"
    assert ax.get_ylabel() == "loss  [nats]"
    assert "margin" in ax.get_title()
    other = drawn(plots.margin_curve(low=-2.0, high=4.0, points=7).axes[0])
    np.testing.assert_allclose(xy(other["loss"])[0], np.linspace(-2, 4, 7), rtol=0, atol=1e-14)


def test_margin_curve_dots_are_the_chapters_four_batches():
    nb, index, call = the_figure_cell("margin_curve")
    args, kwargs = literal_call(call)
    ax = plots.margin_curve(*args, **kwargs).axes[0]
    art = drawn(ax)
    batches_cell = code_cell(nb, r"^batches\s*=", before=index)
    batches = ast.literal_eval(assigned(batches_cell, "batches"))
    target, _ = tensor_literal(assigned(code_cell(nb, r"^target\s*=", before=index), "target"))
    losses = {row["logits"]: float(row["CrossEntropyLoss"]) for row in parse_table(printed(batches_cell))}
    assert set(losses) == set(batches)
    expected = []
    for name, logits in batches.items():
        margins = {x[y] - x[1 - y] for x, y in zip(logits, target, strict=True)}
        assert len(margins) == 1, f"batch {name} has several margins: one dot cannot show it"
        (margin,) = margins
        assert losses[name] == pytest.approx(float(two_class_loss(margin)), abs=PRINTED_4)
        expected.append((margin, losses[name]))
    dots = sorted(map(tuple, offsets(art["batches"])))
    expected.sort()
    assert len(dots) == len(expected)
    for (x, y), (margin, loss) in zip(dots, expected, strict=True):
        assert x == margin
        assert y == pytest.approx(loss, abs=PRINTED_4)
        assert np.interp(x, *xy(art["loss"])) == pytest.approx(y, abs=1e-12)  # on the curve
    # alt: "with dots at the margins of the four batches above"; the prose says the same
    caption, alt = caption_and_alt(nb["cells"][index])
    assert "red dots are the four batches" in prose_before(nb, index) and is_red(art["batches"])
    count = re.search(r"the (\w+) batches", alt)
    assert count and WORDS[count.group(1)] == len(batches)
    # alt: "close to the dashed line max(0, -margin) away from zero"; caption: "a smooth version"
    m, loss = xy(art["loss"])
    _, hinge = xy(art["hinge"])
    gap = loss - hinge
    assert gap.max() == pytest.approx(math.log(2), abs=1e-12) and m[np.argmax(gap)] == pytest.approx(0, abs=1e-12)
    assert (gap[np.abs(m) >= 3] < 0.05).all()
    assert "max(0, -margin)" in alt and "max(0, −margin)" in caption


# --------------------------------------------------------------------------------------------
# label_smoothing_curve (chapter "Label smoothing")
# --------------------------------------------------------------------------------------------

def check_label_smoothing(n_classes, epsilons, points=300):
    fig = plots.label_smoothing_curve(n_classes=n_classes, epsilons=epsilons, points=points)
    ax = fig.axes[0]
    art = drawn(ax)
    assert set(art) == {f"{kind} eps={eps}" for eps in epsilons for kind in ("loss", "best")}
    assert legend_texts(ax.get_legend()) == [f"label_smoothing = {eps}" for eps in epsilons]
    bottom, top = ax.get_ylim()
    for eps, handle in zip(epsilons, ax.get_legend().legend_handles, strict=True):
        line, best = art[f"loss eps={eps}"], art[f"best eps={eps}"]
        q, loss = xy(line)
        np.testing.assert_allclose(q, np.linspace(0.02, 0.999, points), rtol=0, atol=1e-15)
        np.testing.assert_allclose(loss, smoothed_loss(q, eps, n_classes), rtol=0, atol=1e-10)
        assert bottom <= loss.min() and loss.max() <= top  # the whole curve is visible
        # the dotted line marks the minimum of the loss over (0, 1], found numerically
        where, step = numeric_argmin(lambda g, eps=eps: smoothed_loss(g, eps, n_classes), 1e-6, 1.0)
        assert axline_at(ax, best, "x") == pytest.approx(where, abs=step)
        assert best.get_linestyle() == ":"
        assert to_rgba(best.get_color()) == to_rgba(line.get_color()) == to_rgba(handle.get_color())
    classes = re.search(r"\((\d+) classes, the rest shared equally\)", ax.get_xlabel())
    assert classes and int(classes.group(1)) == n_classes
    assert ax.get_ylabel() == "loss  [nats]"
    assert "below 1 (dotted)" in ax.get_title()
    return ax, art


def test_label_smoothing_curve_draws_the_smoothed_loss_and_its_minimum():
    check_label_smoothing(5, (0.0, 0.1, 0.3))
    check_label_smoothing(3, (0.2,), points=50)
    check_label_smoothing(10, (0.05, 0.2))


def test_label_smoothing_curve_matches_the_chapter():
    nb, index, call = the_figure_cell("label_smoothing_curve")
    args, kwargs = literal_call(call)
    assert not args
    ax, art = check_label_smoothing(**kwargs)
    n_classes, epsilons = kwargs["n_classes"], kwargs["epsilons"]
    # the chapter's smoothed target (eps, C, y) is printed; its true-class entry is the minimum
    target_cell = code_cell(nb, r"^smoothed\s*=", before=index)
    eps = ast.literal_eval(assigned(target_cell, "eps"))
    assert ast.literal_eval(assigned(target_cell, "C")) == n_classes and eps in epsilons
    smoothed = printed_tensors(printed(target_cell))
    assert len(smoothed) == n_classes
    best = axline_at(ax, art[f"best eps={eps}"], "x")
    assert best == pytest.approx(max(smoothed), abs=PRINTED_4)
    # "At the minimum the loss is the entropy of the smoothed target": printed after the figure.
    # The curve is read at the dotted line by interpolation, off by at most f''h^2/8 < 3e-5 here.
    entropy_cell = next(c for c in nb["cells"][index:] if c["cell_type"] == "code" and "smoothed.log()" in source(c))
    at_minimum = printed_tensors(printed(entropy_cell))
    assert len(at_minimum) == 2 and at_minimum[0] == at_minimum[1]
    assert np.interp(best, *xy(art[f"loss eps={eps}"])) == pytest.approx(at_minimum[0], abs=PRINTED_4 + 3e-5)
    # caption: "for label_smoothing 0.0, 0.1 and 0.3; dotted lines mark each minimum"
    caption, alt = caption_and_alt(nb["cells"][index])
    listed = re.search(r"label_smoothing ((?:\d+\.\d+(?:, | and )?)+)", caption)
    assert listed and [float(v) for v in re.split(r", | and ", listed.group(1))] == list(epsilons)
    assert "dotted lines mark each minimum" in caption
    # alt: "Three loss curves ... among five classes; with smoothing each curve has its minimum below 1"
    count = re.search(r"(\w+) loss curves", alt)
    assert count and WORDS[count.group(1).lower()] == len(epsilons)
    classes = re.search(r"among (\w+) classes", alt)
    assert classes and WORDS[classes.group(1)] == n_classes
    assert "with smoothing each curve has its minimum below 1" in alt
    for e in epsilons:
        assert (axline_at(ax, art[f"best eps={e}"], "x") < 1) == (e > 0)
    # caption: "all three curves cross at q = 1/5, where the loss is log 5 for every ε"; alt: "one fifth"
    assert f"cross at q = 1/{n_classes}" in caption and f"log {n_classes} for every" in caption
    assert "at probability one fifth" in alt and n_classes == 5
    for e in epsilons:
        assert np.interp(1 / n_classes, *xy(art[f"loss eps={e}"])) == pytest.approx(math.log(n_classes), abs=1e-3)


# --------------------------------------------------------------------------------------------
# benchmark_bars (chapter "Cross-entropy on a GPU"): one figure per logits shape or metric
# --------------------------------------------------------------------------------------------

IMPLEMENTATIONS = ["torch", "lib", "naive"]
#: The chapter's benchmark figures: name -> (metric of benchmarks.results, logits shape or None, label).
BENCHMARK_FIGURES = {
    "fig-benchmark-small": ("forward_backward_ms", ("4096", "1000"), "setup"),
    "fig-benchmark-large": ("forward_backward_ms", ("8192", "32000"), "setup"),
    "fig-benchmark-memory": ("peak_tensors", None, "shape"),
}


def benchmark_rows():
    from benchmarks import results

    return results.read()


def check_bars(fig, series, title, ylabel):
    """The figure draws ``series`` ({legend label: value per implementation}) and nothing else."""
    (ax,) = fig.axes
    assert ax.get_title() == title and ax.get_ylabel() == ylabel and ax.get_xlabel() == "implementation"
    ticks = dict(zip([t.get_text() for t in ax.get_xticklabels()], ax.get_xticks(), strict=True))
    assert list(ticks) == IMPLEMENTATIONS
    art = drawn(ax)
    assert set(art) == {f"{name} | {label}" for name in IMPLEMENTATIONS for label in series}
    width = 0.8 / len(series)
    colours = {}
    for name_index, name in enumerate(IMPLEMENTATIONS):
        group = []
        for label, values in series.items():
            ((centre, height, bar_width),) = bars(art[f"{name} | {label}"])
            if math.isnan(values[name_index]):
                assert math.isnan(height)  # a missing measurement is no bar
            else:
                assert height == pytest.approx(values[name_index], rel=1e-12)
            assert bar_width == pytest.approx(width) and abs(centre - ticks[name]) < 0.4
            group.append(centre)
            (rect,) = art[f"{name} | {label}"]
            colours.setdefault(label, to_rgba(rect.get_facecolor()))
            assert to_rgba(rect.get_facecolor()) == colours[label]
        np.testing.assert_allclose(np.diff(group), width, rtol=1e-9)  # side by side, in the legend's order
    assert len(set(colours.values())) == len(series)
    (legend,) = fig.legends
    assert legend_texts(legend) == list(series)
    assert reads_on_a_phone(fig)


def test_benchmark_figures_draw_the_committed_results():
    from benchmarks import results

    rows = results.read()
    cells = figure_cells("benchmark_bars")
    names = [nb["cells"][index]["metadata"]["mystnb"]["figure"]["name"] for nb, index, _ in cells]
    assert names == list(BENCHMARK_FIGURES)
    for (nb, index, call), name in zip(cells, names, strict=True):
        metric, shape, label = BENCHMARK_FIGURES[name]
        subset = rows if shape is None else [r for r in rows if (r["N"], r["C"]) == shape]
        assert subset
        by = results.setup if label == "setup" else (lambda r: f"{r['N']} x {r['C']}, malloc={r['malloc']}")
        expected = results.bar_values(subset, metric, by)
        title = "Peak memory, forward + backward" if shape is None else f"N = {shape[0]}, C = {shape[1]}"
        ylabel = "float32 N x C tensors" if metric == "peak_tensors" else "forward + backward  [ms]"
        check_bars(redraw(nb, index, call), expected, title, ylabel)
        # the caption names every machine, torch release and date that measured the rows drawn
        caption, alt = caption_and_alt(nb["cells"][index])
        for machine, _device, release, date in results.machines(subset):
            short = machine.split(",")[0]
            assert short in caption and short in alt and release in caption and date in caption
        assert ("No GPU was measured." in caption) == all(r["device"] == "cpu" for r in subset)
        assert ("time" in caption.lower()) == (metric != "peak_tensors")
        assert "torch, lib and the naive formula" in alt


def test_benchmark_figure_of_a_second_machine_with_a_missing_value():
    from benchmarks import results

    rows = benchmark_rows()
    gpu = [dict(r, machine="Some GPU", malloc="-", peak_memory_mib="") for r in rows if r["malloc"] == "default"]
    gpu = [r for r in gpu if r["implementation"] != "naive" or r["N"] != "4096"]  # one missing row
    for metric in ("forward_backward_ms", "peak_tensors"):
        series = results.bar_values([r for r in rows + gpu if r["N"] == "4096"], metric)
        assert any(math.isnan(v) for values in series.values() for v in values)
        fig = plots.benchmark_bars(IMPLEMENTATIONS, series, title="t", ylabel="y")
        check_bars(fig, series, "t", "y")


# --------------------------------------------------------------------------------------------
# The stored figures are the ones lib.plots draws now
# --------------------------------------------------------------------------------------------
# The site shows the PNG stored in each notebook (_config.yml: execute_notebooks "off") and
# nbval does not compare it, so after a change to lib.plots a chapter keeps showing the old
# figure until it is re-executed. Each stored PNG is compared, pixel for pixel, with the figure
# drawn again by the chapter's own call and rendered as IPython's inline backend renders it.

FIGURE_FUNCTIONS = ["binary_entropy", "surprise_curve", "kl_pair", "margin_curve", "label_smoothing_curve",
                    "benchmark_bars", "saturated_bce", "focal_loss_curve"]
#: The matplotlib that recorded the stored figures; another release may place pixels differently.
RECORDED_WITH = "3.11.2"
#: Chapters whose stored figure predates a deliberate change to lib.plots: re-execute them
#: (python -m tools.reexecute chapters/<name>) and remove them here.
STALE = {}


def redraw(nb, index, call):
    """The figure of a chapter's ``plots.<function>(...)`` cell, drawn again with the chapter's arguments."""
    function = call.func.attr
    if function == "kl_pair":
        names = [ast.unparse(a) for a in call.args]
        defining = code_cell(nb, rf"^{names[0]}\s*=", before=index)
        tensors = []
        for name in names:
            values, dtype = tensor_literal(assigned(defining, name))
            tensors.append(torch.tensor(values, dtype=getattr(torch, dtype.removeprefix("torch."))))
        return plots.kl_pair(*tensors)
    if function == "benchmark_bars":
        # the chapter's own helpers (IMPLEMENTATIONS, bar_values, time_ms) over the committed rows
        namespace = {"math": math, "plots": plots, "measured": benchmark_rows()}
        exec(source(code_cell(nb, r"^def bar_values", before=index)), namespace)
        return eval(compile(ast.Expression(call), "<figure call>", "eval"), namespace)
    args, kwargs = literal_call(call)
    return getattr(plots, function)(*args, **kwargs)


def stored_figures():
    """``(id, notebook name, stored PNG bytes, nb, index, call)`` of every figure cell of the chapters."""
    found = []
    for path, nb in notebooks():
        for index, cell in enumerate(nb["cells"]):
            src = source(cell)
            for function in FIGURE_FUNCTIONS:
                if shows_a_figure(cell, function):
                    (call,) = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Call)
                               and isinstance(n.func, ast.Attribute) and n.func.attr == function]
                    pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
                    assert len(pngs) == 1, f"{path.name}: the cell calling plots.{function} stores {len(pngs)} PNGs"
                    png = "".join(pngs[0]) if isinstance(pngs[0], list) else pngs[0]
                    found.append((f"{path.stem}:{function}:{index}", path.name, png, nb, index, call))
    return found


_PIXELS = {}


def pixels_now_and_stored(key):
    """Decoded RGBA arrays of the stored PNG and of the figure rendered now, cached by id."""
    if key not in _PIXELS:
        import base64
        import io

        from matplotlib.image import imread

        from lib import display

        for fid, _, png, nb, index, call in stored_figures():
            fresh, _ = display.retina_png(redraw(nb, index, call))  # as lib.display.setup() shows a figure
            _PIXELS[fid] = tuple(imread(io.BytesIO(base64.b64decode(data))) for data in (png, fresh))
    return _PIXELS[key]


def same_pixels(a, b):
    return a.shape == b.shape and bool(np.array_equal(a, b))


@pytest.mark.parametrize("figure", [
    pytest.param(f[0], marks=pytest.mark.xfail(reason=STALE[f[1]], strict=False)) if f[1] in STALE else f[0]
    for f in stored_figures()])
def test_stored_figure_is_what_lib_plots_draws(figure):
    if matplotlib.__version__ != RECORDED_WITH:
        pytest.skip(f"matplotlib {matplotlib.__version__} is not {RECORDED_WITH}, which recorded the stored figures")
    stored, now = pixels_now_and_stored(figure)
    assert same_pixels(stored, now), f"{figure}: the stored PNG is not what lib.plots draws now; re-execute the chapter"


# --------------------------------------------------------------------------------------------
# Every figure reads on a phone
# --------------------------------------------------------------------------------------------
# The page shows a figure at its width in pixels at plots.DPI (the PNG holds twice as many, for
# high-density screens) and shrinks it to the column: at 390 CSS px (a phone) to about 340 px,
# a scale of about 0.53 for a figure 6.4 in wide. A 10 pt label is then about 7.3 CSS px
# (tests/test_site.py measures it on the page). A wider figure or smaller text falls below that.

#: The widest figure, in inches, and the smallest text, in points, that still read on a phone.
WIDEST_INCHES = 6.4
SMALLEST_POINTS = 10.0


def reads_on_a_phone(figure):
    """Whether ``figure`` is at most WIDEST_INCHES wide with no text under SMALLEST_POINTS."""
    return figure.get_figwidth() <= WIDEST_INCHES and smallest_text(figure) >= SMALLEST_POINTS


def smallest_text(figure):
    """The size in points of the smallest text a figure draws (titles, labels, ticks, legends)."""
    figure.canvas.draw()  # tick labels exist only once the figure is drawn
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes)


@pytest.mark.parametrize("figure", [f[0] for f in stored_figures() if f[0].split(":")[1] != "benchmark_results"])
def test_figure_reads_on_a_phone(figure):
    """The chapter's figure is at most 6.4 in wide, one panel, and no text in it is below 10 pt."""
    (_, _, _, nb, index, call), = [f for f in stored_figures() if f[0] == figure]
    drawn_now = redraw(nb, index, call)
    assert reads_on_a_phone(drawn_now) and len(drawn_now.axes) == 1 and drawn_now.dpi == plots.DPI


def test_stored_figures_are_retina_pngs_of_their_width():
    """Each stored PNG (outside chapter 41, see STALE) is twice as wide as the width in its output
    metadata, which MyST-NB writes into the page as ``style="width: ...px"``; no height is stored."""
    import base64
    import io

    from matplotlib.image import imread

    checked = 0
    for path, nb in notebooks():
        if path.name in STALE:
            continue
        for cell in nb["cells"]:
            for output in cell.get("outputs", []):
                if "image/png" in output.get("data", {}):
                    shown = output["metadata"]["image/png"]
                    pixels = imread(io.BytesIO(base64.b64decode("".join(output["data"]["image/png"]))))
                    assert set(shown) == {"width"} and pixels.shape[1] // 2 == shown["width"], path.name
                    checked += 1
    assert checked >= 5
