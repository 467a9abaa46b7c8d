"""The book's figures, drawn with matplotlib from the library's own functions.

Each function draws one figure and returns it; the chapter that shows the figure introduces
the function. Figures have a white background so they read the same in light and dark mode.

Every line, marker set and bar a function draws carries a ``gid`` (``artist.get_gid()``) that
names what it shows, such as ``"entropy"`` or ``"best eps=0.1"``, so that a test can find each
artist and check its data against an independent formula (``tests/test_figures.py``).
"""

import math

import matplotlib.pyplot as plt
import torch

from lib import info

#: Figure size in inches (width, height) and resolution used throughout the book.
FIGSIZE = (6.4, 3.6)
DPI = 100


def new_figure(ncols=1, figsize=FIGSIZE):
    """Return ``(figure, axes)`` in the book's style: white background, light grid."""
    fig, axes = plt.subplots(1, ncols, figsize=figsize, dpi=DPI, facecolor="white", squeeze=False)
    for ax in axes.flat:
        ax.set_facecolor("white")
        ax.grid(alpha=0.3)
    fig.set_layout_engine("constrained")
    plt.close(fig)  # the chapter displays the returned figure once; pyplot must not show it again
    return fig, (axes[0, 0] if ncols == 1 else list(axes.flat))


def binary_entropy(points=201):
    """Plot the entropy of a coin, ``H(p, 1-p)``, in bits against ``p``. Defined in "Entropy"."""
    p = torch.linspace(0, 1, points, dtype=torch.float64)
    h = info.entropy(torch.stack([p, 1 - p], dim=-1), base=2)
    fig, ax = new_figure()
    ax.plot(_np(p), _np(h), color="tab:blue", lw=2, gid="entropy")
    ax.axvline(0.5, color="gray", ls=":", lw=1, gid="fair coin")
    # the chapter's two games: the fair coin and the nine-in-ten coin
    ax.scatter([0.5, 0.9], [1.0, float(info.entropy(torch.tensor([0.9, 0.1], dtype=torch.float64), base=2))],
               color="tab:red", zorder=3, gid="games")
    ax.set_xlabel("p = probability of heads")
    ax.set_ylabel("H(p, 1 - p)  [bits]")
    ax.set_title("Entropy of a coin: largest for a fair coin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    return fig


def surprise_curve(points=400):
    """Plot ``-log q`` in nats against the probability ``q`` given to the true class. Defined in "Cross-entropy"."""
    q = torch.linspace(0.005, 1, points, dtype=torch.float64)
    fig, ax = new_figure()
    ax.plot(_np(q), _np(-torch.log(q)), color="tab:blue", lw=2, gid="loss")
    ax.set_xlabel("q = probability the model gives to the true class")
    ax.set_ylabel("loss = -log q  [nats]")
    ax.set_title("A confident wrong answer costs without limit")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 5.5)
    ax.axhline(math.log(2), color="gray", ls=":", lw=1, gid="log 2")
    return fig


def kl_pair(p, q, labels=("p", "q")):
    """Bar chart of two distributions with both KL divergences in nats in the title. Defined in "KL divergence"."""
    p, q = torch.as_tensor(p).detach().cpu(), torch.as_tensor(q).detach().cpu()
    outcomes = torch.arange(p.numel())
    fig, ax = new_figure()
    ax.bar(_np(outcomes - 0.2), _np(p), width=0.4, label=labels[0], color="tab:blue", gid=labels[0])
    ax.bar(_np(outcomes + 0.2), _np(q), width=0.4, label=labels[1], color="tab:orange", gid=labels[1])
    forward = float(info.kl_divergence(p, q))
    backward = float(info.kl_divergence(q, p))
    ax.set_title(f"KL({labels[0]}‖{labels[1]}) = {forward:.4f} nats,   "
                 f"KL({labels[1]}‖{labels[0]}) = {backward:.4f} nats")
    ax.set_xlabel("outcome")
    ax.set_ylabel("probability")
    ax.set_xticks(outcomes.tolist())
    ax.legend()
    return fig


def margin_curve(low=-6.0, high=6.0, points=241):
    """Plot the two-class loss against the logit margin ``x_true - x_other``. Defined in "Two classes or many".

    The red dots are the margins of the chapter's four batches: scores of ±1 and ±3 for the
    right or the wrong class, margins 2, 6, -2 and -6.
    """
    from lib import functional

    margin = torch.linspace(low, high, points, dtype=torch.float64)
    logits = torch.stack([torch.zeros_like(margin), margin], dim=1)  # class 1 is the true class
    loss = functional.cross_entropy(logits, torch.ones(points, dtype=torch.long), reduction="none")
    fig, ax = new_figure()
    ax.plot(_np(margin), _np(loss), color="tab:blue", lw=2, label="cross-entropy = log(1 + exp(-margin))",
            gid="loss")
    ax.plot(_np(margin), _np(torch.clamp(-margin, min=0)), color="gray", ls="--", lw=1, label="max(0, -margin)",
            gid="hinge")
    batches = (-6, -2, 2, 6)
    ax.scatter(batches, [math.log1p(math.exp(-m)) for m in batches], color="tab:red", zorder=3, gid="batches")
    ax.set_xlabel("logit margin  x[true] - x[other]")
    ax.set_ylabel("loss  [nats]")
    ax.set_title("Two classes: the loss depends only on the margin")
    ax.legend()
    return fig


