"""Benchmark the test suite against its floor: README's test command beside nbval over the chapters.

    python -m benchmarks.suite                      # 3 repeats, appended to benchmarks/results/suite.csv
    python -m benchmarks.suite --repeats 1 --no-save

The floor of the suite is executing every chapter once, which nbval must do. Each repeat runs,
one after another, in an order that rotates from repeat to repeat (so that a change in a shared
machine's load touches each command alike):

* ``nbval, one process``: ``python -m pytest chapters -n 0``, every chapter in order, in one
  process: the floor the goal is measured against;
* ``nbval, parallel``: ``python -m pytest chapters``, the same with the configuration's workers;
* ``README test command``: README's command 2 (``.venv/bin/python -m pytest``), read from
  README.md, with this interpreter: the unit tests, nbval over every chapter, the book's build
  and the site in a browser.

Each runs in a fresh process from the repository root, with ``PYTHONDONTWRITEBYTECODE`` and the
thread variables as this process has them. Every row keeps the date, the machine, the torch
version, the commit, the seconds, the exit status and pytest's last line, and is appended to the
results as soon as it is measured (so README's command, whose tests read the results, finds the
file there even on the first run). The run prints, for each repeat, README's command divided by
nbval in one process, both from that repeat, and their median. No test asserts a time: the goal
(at most 1.5) is checked by reading these results.
"""

import argparse
import datetime
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.cross_entropy import append_rows, machine_name

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "suite.csv"
FIELDS = ["date", "machine", "cores", "torch", "commit", "repeat", "command", "seconds", "returncode", "summary"]
FLOOR, PARALLEL, README = "nbval, one process", "nbval, parallel", "README test command"


def readme_test_command(readme=ROOT / "README.md"):
    """README's command 2, as words, with this interpreter in place of ``.venv/bin/python``."""
    text = readme.read_text(encoding="utf-8")
    block = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", text, re.S).group(1)
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    words = shlex.split(commands[1])
    assert words[:3] == [".venv/bin/python", "-m", "pytest"], words
    return [sys.executable, *words[1:]]


def commands():
    """``{name: words}`` of the three commands, in the order of the first repeat."""
    return {FLOOR: [sys.executable, "-m", "pytest", "chapters", "-n", "0", "-q"],
            PARALLEL: [sys.executable, "-m", "pytest", "chapters", "-q"],
            README: readme_test_command()}


def order(names, repeat):
    """``names`` rotated by ``repeat``: each command goes first in turn."""
    shift = repeat % len(names)
    return names[shift:] + names[:shift]


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def commit():
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return (done.stdout.strip() or "unknown") + ("+changes" if dirty else "")


def time_command(words, log):
    """Run ``words`` from the repository root; return (seconds, exit status, pytest's last line)."""
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        done = subprocess.run(words, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    lines = [line.strip("= ") for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    return seconds, done.returncode, lines[-1] if lines else ""


def run(repeats=3, chosen=None, logs=ROOT / "_build" / "suite-logs", save=None):
    """Time every command of ``chosen`` (default ``commands()``) once per repeat; return the rows,
    each appended to ``save`` (a CSV path) as soon as it is measured, when given."""
    chosen = chosen or commands()
    logs.mkdir(parents=True, exist_ok=True)
    base = {"date": datetime.date.today().isoformat(), "machine": machine_name(torch.device("cpu")),
            "cores": cores(), "torch": torch.__version__, "commit": commit()}
    rows = []
    for repeat in range(repeats):
        for name in order(list(chosen), repeat):
            log = logs / f"{repeat}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.log"
            seconds, returncode, summary = time_command(chosen[name], log)
            rows.append({**base, "repeat": repeat, "command": name, "seconds": f"{seconds:.1f}",
                         "returncode": returncode, "summary": summary})
            if save:
                append(rows[-1:], save)
            print(f"repeat {repeat}: {name}: {seconds:.1f} s, exit {returncode}, {summary}", flush=True)
    return rows


def ratios(rows, numerator=README, denominator=FLOOR):
    """Per repeat (of one run: the same date and commit), ``numerator``'s seconds over ``denominator``'s."""
    by_run = {}
    for row in rows:
        by_run.setdefault((row["date"], row["commit"], str(row["repeat"])), {})[row["command"]] = float(row["seconds"])
    return [times[numerator] / times[denominator] for times in by_run.values()
            if numerator in times and denominator in times]


def append(rows, path=RESULTS):
    append_rows(rows, path, FIELDS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)
    rows = run(args.repeats, save=None if args.no_save else RESULTS)
    found = ratios(rows)
    print(f"README test command / nbval in one process: {', '.join(f'{r:.2f}' for r in found)}; "
          f"median {statistics.median(found):.2f}")


if __name__ == "__main__":
    main()
