"""pytest's settings for every run in this repository: the tests in tests/ and nbval over chapters/.

One worker, one share of the cores. pytest-xdist runs one worker per core (``-n auto``), and each
worker's PyTorch, and each chapter kernel that nbval starts from it, would otherwise start a
thread per core as well: twice as many threads as cores with two workers, and nbval over the
chapters took twice as long on two cores (110 s against 55 s, README). A worker therefore gives
PyTorch ``cores // workers`` threads (at least one), through ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS``, which the kernels inherit; where either is already set in the environment,
nothing is changed. A run in one process (``-n 0``) changes nothing. The chapters' outputs do
not depend on the number of threads: nbval compares them either way.

Long modules first. pytest-xdist hands out whole files (``--dist loadfile``) in the order of the
collection (``--no-loadscope-reorder``). A module marked ``heavy`` (``pytestmark``: it runs for
tens of seconds, building or opening the book) goes to the front, the one with the most tests
first, so that a run does not end with one worker busy on it while the other has nothing left.
"""

import collections
import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers, cores):
    """PyTorch threads for each of ``workers`` processes sharing ``cores``: None for one process."""
    return None if workers <= 1 else max(1, cores // workers)


def pytest_configure(config):
    threads = threads_per_worker(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), cores())
    if threads is None or any(name in os.environ for name in THREAD_VARIABLES):
        return  # one process, or threads chosen in the environment
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if "torch" in sys.modules:  # imported before this hook: tell it directly
        sys.modules["torch"].set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """``heavy`` modules first (those with more tests earlier), the rest in collection order."""
    heavy = collections.Counter(item.nodeid.split("::")[0] for item in items if item.get_closest_marker("heavy"))
    items.sort(key=lambda item: -heavy[item.nodeid.split("::")[0]])  # stable: each file keeps its order
