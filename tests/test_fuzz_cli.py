"""Property-based tests of the command line: `poke2video.cli.main` run in-process on generated arguments.

For `poke`, `simulate`, `evaluate` and `correlate` with good and bad values (non-numbers, NaN, infinities,
negative and huge numbers, missing, empty or wrong files, unknown options, missing or repeated options; outputs
that cannot be written: a folder in the way, a path under a file, a name too long, /proc; a FIFO or an image
declaring 144 million pixels as the image; a weights file with a valid digest and an absurd config) the
command exits 0 having written its output, or exits 2 with one line on stderr (progress bars aside) and no
output or temporary file left behind; never an uncaught exception.
"""
import io
import itertools
import json
import os
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import event, example, given
from hypothesis import strategies as st
from PIL import Image

from app_support import TINY, hostile_checkpoint, tiny_checkpoint
from fuzz_support import fuzz
from test_fuzz_images import png_header
from poke2video.cli import main
from poke2video.gru_config import GRUModelConfig
from poke2video.model import PokeModel, save_model

PROGRESS = re.compile(r"\d+%\|")                                 # a tqdm progress line
NUMBERS = ["0", "1", "3", "-1", "2.5", "nan", "NaN", "inf", "-inf", "1e400", "x", "", "0x10", "1_0", " 4",
           "99999999999999999999", "-0", "1e-320"]
