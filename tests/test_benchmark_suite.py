"""The suite benchmark times README's own test command beside nbval, side by side, and its committed
results say where and when they were measured. No time is asserted."""

import csv
import sys

from benchmarks import suite


def test_it_times_the_readme_test_command():
    assert suite.readme_test_command() == [sys.executable, "-m", "pytest"]
    commands = suite.commands()
    assert commands[suite.README] == suite.readme_test_command()
    assert commands[suite.FLOOR][1:] == ["-m", "pytest", "chapters", "-n", "0", "-q"]


def test_every_command_goes_first_in_turn():
    names = list(suite.commands())
    firsts = [suite.order(names, repeat)[0] for repeat in range(len(names))]
    assert sorted(firsts) == sorted(names)
    assert all(sorted(suite.order(names, repeat)) == sorted(names) for repeat in range(5))


def test_run_writes_one_row_per_command_and_repeat(tmp_path):
    fake = {name: [sys.executable, "-c", f"import time; time.sleep(0.1); print('{i} passed in 0.01s')"]
            for i, name in enumerate([suite.FLOOR, suite.README])}
    path = tmp_path / "out.csv"
    rows = suite.run(repeats=2, chosen=fake, logs=tmp_path / "logs", save=path)
    assert [row["command"] for row in rows] == [suite.FLOOR, suite.README, suite.README, suite.FLOOR]
    assert all(set(row) == set(suite.FIELDS) and row["returncode"] == 0 for row in rows)
    assert {row["summary"] for row in rows if row["command"] == suite.README} == {"1 passed in 0.01s"}
    assert len(suite.ratios(rows)) == 2 and all(r > 0 for r in suite.ratios(rows))
    with path.open() as handle:
        assert list(csv.DictReader(handle)) == [{key: str(value) for key, value in row.items()} for row in rows]


def test_ratios_pair_commands_of_the_same_repeat():
    rows = [{"date": "d", "commit": "c", "repeat": r, "command": name, "seconds": seconds}
            for r, name, seconds in [(0, suite.FLOOR, "100"), (0, suite.README, "150"),
                                     (1, suite.README, "300"), (1, suite.FLOOR, "200"), (2, suite.FLOOR, "1")]]
    assert suite.ratios(rows) == [1.5, 1.5]


def test_committed_results_name_the_machine_and_pass():
    """Every row says where, when and on what it was measured, and every measured run passed. (The
    benchmark appends each row as it goes, and this test runs inside README's command: it cannot
    ask for the rows of commands still to come.)"""
    with suite.RESULTS.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(set(row) == set(suite.FIELDS) and all(row.values()) for row in rows)
    assert {row["command"] for row in rows} <= {suite.FLOOR, suite.PARALLEL, suite.README}
    assert all(row["returncode"] == "0" and " passed" in row["summary"] for row in rows)
