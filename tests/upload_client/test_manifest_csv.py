"""The bulk upload's CSV manifest: round trip and validation."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import ValidationError

from upload.client.manifest import COLUMNS, manifest_csv_apply, manifest_csv_build

SESSIONS = [
    {"key": "s1", "study_date": "2024-01-15", "modalities": ["MR"], "is_pet": False, "files": 4,
     "scans": [{"id": "1", "description": "T1"}, {"id": "2", "description": "T2"}]},
    {"key": "s2", "study_date": "2024-02-01", "modalities": ["CT", "PT"], "is_pet": True, "files": 2,
     "scans": [{"id": "1", "description": "PET AC"}]},
    {"key": "s3", "study_date": "2024-03-09", "modalities": ["MR"], "is_pet": False, "files": 1,
     "scans": [{"id": "5", "description": "DWI"}]},
]
ROWS = {"s1": {"subject": "A", "label": "A_MR"}, "s2": {"subject": "B", "label": "B_PET"},
        "s3": {"subject": "C", "label": "C_MR"}}
TRACERS = ["PIB", "FDG"]


def rows_of(text):
    return list(csv.DictReader(io.StringIO(text)))


def text_of(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def apply(rows, **kw):
    return manifest_csv_apply(sessions=SESSIONS, data=text_of(rows).encode(), tracers=TRACERS, **kw)


def test_round_trip_unchanged():
    text = manifest_csv_build(sessions=SESSIONS, rows=ROWS)
    assert rows_of(text)[0]["Series Descriptions"] == "T1; T2"
    result = manifest_csv_apply(sessions=SESSIONS, data=text, tracers=TRACERS)
    assert result == {k: {**v, "tracer": ""} for k, v in ROWS.items()}


def test_editable_columns_change_and_a_deleted_row_drops_the_session():
    rows = rows_of(manifest_csv_build(sessions=SESSIONS, rows=ROWS))
    rows[0]["XNAT Subject ID"], rows[0]["Session Label"] = "X1", "X1_v00"
    rows[1]["PET Tracer"] = "FDG"
    del rows[2]
    result = apply(rows)
    assert list(result) == ["s1", "s2"]
    assert result["s1"] == {"subject": "X1", "label": "X1_v00", "tracer": ""}
    assert result["s2"]["tracer"] == "FDG"


@pytest.mark.parametrize("column", ["Study Date", "Modalities", "Scans", "Files", "Series Descriptions"])
def test_an_edit_to_another_column_is_refused(column):
    rows = rows_of(manifest_csv_build(sessions=SESSIONS, rows=ROWS))
    rows[1][column] = rows[1][column] + "9"
    with pytest.raises(ValidationError) as err:
        apply(rows)
    assert f"Row 3: the column '{column}' was changed" in err.value.messages[0]


@pytest.mark.parametrize("change, message", [
    (lambda r: r[0].update({"Upload ID": "s9"}), "Row 2: there is no queued session 's9'"),
    (lambda r: r.append(dict(r[0])), "appears more than once"),
    (lambda r: r[0].update({"Session Label": "bad label!"}), "Row 2: Session Label 'bad label!'"),
    (lambda r: r[0].update({"XNAT Subject ID": "x" * 65}), "Row 2: XNAT Subject ID"),
    (lambda r: r[0].update({"PET Tracer": "FDG"}), "only used for sessions with PET scans"),
    (lambda r: r[1].update({"PET Tracer": "XYZ"}), "'XYZ' is not one of this project's PET tracers"),
    (lambda r: r.clear(), "no session rows left"),
])
def test_bad_rows_are_refused(change, message):
    rows = rows_of(manifest_csv_build(sessions=SESSIONS, rows=ROWS))
    change(rows)
    with pytest.raises(ValidationError) as err:
        apply(rows)
    assert message in err.value.messages[0]


def test_missing_column_and_bad_encoding_are_refused():
    text = manifest_csv_build(sessions=SESSIONS, rows=ROWS).replace("PET Tracer", "Tracer")
    with pytest.raises(ValidationError, match="lacks the column"):
        manifest_csv_apply(sessions=SESSIONS, data=text, tracers=TRACERS)
    with pytest.raises(ValidationError, match="not UTF-8"):
        manifest_csv_apply(sessions=SESSIONS, data=b"\xff\xfe\x00bad", tracers=TRACERS)
    with pytest.raises(ValidationError, match="empty"):
        manifest_csv_apply(sessions=SESSIONS, data=b"", tracers=TRACERS)


def test_hidden_dates_stay_hidden():
    text = manifest_csv_build(sessions=SESSIONS, rows=ROWS, hide_dates=True)
    assert "2024" not in text
    assert len(manifest_csv_apply(sessions=SESSIONS, data=text, tracers=TRACERS, hide_dates=True)) == 3
