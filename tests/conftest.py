"""Fixtures shared by the test modules."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Thousands of tiny calls: one intra-op thread. With torch's default pool, every small kernel
    wakes the other threads, which costs milliseconds per call on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
