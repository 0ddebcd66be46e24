"""Runtime behaviour beyond the table: hashUID pairs, errors with lines, per-file state, records."""
from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from anonymization.dicomedit import (DicomEditRuntimeError, RunContext, detect_dialect, hash_uid, parse)
from anonymization.dicomedit import functions as fn_module
from anonymization.dicomedit.registry import FUNCTIONS

from .helpers import build, merged, read

KNOWN_PAIRS = [  # reference §7, XNAT's own expected values
    ("1.2.3.4.5", "2.25.281097975800109040096884226991818420711"),
    ("1.2.3.4.5.6", "2.25.262228503153619312954819897114011402300"),
    ("1.3.46.670589.11.5730.5.0.1744.2010043012343685002", "2.25.76380769527968176043226179709817176787"),
    ("1.3.46.670589.11.5730.5.20.1.1.3144.2010043013044142001", "2.25.18971457369541893112737536732177973003"),
    ("1.3.46.670589.11.5730.5.0.3224.2010071913175879000", "2.25.332186669190258916436704332443158107660"),
]


@pytest.mark.parametrize(("uid", "expected"), KNOWN_PAIRS)
def test_hash_uid_known_pairs(uid: str, expected: str) -> None:
    assert hash_uid(uid) == expected
    ds = Dataset()
    ds.StudyInstanceUID = uid
    parse('version "6.1"\n(0020,000D) := hashUID[(0020,000D)]').apply(ds, variables={})
    assert ds.StudyInstanceUID == expected


def test_hash_uid_of_absent_tag_assigns_empty() -> None:
    ds = Dataset()
    parse('version "6.1"\n(0020,000D) := hashUID[(0020,000D)]').apply(ds, variables={})
    assert ds.StudyInstanceUID == ""


def test_detect_dialect() -> None:
    assert detect_dialect('version "6.3"\n-(0010,0010)') == "6"
    assert detect_dialect('// comment\n\n  version "6.1"\n') == "6"
    assert detect_dialect('-(0010,0010)\nversion "6.1"') == "4"
    assert detect_dialect("") == "4"


def _runtime_error(script: str, **kwargs: object) -> DicomEditRuntimeError:
    ds = build(merged(None))
    with pytest.raises(DicomEditRuntimeError) as excinfo:
        parse(script).apply(ds, variables={}, **kwargs)
    return excinfo.value


def test_runtime_error_names_line() -> None:
    err = _runtime_error('version "6.1"\n(0008,1030) := "ok"\n(0008,103E) := substring["abc", 0, 9]')
    assert str(err) == "line 3: substring range [0, 9) out of bounds for a value of length 3"
    assert err.line == 3


def test_runtime_error_inside_block_names_inner_line() -> None:
    err = _runtime_error('version "6.4"\nif (true[]) {\n  (0008,1030) := "ok"\n  (0028,0010) := "abc"\n}')
    assert str(err) == "line 4: value is not a number for VR US"


def test_get_url_is_off_unless_enabled() -> None:
    err = _runtime_error('version "6.1"\n(0008,1030) := getURL["http://127.0.0.1:9/x"]')
    assert str(err) == "line 2: getURL is disabled on this site (site setting dicomEditAllowGetUrl)"
    ds = Dataset()
    run = RunContext(allow_get_url=True, url_fetcher=lambda url: "SITE1")
    parse('version "6.1"\n(0008,1030) := getURL["http://x/siteId"]').apply(ds, variables={}, run=run)
    assert ds.StudyDescription == "SITE1"


def test_void_value_cannot_be_assigned() -> None:
    err = _runtime_error('version "6.6"\n(0008,1030) := removeTags[(0010,0010)]')
    assert str(err) == "line 2: Assigned value is VOID"


def test_raw_python_errors_are_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(ctx: object, args: list[object]) -> object:
        raise ZeroDivisionError("secret PHI value")

    monkeypatch.setattr(FUNCTIONS["lowercase"], "impl", boom)
    err = _runtime_error('version "6.1"\n\n(0008,1030) := lowercase["x"]')
    assert str(err) == "line 3: internal error (ZeroDivisionError)"
    assert "PHI" not in str(err)


