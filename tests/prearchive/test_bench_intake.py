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


@pytest.mark.django_db(transaction=True)
def test_bench_intake_drives_the_receivers_intake_from_one_and_four_threads(site):
    out = StringIO()
    call_command("bench_intake", receiver_threads="1,4", receiver_files=40, rounds=1, receiver_only=True,
                 stdout=out)
    text = out.getvalue()
    for n in ("1 association", "4 associations"):
        assert re.search(rf"receiver intake, {n}: [\d.]+ files/s \(CPU [\d.]+ ms a file\)", text), text
    assert "every file stored once with its row" in text
    assert not PrearchiveSession.objects.exists()  # cleaned up
