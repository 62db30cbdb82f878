"""One error is one line whatever the names in it hold: every line the command line prints on stderr goes
through errors.print_line, which writes line breaks, escapes and other control characters as a repr does."""
import os

import pytest
from hypothesis import given, strategies as st

from conftest import moving_square_frames, write_video
from poke2video.data.layouts import find_videos
from poke2video.errors import printable
from test_fuzz_cli import PROGRESS, run

UNDECODABLE = os.fsdecode(b"bad\xff.png")       # a byte that is not UTF-8, as Python hands it over: '\udcff'
NAMES = {                                        # a name -> how its line shows it
    "a line break": ("no\nsuch", r"no\nsuch"),
    "a carriage return": ("no\rsuch", r"no\rsuch"),
    "a terminal escape": ("\x1b[31mred", r"\x1b[31mred"),
    "a tab": ("tab\tbed", r"tab\tbed"),
    "a line separator": ("para\u2028graph", r"para\u2028graph"),
    "an undecodable byte": (UNDECODABLE, r"bad\udcff.png"),
}


def stderr_lines(err: str) -> list[str]:
    return [line for line in err.split("\n") if line and not PROGRESS.search(line)]


@pytest.mark.parametrize("case", list(NAMES))
@pytest.mark.parametrize("command", ["poke --out", "poke --image", "correlate --image", "train --data"])
def test_a_name_with_control_characters_is_one_escaped_line(tmp_path, command, case):
    name, shown = NAMES[case]
    argv = {"poke --out": ["poke", "--image", "img.png", "--source", "1", "1", "--target", "2", "2",
                           "--out", f"{name}/x.mp4"],
            "poke --image": ["poke", "--image", name, "--source", "1", "1", "--target", "2", "2", "--out", "x.mp4"],
            "correlate --image": ["correlate", "--image", name, "--at", "1", "1", "--out", "x.png"],
            "train --data": ["train", "--data", name, "--out", "run", "--steps", "1"]}[command]
    code, _, err = run(argv, tmp_path)
    lines = stderr_lines(err)
    assert code == 2 and len(lines) == 1 and len(err.splitlines()) == 1, repr(err)   # was: three lines for \n
    assert shown in lines[0] and lines[0].startswith(f"poke2video {argv[0]}: error: "), lines[0]
    assert lines[0].isprintable()


def test_an_argument_error_is_escaped_too(tmp_path):
    code, _, err = run(["simulate", "--out", "x", "--clips", "1", "--kind", "a\x1b[2Jb"], tmp_path)
    assert code == 2 and len(err.splitlines()) == 1 and err.rstrip("\n").isprintable(), repr(err)


def test_a_note_of_prepare_names_a_link_with_a_line_break_in_one_line(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write_video(folder / "a.mp4", moving_square_frames(count=8, size=32))
    os.symlink("a.mp4", folder / "again\nand again.mp4")
    assert find_videos(folder) == [folder / "a.mp4"]
    notes = capsys.readouterr().err.splitlines()
    assert len(notes) == 1 and r"again\nand again.mp4: skipped: the same file as" in notes[0], notes


def test_printable_text_is_left_as_it_is():
    text = "poke2video poke: error: ünïcödé 名前.png (x from 0 to 63) 'quoted' back\\slash"
    assert printable(text) == text


@given(st.text())
def test_whatever_a_name_holds_its_line_is_one_line(name):
    line = printable(f"poke2video poke: error: cannot read image {name}: no such file")
    assert line.isprintable() and len(line.splitlines()) == 1