fresh_names = itertools.count()
LONG = "x" * 300                                                 # longer than a file name may be



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder with images, checkpoints, a PokeSim store and junk; commands run inside it."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (10, 20, 3), dtype=np.uint8)).save(root / "img.png")
    Image.new("RGB", (1, 1), 200).save(root / "dot.png")
    (root / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (root / "junk.safetensors").write_bytes(b"not a model")
    tiny_checkpoint(root / "tiny.safetensors")
    torch.manual_seed(0)
    save_model(root / "t32.safetensors", PokeModel(GRUModelConfig(
        resolution=32, stem_channels=4, channels=[4, 4], bottleneck_channels=4, levels=2, frames=10)), {"step": 1})
    (root / "folder").mkdir()
    (root / "folder.mp4").mkdir()                                 # outputs in the way of a file
    (root / "folder.png").mkdir()
    (root / "big.png").write_bytes(png_header(12000, 12000))      # declares 144 million pixels
    os.mkfifo(root / "pipe.png")                                  # opening it would wait for a writer
    hostile_checkpoint(root / "hostile.safetensors", json.dumps({**TINY.to_dict(), "frames": 10**9}))
    (root / "report").mkdir()
    (root / "report" / "keep.txt").write_text("not empty")
    assert run(["simulate", "--out", str(root / "store"), "--clips", "6", "--res", "32"], root)[0] == 0
    return root


def run(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `poke2video ARGV` run in this process with `cwd` as the folder."""
    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:                            # argparse: --help, bad arguments
                code = exc.code
    finally:
        os.chdir(before)
    return code, out.getvalue(), err.getvalue()


def values_of(values):
    return st.sampled_from(values) if isinstance(values, list) else values


@st.composite
def option(draw, flag: str, good, bad=None, arity: int = 1) -> list[str]:
    """[flag, value...]: mostly good values (so that some runs succeed), else bad ones, too few values, or
    the option left out."""
    good, bad = values_of(good), values_of(good if bad is None else bad)
    kind = draw(st.integers(0, 19))
    if kind == 19:
        return []
    if kind == 18:
        return [flag, *draw(st.lists(good | bad, max_size=arity - 1))]
    return [flag, *draw(st.lists(good if kind < 15 else good | bad, min_size=arity, max_size=arity))]


def flag(name: str):
    return st.sampled_from([[], [name]])


@st.composite
def command_line(draw, command: str, parts: list) -> list[str]:
    """The command and its options in any order, sometimes with an unknown option or a repeated one."""
    groups = [draw(part) for part in parts]
    if draw(st.integers(0, 5)) == 0:
        groups.append(draw(st.sampled_from([["--bogus"], ["-x", "1"], ["extra"], ["--seed"], ["--out", "a.mp4"]])))
    return [command, *itertools.chain.from_iterable(draw(st.permutations(groups)))]


bad_numbers = st.sampled_from(NUMBERS) | st.integers(-5, 40).map(str) | st.floats().map(repr)
pixels = st.integers(0, 9).map(str) | st.floats(0, 9).map(repr)         # inside img.png (20 x 10)
seeds = option("--seed", st.integers(0, 2**70).map(str), NUMBERS)
POKE = command_line("poke", [
    option("--checkpoint", ["tiny.safetensors"],
           ["missing.safetensors", "junk.safetensors", "folder", "", "hostile.safetensors"]),
    option("--image", ["img.png"], ["dot.png", "missing.png", "junk.png", "folder", "", "big.png", "pipe.png"]),
    option("--source", pixels, bad_numbers, 2), option("--target", pixels, bad_numbers, 2),
    option("--out", ["{fresh}.mp4", "{fresh}.gif"],
           ["{fresh}.txt", "nowhere/{fresh}.mp4", "", "img.png/x.gif", "folder.mp4", LONG + ".mp4", "/proc/x.gif"]),
    flag("--overlay")])
CORRELATE = command_line("correlate", [
    option("--checkpoint", ["tiny.safetensors"], ["missing.safetensors", "junk.safetensors", "hostile.safetensors"]),
    option("--image", ["img.png"], ["dot.png", "missing.png", "junk.png", "big.png", "pipe.png"]),
    option("--at", pixels, bad_numbers, 2),
    option("--out", ["{fresh}.png"], ["{fresh}.jpg", "nowhere/{fresh}.png", "", "folder.png", "img.png/x.png",
                                      LONG + ".png"]),
    option("--pokes", ["2", "3"], ["1", "0", "-2", "x", "nan"]), seeds])
SIMULATE = command_line("simulate", [
    option("--out", ["{fresh}"], ["store", "img.png", "nowhere/{fresh}", "", "img.png/sub", LONG, "/proc/sub"]),
    option("--clips", ["1", "2"], ["0", "-1", "x", "1.5", "nan", ""]),
    option("--res", ["32", "40"], ["16", "0", "600", "x", "-64"]), seeds,
    option("--kind", ["plants", "figures", "mixed"], ["trees", ""]), option("--workers", ["1", "2"], ["0", "x"]),
    option("--sway", ["0", "0.05", "0.1"], ["0.2", "-0.1", "nan", "inf", "x"]), flag("--overwrite")])
EVALUATE = command_line("evaluate", [
    option("--checkpoint", ["t32.safetensors"], ["tiny.safetensors", "missing.safetensors", "junk.safetensors"]),
    option("--data", ["store"], ["folder", "missing", "img.png", ""]),
    option("--split", ["test", "test_unseen"], ["train", "nope", ""]),
    option("--baselines", ["none", "static", "warp,static"], ["warp,static,warp", "bogus", "", ","]),
    option("--limit", ["1"], ["2", "0", "-1", "x"]),
    option("--out", ["{fresh}"], ["report", "img.png", "", "img.png/sub", LONG]),
    option("--structure-clips", ["0", "1"], ["-1", "x"]), option("--structure-pokes", ["2"], ["1", "0", "x"]),
    option("--examples", ["0", "1"], ["-1", "x"]), seeds, option("--lpips", ["off"], ["bogus"]),
    st.just(["--no-fvd"]), flag("--no-motion"), flag("--overwrite")])


def exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:                                              # a name too long to look up
        return False


def check_run(argv: list[str], root: Path, written: str) -> None:
    """Run `argv` in `root`: status 0 with `written` (relative to --out) present, or 2 with one error line."""
    argv = [a.replace("{fresh}", f"fresh{next(fresh_names)}") for a in argv]
    outs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--out"]
    before = {p: exists(root / p) for p in outs}
    listing = sorted(p.name for p in root.iterdir())
    code, _, err = run(argv, root)
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS.search(line)]
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    event(f"exit status {code}")
    if code == 0:
        assert lines == [], err
        assert outs and (root / outs[-1] / written).exists()
        return
    assert len(lines) == 1 and lines[0].startswith("poke2video") and ": error: " in lines[0], err
    if not any(before.values()):                                # nothing new, not even a temporary file
        assert sorted(p.name for p in root.iterdir()) == listing, err


@pytest.mark.slow
@fuzz(25)
@given(argv=POKE)
@example(argv=["poke", "--image", "img.png", "--source", "1", "1", "--target", "2", "2", "--out", ""])
def test_poke_arguments(files, argv):
    check_run(argv, files, "")


@pytest.mark.slow
@fuzz(15)
@given(argv=CORRELATE)
@example(argv=["correlate", "--checkpoint", "tiny.safetensors", "--image", "img.png", "--at", "3", "4", "--out",
               "{fresh}.png", "--seed", "-1"])                          # was: numpy's "expected non-negative"
def test_correlate_arguments(files, argv):
    check_run(argv, files, "")


@fuzz(30)
@given(argv=SIMULATE)
@example(argv=["simulate", "--out", "", "--clips", "1", "--res", "32"])  # was: ValueError ". has an empty name"
def test_simulate_arguments(files, argv):
    check_run(argv, files, "manifest.json")


@pytest.mark.slow
@fuzz(15)
@given(argv=EVALUATE)
@example(argv=["evaluate", "--checkpoint", "t32.safetensors", "--data", "store", "--out", "", "--lpips", "off",
               "--no-fvd"])                                              # was: ValueError ". has an empty name"
@example(argv=["evaluate", "--checkpoint", "t32.safetensors", "--data", "store", "--out", "{fresh}", "--lpips",
               "off", "--no-fvd", "--limit", "1", "--structure-clips", "0", "--examples", "0", "--no-motion"])
def test_evaluate_arguments(files, argv):
    check_run(argv, files, "report.md")


def test_argument_errors_are_one_line(files):
    code, _, err = run(["poke", "--image", "img.png", "--source", "x", "1"], files)
    assert code == 2 and err.splitlines() == [
        "poke2video poke: error: argument --source: not a number: 'x' (see poke2video poke --help)"]
    code, _, err = run([], files)
    assert code == 2 and len(err.splitlines()) == 1 and "COMMAND" in err


def seed_commands() -> list[str]:
    """Every command that takes --seed, read from the parser (a new one is covered without a change here)."""
    from poke2video.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.choices and "train" in a.choices).choices
    return sorted(name for name, parser in commands.items()
                  if any("--seed" in action.option_strings for action in parser._actions))


def test_every_command_with_a_seed_takes_what_the_generators_take_and_refuses_the_rest(files):
    commands = seed_commands()
    assert {"simulate", "prepare", "train", "evaluate", "correlate"} <= set(commands)
    for command in commands:
        for seed in ("-1", "-0x1", str(-2**70), str(2**64), "1.5", "x"):
            code, _, err = run([command, "--seed", seed], files)
            assert code == 2 and len(err.splitlines()) == 1, (command, seed, err)
            assert f"poke2video {command}: error: argument --seed: " in err, err
        code, _, err = run([command, "--seed", str(2**64 - 1), "--no-such-option"], files)
        assert "argument --seed" not in err, err           # the largest seed torch.manual_seed takes passes


def test_train_refuses_a_negative_seed_before_any_work(files, tmp_path):
    code, _, err = run(["train", "--data", str(files / "store"), "--out", str(tmp_path / "run"), "--steps", "1",
                        "--seed", "-1"], files)               # was: a numpy traceback after the run folder appeared
    assert code == 2 and "a seed is an integer from 0 to 2^64 - 1, got -1" in err
    assert not (tmp_path / "run").exists()
