"""manage.py bench_receive: Orthanc, run_dicom_scp at 1 and 2 processes and the bare pynetdicom SCP measured in
one run at 1 and 4 associations, every file accounted for, rows cleaned up.
The full figure (issue 17): BENCH_FILES=600 bash scripts/test tests/upload/test_bench_receive.py -s
or bash scripts/with-services .venv/bin/python manage.py bench_receive."""
from __future__ import annotations

import io
import os
import re

import pytest
from django.core.management import call_command

from prearchive.models import PrearchiveFile, PrearchiveSession

LABELS = {"orthanc": r"/usr/sbin/Orthanc [\d.]+", "xnatlite-p1": r"xnatlite \(run_dicom_scp --processes 1\)",
          "xnatlite-p2": r"xnatlite \(run_dicom_scp --processes 2\)", "bare": r"bare pynetdicom SCP \(writes files\)"}


@pytest.mark.slow
def test_bench_receive_reports_every_receiver_at_1_and_4_associations_and_the_ratios(transactional_db):
    files = int(os.environ.get("BENCH_FILES", "40"))
    out = io.StringIO()
    call_command("bench_receive", files=files, rounds=2, stdout=out)
    text = out.getvalue()
    print(text)
    assert re.search(r"machine: \d+ cores, load average", text)
    assert f"session: {files} files of 129 KB, 4 series" in text
    assert re.search(r"durability: Orthanc: .*; xnatlite: postgresql \(fsync=\w+, synchronous_commit=\w+\), "
                     r"PREARCHIVE_FSYNC=(on|off); bare: no fsync", text), text
    for level in ("1 association(s):", "4 association(s):"):
        section = text.split(level, 1)[1].split(" association(s):", 1)[0]
        rates = {name: float(re.search(rf"  {label}: ([\d.]+) files/s", section).group(1))
                 for name, label in LABELS.items()}
        assert all(rate > 0 for rate in rates.values()), rates
        cpu = {name: float(re.search(rf"  {label}: [\d.]+ files/s, ([\d.]+) ms CPU a file", section).group(1))
               for name, label in LABELS.items()}
        assert all(0 < ms < 1000 for ms in cpu.values()), cpu  # each receiver's own processes were measured
        for ours in ("xnatlite-p1", "xnatlite-p2"):
            line = re.search(rf"  ratio {ours}: (.*)", section).group(1)
            for other in ("orthanc", "bare", "xnatlite-p1", "xnatlite-p2"):
                if other != ours:
                    ratio = float(re.search(rf"([\d.]+)x {other}\b", line).group(1))
                    assert ratio == pytest.approx(rates[ours] / rates[other], rel=0.03, abs=0.01)
    assert "count check: every file sent is stored once (orthanc, xnatlite-p1, xnatlite-p2, bare): OK" in text
    assert PrearchiveSession.objects.count() == 0 and PrearchiveFile.objects.count() == 0
