"""Intake's fingerprints (keyed hashes of the identifying values a file arrived with) are computed once per
distinct set of values: the next file of the session with the same values gets the same digests without
hashing them again, a file whose values differ (or a new site secret) gets its own."""
from __future__ import annotations

from unittest import mock

import pytest

from prearchive.services import residual
from prearchive.services.headers import header_read
from tests.dicom_factory import dataset_bytes, make_dataset


def _read(**tags):
    return header_read(None, raw=dataset_bytes(make_dataset(**tags)), extra_tags=residual.HEADER_TAGS).dataset


def _fresh(ds, uids=True):
    """The digests computed from scratch (no memo)."""
    residual.known_clear()
    return residual.fingerprints_of(ds, uids=uids)


@pytest.fixture(autouse=True)
def _empty_memo():
    residual.known_clear()
    yield
    residual.known_clear()


def test_the_same_values_are_hashed_once_and_give_the_same_digests(settings):
    first = _read(PatientName="Zzmemo^Given", PatientID="ZZMEMO1", OtherPatientIDs="ZZOTHER1",
                  InstitutionName="Zz Hospital")
    second = _read(PatientName="Zzmemo^Given", PatientID="ZZMEMO1", OtherPatientIDs="ZZOTHER1",
                   InstitutionName="Zz Hospital")
    expected_second = _fresh(second)
    residual.known_clear()
    prints = residual.fingerprints_of(first)
    assert prints == _fresh(first)
    residual.fingerprints_of(first)  # in the memo now
    with mock.patch.object(residual, "_digest", wraps=residual._digest) as digest:
        again = residual.fingerprints_of(second)
    assert again == expected_second
    assert digest.call_count == 3  # the three UIDs only: Study, Series, SOP Instance
    assert again["PatientName"] == prints["PatientName"] and again["SOPInstanceUID"] != prints["SOPInstanceUID"]
    again["PatientName"].add("x")  # the caller's sets are its own: the memo is not changed through them
    assert "x" not in residual.fingerprints_of(second)["PatientName"]

    with mock.patch.object(residual, "_digest", wraps=residual._digest) as digest:
        no_uids = residual.fingerprints_of(second, uids=False)
    assert digest.call_count == 0 and not set(no_uids) & set(residual.UIDS)
    assert no_uids == {k: v for k, v in expected_second.items() if k not in residual.UIDS}


def test_other_values_or_another_secret_are_hashed_anew(settings):
    residual.fingerprints_of(_read(PatientName="Zzmemo^Given", PatientID="ZZMEMO1"))
    other = _read(PatientName="Zzmemo^Given", PatientID="ZZMEMO2")
    expected = _fresh(other)
    residual.fingerprints_of(_read(PatientName="Zzmemo^Given", PatientID="ZZMEMO1"))
    assert residual.fingerprints_of(other) == expected  # one value differs: its own digests
    settings.PHI_HMAC_SECRET = "another-secret-for-this-test"
    rekeyed = residual.fingerprints_of(other)
    assert rekeyed["PatientID"].isdisjoint(expected["PatientID"])
    assert rekeyed == _fresh(other)
