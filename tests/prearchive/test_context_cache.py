"""prearchive/services/context.py: the settings snapshot intake reads is kept inside a transaction too, but
never after the transaction or savepoint that read it rolls back, and a change saved in it is seen at once."""
from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from prearchive.services import context

pytestmark = pytest.mark.django_db


def test_a_snapshot_in_a_transaction_is_kept_until_a_change_is_saved(project, site):
    first = context.snapshot()
    with CaptureQueriesContext(connection) as queries:
        again = context.snapshot()
    assert again is first and len(queries) == 0, "read again inside the same transaction"
    project.series_import_filter_enabled, project.series_import_filter = True, "SeriesDescription:.*LOC.*"
    project.series_import_filter_mode = "blacklist"
    project.save()
    seen = context.snapshot().projects["PROJ1"]
    assert seen.filter_enabled and seen.filter_text == "SeriesDescription:.*LOC.*"


def test_a_snapshot_read_in_a_rolled_back_savepoint_is_never_used_after_it(project, site):
    assert context.snapshot().resolve("ALIAS1") is None
    from xnatlite.models import ProjectAlias

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            ProjectAlias.objects.create(alias="ALIAS1", project=project)
            assert context.snapshot().resolve("ALIAS1") == "PROJ1"  # read inside the savepoint
            raise RuntimeError("roll the savepoint back")
    assert context.snapshot().resolve("ALIAS1") is None, "kept a value from a rolled-back savepoint"


def test_a_settings_override_is_seen_at_once(project, site, settings):
    settings.DICOM_INFLATED_MAX_BYTES = 12345
    assert context.snapshot().inflate_max == 12345
    settings.DICOM_INFLATED_MAX_BYTES = 54321
    assert context.snapshot().inflate_max == 54321
