"""Vocabulary-parallel cross-entropy (Megatron-LM's): each process holds a slice of the classes.

When the output layer is split by columns over P processes, process p holds the logits of its
own range of the vocabulary, ``x[:, start_p:end_p]``, and no process ever holds a whole row.
The exact loss ``log Σ_j exp(x_j) - x_y`` still needs only three all-reduces of one number per
token: the maximum (for the shift), the target's logit (only the process whose range holds the
target contributes it, the others 0), and the sum of the shifted exponentials. The gradient is
local: ``softmax(x) - one_hot(y)`` restricted to the process's own columns.

Run ``python -m lib.vocab_parallel`` to see it with ``torch.distributed`` (gloo backend, two
processes on the CPU) next to the single-process loss; ``--world-size`` and ``--vocab`` change
the set-up (an uneven split, such as 1001 classes over two processes, works too).

Defined in the chapter "Cross-entropy at scale: never materialise the logits"
(``chapters/52_at_scale.ipynb``).
"""

import argparse
import os
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["vocab_range", "vocab_parallel_cross_entropy", "run"]


def vocab_range(vocab_size, rank, world_size):
    """The classes ``[start, end)`` that process ``rank`` of ``world_size`` holds.

    The first ``vocab_size % world_size`` processes hold one class more (as ``torch.tensor_split``
    splits), so every vocabulary size can be split; Megatron-LM pads the vocabulary instead.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    if vocab_size < world_size:
        raise ValueError(f"cannot split {vocab_size} classes over {world_size} processes")
    base, extra = divmod(vocab_size, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def vocab_parallel_cross_entropy(local_logits, target, vocab_start, group=None):
    """Mean cross-entropy of logits split by classes over the processes of ``group``.

    Args:
        local_logits (Tensor): ``(N, V_p)``, this process's columns of the ``(N, V)`` logits,
            the classes ``vocab_start`` to ``vocab_start + V_p``.
        target (Tensor): ``(N)`` class indices in ``[0, V)``, the same on every process.
        vocab_start (int): the first class this process holds.
        group: the process group (``None``: the default group).

    Returns:
        Tensor: the mean loss over the N tokens, the same on every process. Its backward pass
        gives this process's columns of the gradient, ``(softmax - one_hot) / N``.

    Explained in the chapter "Cross-entropy at scale" (``chapters/52_at_scale.ipynb``).
    """
    return _VocabParallelCrossEntropy.apply(local_logits, target, vocab_start, group)


class _VocabParallelCrossEntropy(torch.autograd.Function):
    """The three all-reduces in the forward pass; the backward pass needs none."""

    @staticmethod
    def forward(ctx, x, target, vocab_start, group):
        # 1. the global maximum of each row, for the shift
        shift = x.amax(1)
        dist.all_reduce(shift, op=dist.ReduceOp.MAX, group=group)
        shifted = x - shift.unsqueeze(1)
        # 2. the target's shifted logit: only the process that holds the target adds it
        local = target - vocab_start
        mine = (local >= 0) & (local < x.shape[1])
        index = torch.where(mine, local, torch.zeros_like(local))
        picked = shifted.gather(1, index.unsqueeze(1)).squeeze(1)
        picked = torch.where(mine, picked, torch.zeros_like(picked))
        dist.all_reduce(picked, op=dist.ReduceOp.SUM, group=group)
        # 3. the sum of the shifted exponentials over the whole vocabulary
        exps = shifted.exp_()
        total = exps.sum(1)
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        ctx.save_for_backward(exps, total, index, mine)
        return (total.log() - picked).mean()

    @staticmethod
    def backward(ctx, grad):
        exps, total, index, mine = ctx.saved_tensors
        gradient = exps / total.unsqueeze(1)
        rows = torch.arange(len(index))[mine]
        gradient[rows, index[mine]] -= 1
        return gradient * (grad / len(index)), None, None, None


def _worker(rank, world_size, folder, logits, target):
    init_method = "file://" + os.path.join(folder, "rendezvous")
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size)
    try:
        start, end = vocab_range(logits.shape[1], rank, world_size)
        local = logits[:, start:end].clone().requires_grad_()
        loss = vocab_parallel_cross_entropy(local, target, start)
        loss.backward()
        torch.save((rank, start, end, loss.item(), local.grad), os.path.join(folder, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run(logits, target, world_size=2, start_method="spawn"):
    """Compute the loss of ``logits`` with ``world_size`` processes (gloo, CPU), each holding its
    :func:`vocab_range` of the classes.

    The processes meet through a file in a fresh temporary folder (``file://`` initialisation),
    so no port has to be chosen for the rendezvous (gloo's own connections between the
    processes use ports the system picks), and each writes its result there.

    Args:
        logits (Tensor): ``(N, V)``, the whole logits (each process takes its columns).
        target (Tensor): ``(N)`` class indices.
        world_size (int): the number of processes P. Default: 2.
        start_method (str): ``'spawn'`` (default; safe from any caller) or ``'fork'`` (faster,
            no re-import of torch; from a fresh process such as this module's ``main``).

    Returns:
        list: one ``(rank, start, end, loss, gradient of its columns)`` per process, by rank.
    """
    logits, target = logits.detach().cpu(), target.cpu()
    with tempfile.TemporaryDirectory() as folder:
        mp.start_processes(_worker, args=(world_size, folder, logits, target), nprocs=world_size,
                           start_method=start_method)
        return [torch.load(os.path.join(folder, f"rank{rank}.pt")) for rank in range(world_size)]


def main(argv=None):
    """Print the vocab-parallel loss next to the single-process one (seeded data)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=1000)
    args = parser.parse_args(argv)
    generator = torch.Generator().manual_seed(52)
    logits = torch.randn(args.tokens, args.vocab, generator=generator)
    target = torch.randint(0, args.vocab, (args.tokens,), generator=generator)

    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"  # fork: no re-import
    results = run(logits, target, args.world_size, start_method)
    x = logits.clone().requires_grad_()
    single = torch.nn.functional.cross_entropy(x, target)
    single.backward()
    for rank, start, end, loss, _ in results:
        print(f"process {rank}: classes {start}..{end - 1} ({end - start}), loss {loss:.4f}")
    gradient = torch.cat([g for *_, g in results], dim=1)
    losses = {loss for *_, loss, _ in results}
    print(f"single process (F.cross_entropy): loss {single.item():.4f}")
    print(f"same loss on every process: {len(losses) == 1}")
    print(f"loss equal to single process's (atol 1e-6): {all(abs(v - single.item()) <= 1e-6 for v in losses)}")
    same = torch.allclose(gradient, x.grad, rtol=1e-5, atol=1e-8)
    print(f"gradient columns equal to single process's (rtol 1e-5, atol 1e-8): {same}")


if __name__ == "__main__":
    main()
