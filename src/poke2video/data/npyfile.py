""".npy files written row by row, so an array is never held whole in memory.

`NpyAppender` writes the header for zero rows, appends rows as they come and rewrites the header with
the final row count on close. NumPy pads every header so that the first axis can grow to 21 digits
without changing its length, so the rewrite fits in place and the file has exactly the bytes
`np.save` would write for the whole array.
"""
from __future__ import annotations

import io
import os

import numpy as np


def _header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
    return buffer.getvalue()


class NpyAppender:
    """Append rows of `row_shape` and `dtype` to a new .npy file at `path`."""

    def __init__(self, path: str | os.PathLike, dtype, row_shape: tuple[int, ...]):
        self.path = path
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(int(n) for n in row_shape)
        self.rows = 0
        self._file = open(path, "wb")
        self._header_size = self._file.write(_header(self.dtype, (0, *self.row_shape)))

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.rows, *self.row_shape)

    def append(self, rows: np.ndarray) -> None:
        """Append an array of shape [k, *row_shape] (k may be 0)."""
        if tuple(rows.shape[1:]) != self.row_shape:
            raise ValueError(f"{self.path}: rows of shape {rows.shape[1:]}, expected {self.row_shape}")
        self._file.write(np.ascontiguousarray(rows, dtype=self.dtype).data)
        self.rows += rows.shape[0]

    def close(self) -> None:
        if self._file.closed:
            return
        header = _header(self.dtype, self.shape)
        if len(header) != self._header_size:  # cannot happen with NumPy's growth padding; never write a bad file
            raise ValueError(f"{self.path}: .npy header changed size ({self._header_size} -> {len(header)})")
        self._file.seek(0)
        self._file.write(header)
        self._file.close()

    def abort(self) -> None:
        self._file.close()
