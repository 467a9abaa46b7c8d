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


def next_token_training(losses, log_v, floor):
    """Plot a language model's training loss per step, with ``ln V`` and the bigram floor.

    Defined in "The next-token loss".

    ``losses`` are the mean next-token losses in nats, one per optimizer step (step 0 first);
    ``log_v`` is the loss of a uniform guess over the ``V`` tokens, ``floor`` the conditional
    entropy of the next token given the current one in the training text, the lowest training
    loss a bigram model can approach.
    """
    losses = torch.as_tensor(losses, dtype=torch.float64).detach().cpu()
    steps = torch.arange(losses.numel())
    fig, ax = new_figure()
    ax.plot(_np(steps), _np(losses), color="tab:blue", lw=2, label="training loss", gid="loss")
    ax.axhline(log_v, color="gray", ls="--", lw=1, label=f"ln V = {log_v:.4f}  (uniform guess)", gid="ln V")
    ax.axhline(floor, color="tab:green", ls=":", lw=1.5, label=f"bigram floor = {floor:.4f}", gid="bigram floor")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("mean next-token loss  [nats]")
    ax.set_title("A bigram model starts at ln V and falls towards its floor")
    ax.set_xlim(0, losses.numel() - 1)
    ax.legend()
    return fig


def distillation_gradient(student, teacher, temperatures):
    """Plot the gradient norm of the distillation soft term against the temperature, log-log.

    The soft term is ``kl_div(log_softmax(student / T), softmax(teacher / T), 'batchmean')``
    for each ``T`` of ``temperatures``; the lines are the norm of its gradient with respect to
    the student's logits (gid ``"without T^2"``) and that norm times ``T²`` (``"with T^2"``); the
    dashed horizontal line (``"limit"``) is the large-``T`` limit of the latter,
    ``‖z - v‖ / (C N)`` with ``z - v`` centred per row. Defined in "Soft targets: distillation
    and temperature".
    """
    from lib import functional

    student, teacher = student.detach().cpu().double(), teacher.detach().cpu().double()
    n, c = student.shape
    temperatures = torch.as_tensor(temperatures, dtype=torch.float64).cpu()
    norms = []
    for t in temperatures.tolist():
        z = student.clone().requires_grad_()
        soft = functional.kl_div(functional.log_softmax(z / t, dim=1), functional.softmax(teacher / t, dim=1),
                                 reduction="batchmean")
        (grad,) = torch.autograd.grad(soft, z)
        norms.append(grad.norm())
    norms = torch.stack(norms)
    diff = student - teacher
    limit = float((diff - diff.mean(dim=1, keepdim=True)).norm() / (c * n))
    fig, ax = new_figure()
    ax.plot(_np(temperatures), _np(norms), color="tab:orange", lw=2, label="without T²", gid="without T^2")
    ax.plot(_np(temperatures), _np(temperatures**2 * norms), color="tab:blue", lw=2, label="with T²",
            gid="with T^2")
    ax.axhline(limit, color="gray", ls="--", lw=1, label="large-T limit ‖z − v‖ / (C N)", gid="limit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("gradient norm w.r.t. student logits")
    ax.set_title("The soft term's gradient shrinks as 1/T²; times T² it levels off")
    ax.legend()
    return fig


def contrastive_scale_curve(pairs, scales):
    """Plot the symmetric contrastive (CLIP) loss against the logit scale, log x axis.

    ``pairs`` maps a label to ``(image_embeds, text_embeds)``, each ``(n, d)``; both are
    normalised to unit length, and the loss at scale ``s`` is the mean of
    ``cross_entropy(s · U Vᵀ, arange(n))`` and ``cross_entropy(s · V Uᵀ, arange(n))``
    (gid ``"loss <label>"``). The dotted horizontal line is ``ln n`` (gid ``"ln n"``), the loss
    of every pair at scale 0; the dashed vertical lines mark CLIP's initial scale ``1 / 0.07``
    (``"init"``) and its clamp at 100 (``"clamp"``). Defined in "Contrastive losses are
    cross-entropy".
    """
    from lib import functional

    scales = torch.as_tensor(scales, dtype=torch.float64).cpu()
    fig, ax = new_figure()
    n = None
    for label, (images, texts) in pairs.items():
        u, v = (e.detach().cpu().double() for e in (images, texts))
        u, v = u / u.norm(dim=1, keepdim=True), v / v.norm(dim=1, keepdim=True)
        n = u.shape[0]
        target = torch.arange(n)
        sims = u @ v.T
        loss = torch.stack([(functional.cross_entropy(s * sims, target)
                             + functional.cross_entropy(s * sims.T, target)) / 2 for s in scales.tolist()])
        ax.plot(_np(scales), _np(loss), lw=2, label=label, gid=f"loss {label}")
    ax.axhline(math.log(n), color="gray", ls=":", lw=1, label=f"ln n = ln {n}", gid="ln n")
    ax.axvline(1 / 0.07, color="gray", ls="--", lw=1, gid="init")
    ax.axvline(100, color="black", ls="--", lw=1, gid="clamp")
    ax.set_xscale("log")
    ax.set_xlabel("logit scale s = 1 / τ  (dashed: CLIP's start 1/0.07 and clamp 100)")
    ax.set_ylabel("symmetric loss  [nats]")
    ax.set_title(f"{n} pairs: near ln n at small s; matched pairs fall to 0, random rise")
    ax.legend()
    return fig


def saturated_bce(high=120.0, points=1201):
    """Plot, in float32 on the CPU, the loss of one logit ``z`` with target 0 as ``BCEWithLogitsLoss(z)``
    and as ``BCELoss(sigmoid(z))``: the second jumps to the clamp, 100, where the float32 sigmoid
    rounds to 1. Defined in "Binary and multi-label losses in practice"."""
    from lib import functional

    z = torch.linspace(0, high, points, dtype=torch.float32)
    target = torch.zeros_like(z)
    with_logits = functional.binary_cross_entropy_with_logits(z, target, reduction="none")
    on_sigmoid = functional.binary_cross_entropy(torch.sigmoid(z), target, reduction="none")
    fig, ax = new_figure()
    ax.plot(_np(z), _np(with_logits), color="tab:blue", lw=2, label="BCEWithLogitsLoss(z)", gid="with logits")
    ax.plot(_np(z), _np(on_sigmoid), color="tab:red", lw=2, ls="--", label="BCELoss(sigmoid(z))",
            gid="on sigmoid")
    ax.axhline(100, color="gray", ls=":", lw=1, gid="clamp")
    ax.set_xlabel("logit z  (target 0, float32)")
    ax.set_ylabel("loss  [nats]")
    ax.set_title("BCELoss on a saturated sigmoid jumps to the clamp, 100")
    ax.set_xlim(0, high)
    ax.legend(loc="lower right")
    return fig


def memory_curves(sizes, curves, *, xlabel, ylabel, title):
    """Lines of memory against a size, one per entry of ``curves``. Defined in "at scale".

    ``curves`` maps a legend label to one value per entry of ``sizes``; each line's ``gid`` is its
    label. 6.4 inches wide with text of at least 10 points, like the book's other figures.
    """
    fig, ax = new_figure()
    for k, (label, values) in enumerate(curves.items()):
        values = [float(v) for v in values]
        if len(values) != len(sizes):
            raise ValueError(f"curve {label!r} has {len(values)} values for {len(sizes)} sizes")
        (line,) = ax.plot(sizes, values, marker="o", color=plt.cm.tab10(k), label=label)
        line.set_gid(label)
    ax.tick_params(labelsize=10)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=10)
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
