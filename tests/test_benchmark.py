"""The benchmark harness runs, checks each implementation against torch, and writes its CSV."""

import csv
import json
import subprocess

import pytest
import torch

from benchmarks import cross_entropy as bench


def test_benchmark_runs_and_records(tmp_path):
    rows = bench.run(torch.device("cpu"), [(64, 10)], min_run_time=0.01)
    assert [r["implementation"] for r in rows] == list(bench.IMPLEMENTATIONS)
    for row in rows:
        assert float(row["max_abs_diff_vs_torch"]) < 1e-5
        assert float(row["forward_ms"]) > 0 and float(row["forward_backward_ms"]) > 0
        assert row["torch"] == torch.__version__
    path = tmp_path / "results.csv"
    bench.append(rows, path)
    bench.append(rows, path)
    with path.open() as handle:
        assert len(list(csv.DictReader(handle))) == 2 * len(rows)


def test_committed_results_have_every_field():
    with bench.RESULTS.open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(set(row) == set(bench.FIELDS) for row in rows)
    assert {row["implementation"] for row in rows} == set(bench.IMPLEMENTATIONS)


def test_fresh_process_measurement():
    (row,) = bench.in_fresh_processes(torch.device("cpu"), [(32, 5)], 0.01, ["lib"], processes=1, malloc="keep")
    assert row["processes"] == 1 and row["implementation"] == "lib" and row["malloc"] == "keep"
    assert float(row["forward_backward_ms"]) > 0 and set(row) == set(bench.FIELDS)


def test_fresh_processes_give_one_row_of_medians(monkeypatch):
    """Three processes (stand-ins here, which print what a worker prints): one row, the medians."""
    printed = iter([(1.0, 9.0, ""), (2.0, 5.0, ""), (3.0, 2.0, "")])

    def worker(command, **kwargs):
        forward, both, peak = next(printed)
        row = dict(dict.fromkeys(bench.FIELDS, ""), implementation="lib", processes=1,
                   forward_ms=forward, forward_backward_ms=both, peak_memory_mib=peak)
        return subprocess.CompletedProcess(command, 0, stdout="noise\nROW " + json.dumps(row) + "\n", stderr="")

    monkeypatch.setattr(bench.subprocess, "run", worker)
    (row,) = bench.in_fresh_processes(torch.device("cpu"), [(32, 5)], 0.01, ["lib"], processes=3)
    assert row["processes"] == 3 and row["malloc"] == "default"
    assert (row["forward_ms"], row["forward_backward_ms"], row["peak_memory_mib"]) == ("2.000", "5.000", "")


def test_timings_use_the_threads_the_machine_label_names(monkeypatch):
    # torch.utils.benchmark.Timer defaults to one thread; the CSV's machine says how many torch uses
    seen = []

    class Recording(bench.benchmark.Timer):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs.get("num_threads", 1))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(bench.benchmark, "Timer", Recording)
    bench.run(torch.device("cpu"), [(16, 4)], min_run_time=0.01, implementations=("lib",))
    assert seen == [torch.get_num_threads()] * 2
    assert bench.machine_name(torch.device("cpu")).endswith(f"{torch.get_num_threads()} threads")


def test_device_assert_capture_reads_the_report_and_drops_machine_paths():
    from benchmarks import capture_device_assert as capture

    # the shape of what the scenario prints; the real text comes from a GPU run
    stdout = "RAISED-AT print(scaled.item())\nERROR RuntimeError CUDA error: device-side assert triggered\n"
    stderr = ("/some/build/dir/aten/src/ATen/native/cuda/Loss.cu:250: kernel_2d: block: [0,0,0], "
              "thread: [0,0,0] Assertion `t >= 0 && t < n_classes` failed.\nmore\n")
    assert capture.parse(stdout, stderr) == {
        "raised_at": "print(scaled.item())", "exception": "RuntimeError",
        "message": "CUDA error: device-side assert triggered",
        "kernel_assertion": "Loss.cu:250: kernel_2d: block: [0,0,0], thread: [0,0,0] "
                            "Assertion `t >= 0 && t < n_classes` failed."}
    assert capture.parse("", "")["raised_at"] is None


def test_cpu_peak_memory_is_the_peak_of_what_fn_holds(monkeypatch):
    # two 4 MiB tensors alive together, then a third after they are freed: the peak is 8 MiB
    n = 2**20  # float32: 4 MiB

    def fn():
        a, b = torch.ones(n), torch.ones(n)
        del a, b
        torch.ones(n)

    peak = bench.cpu_peak_mib(fn)
    if peak is None:
        pytest.skip("no glibc mallinfo2 on this machine: cpu_peak_mib returns None (checked below)")
    assert 8 <= peak < 8.5
    monkeypatch.setattr(bench, "_glibc_in_use", lambda: None)
    assert bench.cpu_peak_mib(fn) is None


def test_results_are_read_into_plain_values():
    from benchmarks import results

    rows = results.read()
    series = results.bar_values(rows, "forward_backward_ms")
    assert list(series) == sorted({results.setup(r) for r in rows})
    for r in rows:
        position = list(bench.IMPLEMENTATIONS).index(r["implementation"])
        assert len(rows) == len({(results.setup(x), x["N"], x["C"], x["implementation"]) for x in rows})
        if r["peak_memory_mib"]:
            tensors = results.value(r, "peak_tensors")
            assert tensors * int(r["N"]) * int(r["C"]) * 4 / 2**20 == pytest.approx(float(r["peak_memory_mib"]))
        one_shape = results.bar_values([x for x in rows if (x["N"], x["C"]) == (r["N"], r["C"])], "forward_backward_ms")
        assert one_shape[results.setup(r)][position] == float(r["forward_backward_ms"])
