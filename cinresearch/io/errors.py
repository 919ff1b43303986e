"""File-level input errors: the file cannot be read at all (nothing of it is loaded)."""

from __future__ import annotations

import os
from pathlib import Path


class InputFileError(Exception):
    """A file-level problem in any input; the message names the file, the line and the reason."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{Path(path).name}:{line}" if line else Path(path).name
        super().__init__(f"{where}: {message}")


class CinFileError(InputFileError):
    """A file-level problem in a CIN census XML return (truncated, wrong root, no header, ...)."""
