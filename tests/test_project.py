"""The project's promises to a newcomer: README set-up lines, CI wiring, CLI basics."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README must start with a bash block of set-up commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_two_setup_commands():
    commands = readme_setup_commands()
    assert len(commands) == 2
    assert commands[0].endswith("poke2video demo")
    assert "pytest" in commands[1]
    assert all("constraints.txt" in c for c in commands)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_setup_commands()[1] in ci


def test_ci_installs_chromium_before_the_tests():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    install = next(i for i, line in enumerate(ci) if "apt-get install" in line and "chromium" in line)
    assert install < ci.index(readme_setup_commands()[1])


def test_constraints_pin_torch_exactly():
    pins = (ROOT / "constraints.txt").read_text().splitlines()
    assert "torch==2.13.0" in pins


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "poke2video", *args], capture_output=True, text=True)


@pytest.mark.slow
def test_every_command_has_help():
    top = run_cli("--help")
    assert top.returncode == 0
    commands = re.findall(r"^    ([a-z]+)(?:  |$)", top.stdout, re.M)
    assert {"demo", "prepare", "merge", "verify", "simulate", "train", "poke", "evaluate", "correlate", "app"} <= set(commands)
    for command in commands:
        result = run_cli(command, "--help")
        assert result.returncode == 0, command
        assert "usage: poke2video " + command in result.stdout


def test_bad_arguments_exit_nonzero_with_one_line():
    result = run_cli("poke", "--image", "x.png", "--source", "nan", "1", "--target", "1", "1", "--out", "o.mp4")
    assert result.returncode != 0
    assert "finite" in result.stderr
