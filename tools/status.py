"""The status page: which machines checked the book's outputs, with which versions.

``status.md`` is generated when the book is built (see :mod:`tools.sphinx_book`) from what the
repository records: the torch release ``requirements.txt`` pins, the GPU checks that
``.ci/gpu`` ran (``benchmarks/results/gpu_check.json``), the machines in the benchmark results
and the CUDA capture of the GPU chapter. Nothing on it is edited by hand, so it cannot claim a
check that was not run.

    python -m tools.status record-gpu --summary "424 passed, 1 skipped" --outputs-unchanged yes

appends the GPU check just run (machine, torch, CUDA, date) to ``gpu_check.json``; ``.ci/gpu``
calls it.
"""

import argparse
import csv
import datetime
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = "status.md"
RESULTS = Path("benchmarks") / "results"
GPU_CHECKS = RESULTS / "gpu_check.json"
BENCHMARK = RESULTS / "cross_entropy.csv"
DEVICE_ASSERT = RESULTS / "device_assert.json"

HEADER = """\
(status)=
# Status: where the outputs were checked

Every number in this book is printed by a code cell, and its stored output is the contract:
the test suite executes every chapter again and compares (nbval). This page says on which
machines that comparison has been made. It is generated when the book is built, from the
records in the repository; it is not edited by hand.
"""


def pinned_torch(root=ROOT):
    """The torch release that ``requirements.txt`` pins (``torch==X``), or None."""
    text = (Path(root) / "requirements.txt").read_text(encoding="utf-8")
    match = re.search(r"^torch==(\S+)", text, flags=re.MULTILINE)
    return match.group(1) if match else None


def gpu_checks(root=ROOT):
    """The GPU checks recorded by ``.ci/gpu``, oldest first."""
    path = Path(root) / GPU_CHECKS
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def benchmark_machines(root=ROOT):
    """(machine, device, torch, date) of each set of benchmark rows, in file order."""
    path = Path(root) / BENCHMARK
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        seen = {}
        for row in csv.DictReader(handle):
            seen.setdefault((row["machine"], row["device"], row["torch"], row["date"]), None)
    return list(seen)


def render(root=ROOT):
    """Return the Markdown of the status page."""
    lines = [HEADER, "## On the CPU, at every change\n",
             f"CI runs `.ci/run` on a clean clone: a fresh virtual environment with torch "
             f"{pinned_torch(root)} (the release `requirements.txt` pins), the whole test suite "
             "with nbval over every chapter, and this site built with warnings as errors. The "
             "outputs were recorded on a CPU by the re-execute tool (README).\n",
             "## On GPUs\n"]
    checks = gpu_checks(root)
    if checks:
        lines += ["`.ci/gpu` ran the test suite with the chapters on CUDA:\n",
                  "| date | GPU | torch | CUDA | test suite | stored outputs unchanged |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {c['date']} | {c['machine']} | {c['torch']} | {c['cuda']} | {c['summary']} | "
                  f"{'yes' if c['outputs_unchanged'] else 'no'} |" for c in checks]
        lines.append("")
    else:
        lines.append("No GPU check has been recorded yet. The chapters are written to print the same "
                     "text on a GPU (values drawn on the CPU from a seed, devices left out of printed "
                     "tensors, every printed value far from a rounding boundary or exact by construction: "
                     "`tools.rounding_audit`), but no run on a GPU has confirmed it. `.ci/gpu` runs "
                     "that check and records it here.\n")
    capture = Path(root) / DEVICE_ASSERT
    if capture.exists():
        record = json.loads(capture.read_text(encoding="utf-8"))
        lines.append(f"The device-side assert shown in {{ref}}`ch-gpu` was captured on {record['machine']} "
                     f"with torch {record['torch']}.\n")
    lines += ["## Benchmark results\n",
              "The timings and memory in {ref}`ch-gpu` come from `benchmarks/results/cross_entropy.csv`, "
              "measured on:\n",
              "| machine | device | torch | date |", "| --- | --- | --- | --- |"]
    lines += [f"| {m} | {d} | {t} | {day} |" for m, d, t, day in benchmark_machines(root)]
    return "\n".join(lines) + "\n"


def write(root=ROOT):
    """Write the status page into ``root`` and return its path."""
    path = Path(root) / PAGE
    path.write_text(render(root), encoding="utf-8")
    return path


def record_gpu_check(summary, outputs_unchanged, root=ROOT):
    """Append the GPU check just run on this machine to ``gpu_check.json``; return the record."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device: a GPU check is recorded on the GPU that ran it")
    record = {"date": datetime.date.today().isoformat(), "machine": torch.cuda.get_device_name(0),
              "torch": torch.__version__, "cuda": torch.version.cuda, "summary": summary.strip(" ="),
              "outputs_unchanged": outputs_unchanged}
    path = Path(root) / GPU_CHECKS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gpu_checks(root) + [record], indent=2) + "\n", encoding="utf-8")
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record-gpu", help="append this machine's GPU check")
    record.add_argument("--summary", required=True, help="pytest's last line")
    record.add_argument("--outputs-unchanged", required=True, choices=["yes", "no"])
    commands.add_parser("show", help="print the page")
    args = parser.parse_args(argv)
    if args.command == "show":
        print(render())
    else:
        print(json.dumps(record_gpu_check(args.summary, args.outputs_unchanged == "yes"), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