def label_smoothing_curve(n_classes=5, epsilons=(0.0, 0.1, 0.3), points=300):
    """Plot the loss against the true class's probability for several ε. Defined in "label_smoothing"."""
    from lib import functional

    q_true = torch.linspace(0.02, 0.999, points, dtype=torch.float64)
    rest = (1 - q_true) / (n_classes - 1)
    probs = torch.cat([q_true[:, None], rest[:, None].expand(points, n_classes - 1)], dim=1)
    target = torch.zeros(points, dtype=torch.long)
    fig, ax = new_figure()
    for eps in epsilons:
        loss = functional.cross_entropy(probs.log(), target, reduction="none", label_smoothing=eps)
        best = 1 - eps + eps / n_classes
        line, = ax.plot(_np(q_true), _np(loss), lw=2, label=f"label_smoothing = {eps}", gid=f"loss eps={eps}")
        ax.axvline(best, color=line.get_color(), ls=":", lw=1, gid=f"best eps={eps}")
    ax.set_xlabel(f"probability of the true class ({n_classes} classes, the rest shared equally)")
    ax.set_ylabel("loss  [nats]")
    ax.set_title("Label smoothing moves the best prediction below 1 (dotted)")
    ax.set_ylim(0, 4)
    ax.legend()
    return fig


def _np(tensor):
    """A tensor as a NumPy array on the CPU, the form matplotlib expects."""
    return tensor.detach().cpu().numpy()


def benchmark_bars(groups, series, *, title, ylabel, xlabel="implementation"):
    """Bars of measured values, one group per x tick, one colour per series. Defined in "on a GPU".

    ``series`` maps a legend label (such as the machine that measured) to one value per group;
    a nan is no bar. Each bar's ``gid`` is ``"<group> | <label>"``. The figure is 6.4 inches wide
    with text of at least 10 points, so that it stays legible on a phone.
    """
    labels = list(series)
    fig, ax = new_figure(figsize=(6.4, 3.2 + 0.3 * len(labels)))
    width = 0.8 / len(labels)
    for k, label in enumerate(labels):
        values = [float(v) for v in series[label]]
        if len(values) != len(groups):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(groups)} groups")
        positions = [i + (k - (len(labels) - 1) / 2) * width for i in range(len(groups))]
        bars = ax.bar(positions, values, width=width, label=label, color=plt.cm.tab10(k))
        for bar, group in zip(bars, groups, strict=True):
            bar.set_gid(f"{group} | {label}")
    ax.set_xticks(range(len(groups)), groups, fontsize=10)
    ax.tick_params(axis="y", labelsize=10)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    fig.legend(loc="outside lower center", fontsize=10, ncols=1)
    return fig


def focal_loss_curve(gammas=(0.0, 0.5, 1.0, 2.0, 5.0), points=300):
    """Plot the focal loss ``-(1 - p)^γ log p`` against the probability ``p`` of the true class, one line per γ.

    Computed by :func:`lib.imbalance.focal_loss` on two-class logits ``log p, log(1 - p)``;
    γ = 0 is the cross-entropy. Defined in "Imbalance beyond weight".
    """
    from lib import imbalance

    p = torch.linspace(0.01, 0.999, points, dtype=torch.float64)
    logits = torch.stack([p.log(), (1 - p).log()], dim=1)
    target = torch.zeros(points, dtype=torch.long)
    fig, ax = new_figure()
    for gamma in gammas:
        loss = imbalance.focal_loss(logits, target, gamma=gamma, reduction="none")
        label = f"γ = {gamma:g}" + (" (cross-entropy)" if gamma == 0 else "")
        ax.plot(_np(p), _np(loss), lw=2, label=label, gid=f"focal gamma={gamma:g}")
    ax.axvspan(0.6, 1.0, color="gray", alpha=0.12, lw=0, gid="well classified")
    ax.set_xlabel("p_t = probability of the true class")
    ax.set_ylabel("loss  [nats]")
    ax.set_title("The focal loss shrinks the loss of well-classified samples")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 5)
    ax.legend()
    return fig


def reliability_diagram(curves, n_bins=10):
    """Reliability curves: accuracy against mean confidence per bin, one line per ``(label, probs, target)``.

    For each curve, the non-empty bins of :func:`lib.calibration.reliability_bins` are drawn as
    markers joined by a line at (mean confidence, accuracy) (gid ``"reliability <label>"``); the
    legend holds each curve's expected calibration error with the same bins. The dashed diagonal
    (gid ``"diagonal"``) is perfect calibration: a curve below it is overconfident. Defined in
    "From logits to predictions and metrics".
    """
    from lib import calibration

    fig, ax = new_figure()
    for label, probs, target in curves:
        probs, target = probs.detach().cpu().double(), target.detach().cpu()
        bins = calibration.reliability_bins(probs, target, n_bins)
        ece = calibration.expected_calibration_error(probs, target, n_bins)
        used = bins.count > 0
        ax.plot(_np(bins.confidence[used]), _np(bins.accuracy[used]), marker="o", lw=2,
                label=f"{label}: ECE = {ece.item():.4f}", gid=f"reliability {label}")
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=1, label="perfect calibration", gid="diagonal")
    ax.set_xlabel(f"mean confidence in the bin ({n_bins} equal-width bins)")
    ax.set_ylabel("accuracy in the bin")
    ax.set_title("Below the diagonal: more confident than accurate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return fig
