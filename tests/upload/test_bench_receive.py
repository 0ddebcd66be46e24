"""manage.py bench_receive: both receivers measured in one run, every file accounted for, rows cleaned up.
The full 1,000-file figure: BENCH_FILES=1000 bash scripts/test tests/upload/test_bench_receive.py -s
(BENCH_ASSOCIATIONS=4 splits the session over four concurrent storescu processes, for both receivers)."""
from __future__ import annotations

import io
import os
import re

import pytest
from django.core.management import call_command

from prearchive.models import PrearchiveFile, PrearchiveSession


@pytest.mark.slow
def test_bench_receive_reports_both_rates_and_the_ratio(transactional_db, settings):
    files = int(os.environ.get("BENCH_FILES", "100"))
    out = io.StringIO()
    associations = int(os.environ.get("BENCH_ASSOCIATIONS", "1"))
    call_command("bench_receive", files=files, associations=associations, stdout=out)
    text = out.getvalue()
    print(text)
    bare = float(re.search(r"bare pynetdicom SCP \(writes files\): ([\d.]+) files/s", text).group(1))
    ours = float(re.search(r"run_dicom_scp \(intake, prearchive\): ([\d.]+) files/s", text).group(1))
    ratio = float(re.search(r"ratio: ([\d.]+)", text).group(1))
    assert bare > 0 and ours > 0
    assert ratio == pytest.approx(ours / bare, abs=0.01)
    assert f"session: {files} files" in text
    assert PrearchiveSession.objects.count() == 0 and PrearchiveFile.objects.count() == 0