def test_variables_do_not_leak_between_files() -> None:
    script = parse('version "6.1"\ndescribe x "X"\n(0008,0060) = "MR" ? x := "mr"\n(0008,1030) := concatenate[x]')
    first, second = Dataset(), Dataset()
    first.Modality, second.Modality = "MR", "CT"
    script.apply(first, variables={})
    script.apply(second, variables={})
    assert (first.StudyDescription, second.StudyDescription) == ("mr", "null")


def test_de4_first_assignment_wins_per_file() -> None:
    script = parse('(0008,1040) := (0008,0060)\n(0008,1040) := "B"')
    a, b = Dataset(), Dataset()
    a.Modality, b.Modality = "MR", "CT"
    script.apply(a, variables={})
    script.apply(b, variables={})
    assert (a.InstitutionalDepartmentName, b.InstitutionalDepartmentName) == ("MR", "CT")


def test_site_then_project_script_append_two_records() -> None:
    ds = build(merged(None))
    parse('-(0010,0030)').apply(ds, variables={})
    parse('version "6.1"\n(0010,0010) := subject').apply(ds, variables={"subject": "S1"}, script_id="7")
    items = read(ds, "(0012,0064)")
    assert [(i.CodeValue, i.CodeMeaning) for i in items] == [
        ("1", "XNAT DicomEdit 4 Script"), ("7", "XNAT DicomEdit 6 Script")]
    assert read(ds, "(0010,0010)") == "S1"


def test_record_can_be_turned_off() -> None:
    ds = Dataset()
    parse('version "6.1"\n(0008,1030) := "x"').apply(ds, variables={}, record=False)
    assert (0x0012, 0x0064) not in ds


def test_file_meta_follows_sop_instance_uid() -> None:
    ds = build(merged(None))
    parse('version "6.1"\n(0008,0018) := "1.2.3.999"').apply(ds, variables={})
    assert ds.file_meta.MediaStorageSOPInstanceUID == "1.2.3.999"


def test_rejected_file_gets_no_record() -> None:
    ds = build(merged(None))
    result = parse('version "6.6"\nreject[]').apply(ds, variables={})
    assert result.rejected
    assert (0x0012, 0x0064) not in ds


def test_echo_goes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    parse('version "6.1"\necho "hello"').apply(Dataset(), variables={})
    assert capsys.readouterr().out == "hello\n"


def test_compiled_script_is_reusable_and_fast_path_is_not_regex_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    script = parse('version "6.1"\n(0008,0050) ~ "\\\\d+" ? (0008,1030) := "digits"')
    calls = []
    monkeypatch.setattr(fn_module, "compile_java", lambda p: calls.append(p))
    import anonymization.dicomedit.interpreter as interp
    monkeypatch.setattr(interp, "compile_java", lambda p: calls.append(p))
    for _ in range(3):
        ds = Dataset()
        ds.AccessionNumber = "123"
        script.apply(ds, variables={})
        assert ds.StudyDescription == "digits"
    assert calls == []


def test_preview_lists_changes_without_touching_the_dataset() -> None:
    from anonymization.dicomedit.preview import preview

    ds = build(merged(None))
    script = parse('version "6.1"\n-(0010,0030)\n(0010,0010) := "ANON"\n(0008,1115)[0]/(0008,1155) := "9.9"')
    result = preview(script, ds, {})
    changes = {c.path: (c.keyword, c.before, c.after) for c in result.changes}
    assert changes["(0010,0030)"] == ("PatientBirthDate", "19700101", None)
    assert changes["(0010,0010)"] == ("PatientName", "Doe^John", "ANON")
    assert changes["(0008,1115)[0]/(0008,1155)"] == ("ReferencedSOPInstanceUID", "1.2.3.4.5", "9.9")
    assert changes["(0012,0064)"][1:] == (None, "<sequence of 1 item(s)>")
    assert "(0010,0020)" not in changes
    assert read(ds, "(0010,0030)") == "19700101" and not result.rejected


def test_lookup_of_a_table_the_run_lacks_names_the_line() -> None:
    err = _runtime_error('version "6.6"\n\n(0010,0010) := lookup["pn", (0010,0010)]')
    assert str(err) == "line 3: lookup: no lookup table 'pn' was provided for this run"
    err = _runtime_error('version "6.6"\n(0010,0010) := lookup["pn", (0010,0010)]',
                         run=RunContext(lookup_tables={"pid": {"a": "b"}}))
    assert err.line == 2


