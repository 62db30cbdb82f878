"""Errors a user can act on.

`UserError` carries one line that the CLI prints on stderr before exiting non-zero. Raise it for bad
input (missing or corrupt files, wrong sizes, pokes outside the image, a full disk); let real bugs
raise anything else so they keep their traceback. Every line the command line prints on stderr goes
through `print_line`, which escapes what a terminal would not show as itself, so one message is one line
whatever the file names in it hold.
"""
import sys


class UserError(Exception):
    """Bad input or environment: the message is one clear line naming the file or option at fault."""


class WeightsUnavailable(UserError):
    """A pretrained network (VGG, I3D, LPIPS heads) cannot be loaded; the message names the option that supplies it."""


def one_line(exc: BaseException) -> str:
    """An exception's whole message on one line (for a UserError or the app's JSON `detail`)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (library errors can span many), or its type's name."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class DiskFull(UserError):
    """The disk filled up while writing an output (not the input's fault: never skipped as a bad input)."""

    def __init__(self, path):
        super().__init__(f"disk full while writing {path}")
        self.path = path

    def __reduce__(self):                        # from a worker process (simulate --workers), as it was raised
        return DiskFull, (self.path,)


def printable(text: str) -> str:
    """`text` with each character a terminal does not show as itself (a line break, tab, escape or other
    control character, an undecodable byte of a file name) written as a Python repr writes it: \\n, \\x1b,
    \\udcff. Printable text, other alphabets included, is left as it is."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def print_line(line: str) -> None:
    """Print one line on stderr (an error, a note), escaped by `printable`."""
    print(printable(line), file=sys.stderr)
