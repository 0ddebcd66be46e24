"""Exception types of the DicomEdit engine."""
from __future__ import annotations


class DicomEditError(Exception):
    """Base of every error raised by the DicomEdit engine."""


class DicomEditSyntaxError(DicomEditError):
    """A script that does not parse or check; carries a 1-based line and column."""

    def __init__(self, message: str, line: int, column: int) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(f"{line}:{column}: {message}")


class DicomEditRuntimeError(DicomEditError):
    """A failure while applying a script to one dataset; names the statement's line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class ScriptRuntimeFault(Exception):
    """Raised inside statement code; turned into DicomEditRuntimeError with the line."""


class RejectFile(Exception):
    """Raised by reject[] to stop the script and drop the file."""