def test_lookup_table_file_format() -> None:
    from anonymization.dicomedit.context import load_lookup_table

    text = ("// comment\r\n  // indented comment\n\n   \npn/Doe^John = ANON1\npn / spaced key =  v  \n"
            "no-slash = x\na/b/c = x\na/b = c = d\npid/P1=\npid/P2 = two==\npid/P3 =x\rpn/Doe^John = ANON2\n")
    tables = load_lookup_table(text)
    # Java split() drops trailing empty strings: "pid/P1=" is one token (skipped), "two==" keeps "two"
    assert tables == {"pn": {"Doe^John": "ANON2", " spaced key": "v"}, "pid": {"P2": "two", "P3": "x"}}
    merged_into: dict[str, dict[str, str]] = {"pn": {"x": "y"}}
    assert load_lookup_table("pn/z = w", into=merged_into) is merged_into
    assert merged_into == {"pn": {"x": "y", "z": "w"}}


def test_map_uid_maps_absent_and_empty_values_too() -> None:
    # DicomEdit maps null and "" (TestMapUIDFunction testNullValue/testEmptyValue); the engine reads an
    # empty element as null, as it does everywhere, so both share one mapped UID here.
    run = RunContext()
    script = parse('version "6.6"\n(0004,1511) := mapUID[ (0004,1511), "1.666"]')
    absent, empty = Dataset(), Dataset()
    empty.add_new(0x00041511, "UI", "")
    script.apply(absent, variables={}, run=run)
    script.apply(empty, variables={}, run=run)
    assert absent[0x00041511].value.startswith("1.666.")
    assert empty[0x00041511].value == absent[0x00041511].value
    assert list(run.mapped_uids) == [None]


def test_map_uid_checks_a_prefix_computed_at_run_time() -> None:
    err = _runtime_error('version "6.6"\np := (0010,0010)\n(0020,000D) := mapUID[(0020,000D), p]')
    assert str(err) == ("line 3: mapUID: the prefix is not a UID root (digits separated by dots, "
                        "at most 62 characters)")


def test_map_uid_can_be_preloaded_by_the_caller() -> None:
    ds = build(merged(None))
    run = RunContext(mapped_uids={"1.3.46.670589.11.5730.5.0.1744.2010043012343685002": "1.666.1"})
    parse('version "6.6"\n(0020,000D) := mapUID[(0020,000D), "1.666"]').apply(ds, variables={}, run=run)
    assert read(ds, "(0020,000D)") == "1.666.1"


def test_scale_age_with_unparseable_age_is_an_error() -> None:
    ds = Dataset()
    ds.add_new(0x00101010, "AS", "45")  # DicomEdit: AnonymizationResultError "Error parsing age"
    with pytest.raises(DicomEditRuntimeError) as excinfo:
        parse('version "6.6"\nscalePatientAgeAndDobFromStudyDate[]').apply(ds, variables={})
    assert str(excinfo.value) == ("line 2: scalePatientAgeAndDobFromStudyDate: error parsing age in (0010,1010): "
                                  "expected nnnD, nnnW, nnnM or nnnY")


def test_midpoint_of_partial_dates() -> None:
    from datetime import datetime

    from anonymization.dicomedit.dates import midpoint_seconds

    def at(*parts: int) -> int:
        return int((datetime(*parts) - datetime(1, 1, 1)).total_seconds())

    assert midpoint_seconds("2000") == at(2000, 7, 1)
    assert midpoint_seconds("200002") == at(2000, 2, 15, 12)  # 29 days: day 15, odd -> noon
    assert midpoint_seconds("200004") == at(2000, 4, 16)  # 30 days: day 16, even -> midnight
    assert midpoint_seconds("20000131") == at(2000, 1, 31, 12)
    assert midpoint_seconds("2000013108") == at(2000, 1, 31, 8, 30)
    assert midpoint_seconds("200001310815") == at(2000, 1, 31, 8, 15, 30)
    assert midpoint_seconds("20000131081559.5+0100") == at(2000, 1, 31, 8, 15, 59) - 3600
    assert midpoint_seconds("") is None and midpoint_seconds("2000-01-31") is None
    assert midpoint_seconds("20001340") is None
