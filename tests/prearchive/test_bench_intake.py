"""manage.py bench_intake runs end to end and prints its figures (small sizes here)."""
from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from prearchive.models import PrearchiveSession


@pytest.mark.django_db
def test_bench_intake_prints_rates_ratio_and_build_memory(settings):
    out = StringIO()
    call_command("bench_intake", files=120, instances=600, size=16, stdout=out)
    text = out.getvalue()
    assert re.search(r"bare loop \(header read \+ copy\): \d+ files/s", text)
    assert re.search(r"intake .*: \d+ files/s", text)
    assert re.search(r"intake / bare ratio: \d+\.\d\d", text)
    peak = float(re.search(r"build of a 600-instance session: .* peak traced memory ([\d.]+) MiB", text).group(1))
    assert 0 < peak < 300
    assert not PrearchiveSession.objects.exists()  # cleaned up
