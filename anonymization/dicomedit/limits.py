"""Resource limits of script application (issue 16 items 6, 8 and 10).

DicomEdit has no loops, so what a script can cost is bounded by the size of the values it builds, the
depth of its nesting and the time its regular expressions take. Each has a limit here; crossing one is a
located error (line and column when the script is saved, the statement's line when it runs), never a
process that grows without bound or hangs.
"""
from __future__ import annotations

MAX_SCRIPT_CHARS = 1024 * 1024
"""A script's text; a longer one is refused when it is saved."""

MAX_NESTING = 64
"""Function calls, lists and if blocks nested in one another (seeds and upstream tests use at most 4)."""

MAX_VALUE_CHARS = 1024 * 1024
"""One value a script builds (function result, variable, assigned element); DICOM's long text VRs
(LT 10,240, UT/UC far beyond) are still read whole, but a script cannot build a longer value."""

MAX_VARIABLE_CHARS = 8 * MAX_VALUE_CHARS
"""All the script's variables together, on one file."""

MAX_LIST_ITEMS = 100_000
"""Values in one list, nested lists counted flat."""

DEFAULT_TIME_LIMIT_S = 10.0
"""Wall-clock time one script may take on one file; regular expressions are stopped when it runs out."""
