"""No PHI in logs from the DICOM libraries.

pydicom and pynetdicom quote header values in their warnings ("Invalid value for VR UI: '<value>'",
"Unknown encoding '<value>'", "Non-conformant 'Affected SOP Instance UID' value '<value>'"); pydicom also
raises the same text as Python warnings, which are printed to stderr. Those values may be a patient's name,
ID or birth date. ``install()`` (called from settings, so in every process: web, worker, beat, receiver)
wraps the log record factory: a record from those libraries (or from ``py.warnings``, where Python warnings
now go) has every quoted span replaced by ``'<redacted>'``. A record factory applies whatever handler
formats the record (Django's LOGGING, Celery's own), and costs nothing for records of other loggers.
"""
from __future__ import annotations

import logging
import re

REDACTED_LOGGERS = ("pydicom", "pynetdicom", "py.warnings")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|b'[^'\n]*'")
_installed = False


def redact(text: str) -> str:
    return _QUOTED.sub("'<redacted>'", text)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    logging.captureWarnings(True)
    previous = logging.getLogRecordFactory()

    def factory(name, *args, **kwargs):
        record = previous(name, *args, **kwargs)
        if name.startswith(REDACTED_LOGGERS):
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed record: keep only its template
                message = str(record.msg)
            record.msg, record.args = redact(message), ()
        return record

    logging.setLogRecordFactory(factory)
