"""Table-driven conformance: every case applies a script to a dataset and checks the resulting tags."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from anonymization.dicomedit import RunContext, parse
from anonymization.dicomedit.context import load_lookup_table

from . import cases_de4, cases_de6, cases_functions
from .helpers import ABSENT, build, merged, read

ALL_CASES = cases_de6.CASES + cases_functions.CASES + cases_de4.CASES


def _pixel_spec() -> dict:
    pixels = np.arange(16, dtype="<u2").reshape(4, 4)
    return {"(0028,0002)": ("US", 1), "(0028,0004)": ("CS", "MONOCHROME2"), "(0028,0100)": ("US", 16),
            "(0028,0101)": ("US", 16), "(0028,0102)": ("US", 15), "(0028,0103)": ("US", 0),
            "(7FE0,0010)": ("OW", pixels.tobytes())}


def _round_trip(ds: Dataset) -> Dataset:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    buf.seek(0)
    return dcmread(buf)


@pytest.mark.parametrize("case", ALL_CASES, ids=[c["name"] for c in ALL_CASES])
def test_case(case: dict) -> None:
    spec = merged(case.get("input"), case.get("base", True))
    if case.get("check") == "pixels":
        spec.update(_pixel_spec())
    ds = build(spec)
    echoes: list[str] = []
    run = RunContext(echo=echoes.append, allow_get_url=case.get("allow_get_url", False),
                     url_fetcher=lambda url: f"SITE:{url}",
                     lookup_tables=load_lookup_table(case.get("lookup_table", "")))
    script = parse(case["script"], dialect=case.get("dialect"))
    result = script.apply(ds, variables=case.get("vars", {}), run=run)
    assert result.rejected is case.get("rejected", False)
    ds = _round_trip(ds)  # what matters is what gets written
    for path, expected in case["expect"].items():
        actual = read(ds, path)
        if expected is ABSENT:
            assert actual is ABSENT, f"{path} should be absent, is {actual!r}"
        elif isinstance(expected, str) and expected.endswith(".*"):
            assert re.fullmatch(re.escape(expected[:-1]) + r"\d+", actual), f"{path}: {actual!r} !~ {expected}"
        else:
            assert actual == expected, f"{path}: {actual!r} != {expected!r}"
    if "echo" in case:
        assert echoes == case["echo"]
    check = case.get("check")
    if check == "new_uid":
        uid = read(ds, "(0008,0018)")
        assert re.fullmatch(r"2\.25\.\d+", uid) and uid != "1.2.3.4.5.6"
        assert read(ds, "meta:(0002,0003)") == uid
        other = build(spec)
        script.apply(other, variables={}, run=run)
        assert read(other, "(0008,0018)") != uid
    elif check == "mapped_uids":
        study = read(ds, "(0020,000D)")
        ref0 = read(ds, "(0008,1115)[0]/(0008,1155)")
        assert study.startswith("1.2.826.0.1.3680043.10.9.") and len(study) <= 64
        assert ref0.startswith("1.2.826.0.1.3680043.10.9.") and ref0 != study
        again = build(spec)
        script.apply(again, variables={}, run=run)
        assert read(again, "(0020,000D)") == study
        assert read(again, "(0008,1115)[0]/(0008,1155)") == ref0
        fresh = build(spec)
        script.apply(fresh, variables={}, run=RunContext())
        assert read(fresh, "(0020,000D)") != study
    elif check == "map_uid":
        study, series = read(ds, "(0020,000D)"), read(ds, "(0020,000E)")
        assert study != series and len(study) <= 64
        assert read(ds, "(0008,1115)[1]/(0008,1155)") == study  # the memo is keyed by the value
        again = build(spec)
        script.apply(again, variables={}, run=run)
        assert (read(again, "(0020,000D)"), read(again, "(0020,000E)")) == (study, series)
        fresh = build(spec)
        script.apply(fresh, variables={}, run=RunContext())
        assert read(fresh, "(0020,000D)") != study
    elif check == "pixels":
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        out = np.frombuffer(ds.PixelData, dtype="<u2").reshape(4, 4)
        expected = np.arange(16, dtype="<u2").reshape(4, 4)
        expected[1:2, 1:3] = 100
        assert (out == expected).all()


def test_table_covers_every_function() -> None:
    from anonymization.dicomedit.registry import FUNCTIONS

    used = set()
    for case in ALL_CASES:
        used.update(re.findall(r"([A-Za-z]+)\[", case["script"]))
    missing = set(FUNCTIONS) - used - {"blankKnownPHI"}
    assert not missing, missing
