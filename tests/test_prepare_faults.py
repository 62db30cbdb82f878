"""SIGKILL `prepare` and `simulate` at seeded random moments, resume, and get the uninterrupted run's bytes.

The long form with many kills: `python tests/prepare_fault_support.py` (same code).
"""
import pytest

import prepare_fault_support as faults

pytestmark = pytest.mark.slow


def check(report, kills: int) -> None:
    assert report.differing == [], f"resumed store differs from the uninterrupted one: {report.differing}"
    assert report.kills + report.finished_first >= 1 and report.kills <= kills
    # where the kills land depends on the machine's speed; at least one early and one mid-way is certain
    assert report.early >= 1, "the first kill comes before any video is finished"
    assert report.midway >= 1, "kills landed mid-way (some videos finished, no output yet)"


def test_prepare_killed_at_random_moments_resumes_to_identical_bytes(tmp_path):
    faults.make_videos(tmp_path / "in", count=6, frames=90, size=32)
    report = faults.fault_test("d", ["prepare", "in", "--res", "32", "--clip-length", "4"], tmp_path, kills=5, seed=0)
    check(report, 5)


def test_simulate_killed_at_random_moments_resumes_to_identical_bytes(tmp_path):
    command = ["simulate", "--clips", "80", "--chunk-clips", "10", "--seed", "1"]
    report = faults.fault_test("d", command, tmp_path, kills=5, seed=1)
    check(report, 5)
