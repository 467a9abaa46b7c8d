"""The status page says where the outputs were checked, from the repository's records only."""

import json
import shutil

import pytest
import torch

from tools import status


@pytest.fixture
def repo(tmp_path):
    """A copy of the records the page reads, without any GPU check."""
    shutil.copy(status.ROOT / "requirements.txt", tmp_path)
    (tmp_path / status.RESULTS).mkdir(parents=True)
    shutil.copy(status.ROOT / status.BENCHMARK, tmp_path / status.BENCHMARK)
    return tmp_path


def test_without_a_gpu_check_the_page_says_so(repo):
    page = status.render(repo)
    assert "No GPU check has been recorded yet" in page
    assert f"torch {status.pinned_torch(repo)}" in page
    for machine, device, version, date in status.benchmark_machines(repo):
        assert f"| {machine} | {device} | {version} | {date} |" in page


def test_the_pin_is_read_from_requirements(repo):
    (repo / "requirements.txt").write_text("numpy>=1\ntorch==9.9.9\n-e .\n", encoding="utf-8")
    assert status.pinned_torch(repo) == "9.9.9"
    assert "with torch 9.9.9 (the release" in status.render(repo)


def test_a_recorded_gpu_check_is_listed(repo):
    check = {"date": "2026-12-01", "machine": "NVIDIA H100 80GB HBM3", "torch": "2.13.0+cu128",
             "cuda": "12.8", "summary": "430 passed, 1 skipped in 95.00s", "outputs_unchanged": True}
    (repo / status.GPU_CHECKS).write_text(json.dumps([check]), encoding="utf-8")
    page = status.render(repo)
    assert "No GPU check" not in page
    row = "| 2026-12-01 | NVIDIA H100 80GB HBM3 | 2.13.0+cu128 | 12.8 | 430 passed, 1 skipped in 95.00s | yes |"
    assert row in page


def test_the_device_assert_capture_is_credited_to_its_machine(repo):
    record = {"machine": "NVIDIA H100 80GB HBM3", "torch": "2.11.0+cu128", "runs": []}
    (repo / status.DEVICE_ASSERT).write_text(json.dumps(record), encoding="utf-8")
    assert "captured on NVIDIA H100 80GB HBM3 with torch 2.11.0+cu128" in status.render(repo)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_a_gpu_check_is_recorded_only_on_a_gpu(repo):
    with pytest.raises(RuntimeError, match="no CUDA device"):
        status.record_gpu_check("1 passed", True, root=repo)
    assert not (repo / status.GPU_CHECKS).exists()


def test_the_build_writes_the_page(repo):
    path = status.write(repo)
    assert path.name == "status.md" and path.read_text(encoding="utf-8") == status.render(repo)
