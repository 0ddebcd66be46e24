"""manage.py bench_anonymize builds its corpus and reports both loops and their ratio."""
from __future__ import annotations

import re
from pathlib import Path

from django.core.management import call_command
from pydicom import dcmread

from anonymization.dicomedit import hash_uid


def test_bench_anonymize_small_run(tmp_path: Path, capsys) -> None:
    call_command("bench_anonymize", "--count", "12", "--rounds", "1", "--workdir", str(tmp_path))
    out = capsys.readouterr().out
    a = float(re.search(r"\(a\) bare pydicom loop: ([\d.]+) files/s", out).group(1))
    b = float(re.search(r"\(b\) DicomEdit engine:\s+([\d.]+) files/s", out).group(1))
    ratio = float(re.search(r"ratio b/a: ([\d.]+)", out).group(1))
    assert a > 0 and b > 0 and abs(ratio - b / a) < 0.01
    c = float(re.search(r"\(c\) engine \+ residual-PHI check: ([\d.]+) files/s \((\d+) finding", out).group(1))
    findings = int(re.search(r"files/s \((\d+) finding", out).group(1))
    check_ratio = float(re.search(r"ratio c/b: ([\d.]+)", out).group(1))
    assert c > 0 and abs(check_ratio - c / b) < 0.01
    assert findings >= 3  # the bench script leaves the accession number and the institution's name and address
    corpus = sorted((tmp_path / "corpus").iterdir())
    assert len(corpus) == 12
    src = dcmread(corpus[0])
    assert (src.Rows, src.Columns, src.BitsAllocated) == (256, 256, 16)
    assert src.PatientBirthDate and src.private_block(0x0019, "SIEMENS MR HEADER")
    bare = dcmread(tmp_path / "out_bare" / corpus[0].name)
    engine = dcmread(tmp_path / "out_engine" / corpus[0].name)
    for ds in (bare, engine):  # both loops do the same edit
        assert "PatientBirthDate" not in ds and "OtherPatientIDs" not in ds and "PatientAddress" not in ds
        assert str(ds.PatientName) == "SUBJ01" and ds.PatientID == "SUBJ01_MR1"
        assert ds.StudyInstanceUID == hash_uid(src.StudyInstanceUID)
