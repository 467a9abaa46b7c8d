"""Capture, on a CUDA machine, how an out-of-range target fails, for the GPU chapter.

    python -m benchmarks.capture_device_assert      # needs a GPU; writes results/device_assert.json

A class index outside [0, C) is checked on the GPU inside the kernel, which runs
asynchronously: the Python line that launched it returns, and the error surfaces at a later
line that waits for the GPU. This script runs that scenario in fresh processes, once as is and
once with ``CUDA_LAUNCH_BLOCKING=1`` (which makes every launch wait), and records which line
raised, the exception and its message, and the assertion the kernel printed to stderr (its
source path reduced to the file name), with the machine and torch version, so that the
chapter can show real GPU output on every machine.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

RESULT = Path(__file__).resolve().parent / "results" / "device_assert.json"

SCENARIO = r'''
import torch, torch.nn.functional as F
logits = torch.randn(4, 3, device="cuda")
target = torch.tensor([0, 2, 3, 1], device="cuda")  # 3 is out of range for 3 classes
line = "loss = F.cross_entropy(logits, target)"
try:
    loss = F.cross_entropy(logits, target)
    line = "scaled = loss * 2"
    scaled = loss * 2
    line = "print(scaled.item())"
    print(scaled.item())
except Exception as error:
    print("RAISED-AT", line)
    print("ERROR", type(error).__name__, str(error).strip().splitlines()[0])
'''


def run(blocking):
    """Run the scenario in a fresh process; return where it raised, what, and the kernel's assertion."""
    env = dict(os.environ)
    if blocking:
        env["CUDA_LAUNCH_BLOCKING"] = "1"
    done = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, env=env, timeout=120)
    return dict({"CUDA_LAUNCH_BLOCKING": "1" if blocking else "unset"}, **parse(done.stdout, done.stderr))


def parse(stdout, stderr):
    """Read the scenario's report (stdout) and the first kernel assertion CUDA printed (stderr)."""
    lines = stdout.splitlines()
    raised = next((line.split(" ", 1)[1] for line in lines if line.startswith("RAISED-AT")), None)
    error = next((line.split(" ", 2)[1:] for line in lines if line.startswith("ERROR")), None)
    assertion = next((line for line in stderr.splitlines() if "Assertion" in line), None)
    return {"raised_at": raised, "exception": error[0] if error else None,
            "message": error[1] if error else None,
            "kernel_assertion": _without_folders(assertion) if assertion else None}


def _without_folders(line):
    """``/build/aten/.../Loss.cu:250: kernel: ...`` -> ``Loss.cu:250: kernel: ...`` (no machine paths)."""
    where, sep, rest = line.partition(": ")
    return where.rsplit("/", 1)[-1] + sep + rest


def main():
    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: run this on a GPU machine")
    record = {"machine": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "runs": [run(blocking=False), run(blocking=True)]}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
