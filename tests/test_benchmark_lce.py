"""The linear + cross-entropy benchmark runs at a tiny size, checks itself against the baseline
and writes its CSV; the committed results have every field. No timing is asserted."""

import csv

import pytest
import torch

from benchmarks import linear_cross_entropy as bench
from benchmarks import results

pytestmark = pytest.mark.heavy  # see conftest.py


def test_one_measurement_agrees_with_the_baseline(tmp_path):
    reference = tmp_path / "reference.pt"
    base = bench.measure("baseline", 40, 6, 30, reference=reference)
    assert reference.exists() and base["chunk_size"] == "" and float(base["loss_max_abs_diff"]) == 0
    for name in ["torch_chunked_auto", "torch_chunked", "lib"]:
        row = bench.measure(name, 40, 6, 30, reference=reference)
        assert set(row) == set(bench.FIELDS) and row["implementation"] == name
        assert int(row["chunk_size"]) == bench.chunk_size(name, 40, 6, 30)
        for key in ["loss_max_abs_diff", "grad_input_max_abs_diff", "grad_weight_max_abs_diff"]:
            assert float(row[key]) < 1e-5, (name, key, row[key])
        assert float(row["forward_backward_ms"]) > 0 and row["torch"] == torch.__version__


def test_chunk_sizes_are_torchs_automatic_choice_and_libs_default():
    # torch's "aspect_ratio:2" for float32 on a CPU: next_pow2(ceil(N / ceil(V / H))) // 2
    assert bench.chunk_size("torch_chunked_auto", 4096, 1024, 128256) == 32
    assert bench.chunk_size("torch_chunked_auto", 4096, 1024, 32000) == 64
    assert bench.chunk_size("lib", 4096, 1024, 128256) == bench.chunk_size("torch_chunked", 4096, 1024, 128256) == 512
    assert bench.chunk_size("baseline", 4096, 1024, 128256) is None


def test_the_driver_interleaves_fresh_processes_and_writes_the_csv(tmp_path):
    rows = bench.run([(24, 4, 10)], ["baseline", "lib"], repeats=2)
    assert [r["implementation"] for r in rows] == ["baseline", "lib"]
    assert all(r["repeats"] == 2 and float(r["grad_weight_max_abs_diff"]) < 1e-5 for r in rows)
    path = tmp_path / "out.csv"
    bench.append(rows, path)
    with path.open() as handle:
        assert [r["implementation"] for r in csv.DictReader(handle)] == ["baseline", "lib"]


def test_committed_results_have_every_field_and_both_vocabularies():
    rows = results.read_linear_cross_entropy()
    assert rows and all(set(row) == set(bench.FIELDS) for row in rows)
    assert {row["implementation"] for row in rows} == set(bench.IMPLEMENTATIONS)
    assert {int(row["V"]) for row in rows} == {32000, 128256}
    table = results.linear_cross_entropy_table(rows)
    assert set(table) == {32000, 128256} and set(table[128256]) == set(bench.IMPLEMENTATIONS)
