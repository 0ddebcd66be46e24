"""bench_load runs end to end with a tiny count (the real run: 2,000+ files, see the command's docstring), so
the benchmark cannot rot: its processes start, every path carries files and the count check holds."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_bench_load_small_run_accounts_for_every_file():
    out = io.StringIO()
    call_command("bench_load", files=60, archive_files=8, rows=16, stdout=out)
    text = out.getvalue()
    assert "count check: OK" in text, text
    assert "files/s" in text and "slowest C-STORE" in text and "slowest zip upload" in text
    import re

    assert re.search(r"receiver: run_dicom_scp --processes \d+ \(\d+ cores\)", text), text
    total = float(re.search(r"load time: [\d.]+ s -> ([\d.]+) files/s", text).group(1))
    shares = re.findall(r"of which (DICOM receiver|zip uploads)[^:]*: (\d+) files, ([\d.]+) of the ([\d.]+) files/s "
                        r"\((\d+)%\); on its own ([\d.]+) files/s", text)
    assert [s[0] for s in shares] == ["DICOM receiver", "zip uploads"], text
    assert sum(float(s[2]) for s in shares) == pytest.approx(total, abs=0.2)  # the two routes make the rate
    assert all(float(s[3]) == total and float(s[5]) >= float(s[2]) for s in shares)
    assert "archive of 8 files during the load" in text
