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


def test_a_measurement_runs_in_a_fresh_process(tmp_path):
    """The driver's worker (``--worker``, a new interpreter): the baseline writes the reference and
    agrees with it exactly."""
    reference = tmp_path / "reference.pt"
    row = bench.in_fresh_process("baseline", (24, 4, 10), reference)
    assert reference.exists() and set(row) == set(bench.FIELDS) and row["implementation"] == "baseline"
    assert float(row["grad_weight_max_abs_diff"]) == 0 and float(row["forward_backward_ms"]) > 0


def test_the_driver_interleaves_the_processes_and_writes_the_csv(tmp_path, monkeypatch):
    """The baseline first (it writes the reference), then each repeat in a rotated order; one
    row per implementation: the median time and memory, the largest difference."""
    calls = []

    def measured(name, size, reference, malloc="default"):  # stands in for a fresh process
        calls.append(name)
        k = len(calls)
        return {"implementation": name, "V": size[2], "chunk_size": "", "repeats": 1, "malloc": malloc,
                "forward_backward_ms": f"{k}.0", "peak_memory_mib": f"{10 * k}.0",
                "loss_max_abs_diff": f"{k}e-09", "grad_input_max_abs_diff": "", "grad_weight_max_abs_diff": "0.00e+00"}

    monkeypatch.setattr(bench, "in_fresh_process", measured)
    rows = bench.run([(24, 4, 10)], ["lib", "baseline", "torch_chunked"], repeats=3)
    assert calls == ["baseline", "lib", "torch_chunked", "lib", "torch_chunked", "baseline",
                     "torch_chunked", "baseline", "lib"]
    by_name = {r["implementation"]: r for r in rows}
    assert [r["implementation"] for r in rows] == ["baseline", "lib", "torch_chunked"]
    assert all(r["repeats"] == 3 for r in rows)
    assert by_name["baseline"]["forward_backward_ms"] == "6.0"  # median of calls 1, 6, 8
    assert by_name["lib"]["peak_memory_mib"] == "40.0"  # median of 20, 40, 90
    assert by_name["torch_chunked"]["loss_max_abs_diff"] == "7.00e-09"  # largest of 3, 5, 7 (e-9)
    assert by_name["lib"]["grad_input_max_abs_diff"] == ""  # nothing measured, nothing made up
    path = tmp_path / "out.csv"
    bench.append([dict(dict.fromkeys(bench.FIELDS, ""), **r) for r in rows], path)
    with path.open() as handle:
        assert [r["implementation"] for r in csv.DictReader(handle)] == ["baseline", "lib", "torch_chunked"]


def test_committed_results_have_every_field_and_both_vocabularies():
    rows = results.read_linear_cross_entropy()
    assert rows and all(set(row) == set(bench.FIELDS) for row in rows)
    assert {row["implementation"] for row in rows} == set(bench.IMPLEMENTATIONS)
    assert {int(row["V"]) for row in rows} == {32000, 128256}
    table = results.linear_cross_entropy_table(rows)
    assert set(table) == {32000, 128256} and set(table[128256]) == set(bench.IMPLEMENTATIONS)
