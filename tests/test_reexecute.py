"""The re-execute tool, the rounding audit and nbval run the chapters in this interpreter.

A ``python3`` kernelspec elsewhere (a user's ``~/.local/share/jupyter/kernels/python3``, a
conda environment's) would otherwise decide which Python, and which torch, records the outputs.
"""

import json
import sys
from pathlib import Path

from tools import reexecute

ROOT = Path(__file__).resolve().parent.parent


def test_a_python3_kernelspec_elsewhere_changes_nothing(tmp_path, monkeypatch):
    spec = tmp_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": ["/elsewhere/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "someone's Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == "/elsewhere/bin/python"  # the trap is set
    client = reexecute.client(reexecute.nbformat.v4.new_notebook(), ROOT / "chapters" / "x.ipynb")
    manager = client.kernel_manager_class(kernel_name=client.kernel_name)
    assert manager.kernel_spec.argv[0] == sys.executable


def test_nbval_runs_this_interpreter_too(pytestconfig):
    assert "--nbval-current-env" in pytestconfig.getini("addopts")


def test_streams_are_merged_as_nbval_merges_them(tmp_path):
    """nbclient's coalesce_streams: a cell's stdout, split by the kernel's flushes, is one output."""
    source = "import sys, time\nprint('a')\nsys.stdout.flush()\ntime.sleep(0.3)\nprint('b')"
    path = tmp_path / "streams.ipynb"
    reexecute.nbformat.write(reexecute.nbformat.v4.new_notebook(cells=[reexecute.nbformat.v4.new_code_cell(source)]),
                             path)
    notebook = reexecute.execute(path)
    assert [(o.output_type, o.name, o.text) for o in notebook.cells[0].outputs] == [("stream", "stdout", "a\nb\n")]
