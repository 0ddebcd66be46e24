"""Routing DICOM to project / subject / session (reference/xnat.md §5): pure logic, real pydicom Datasets.

No database and no Django (run with ``-p no:django``). tests/prearchive/test_routing.py covers the same
passes through intake, with the database.
"""
from __future__ import annotations

import random
import re
import time

import pytest
from pydicom.dataset import Dataset

from prearchive.routing import (
    DEFAULT_SESSION,
    ROUTING_TAGS,
    ReceiverRouting,
    RouteParams,
    RoutingExpressionError,
    extract_assignment,
    label_sanitize,
    parse_auto_archive,
    route_dataset,
    routing_expression_parse,
    routing_tags,
)

PROJECTS = {"BOBSPROJ": "BOBSPROJ", "bobs-alias": "BOBSPROJ", "STUDYDESC": "STUDYDESC", "ACC1": "ACCPROJ",
            "RECV": "RECV", "PARAMPROJ": "PARAMPROJ"}


@pytest.fixture(autouse=True)
def _clear_intake_hints():
    """Override the package conftest's autouse fixture: it imports the Django intake service."""
    yield


def resolve(value: str) -> str | None:
    return PROJECTS.get(value)


def ds(**tags) -> Dataset:
    d = Dataset()
    for keyword, value in tags.items():
        setattr(d, keyword, value)
    return d


def route(dataset: Dataset, params=None, receiver=None):
    return route_dataset(dataset=dataset, params=params, receiver=receiver, resolve_project=resolve)


FULL = dict(PatientComments="Project:BOBSPROJ Subject:subj001 Session:subj001_MR1 AA:true",
            StudyDescription="STUDYDESC", PatientName="DOE^JANE", PatientID="PID42", AccessionNumber="ACC1")


def test_request_parameters_win():
    r = route(ds(**FULL), {"PROJECT_ID": "PARAMPROJ", "SUBJECT_ID": "s9", "EXPT_LABEL": "e9", "AA": "false"})
    assert (r.project, r.subject, r.session, r.auto_archive) == ("PARAMPROJ", "s9", "e9", False)
    assert r.sources == {"project": "request:PROJECT_ID", "subject": "request:SUBJECT_ID",
                         "session": "request:EXPT_LABEL", "auto_archive": "request:AA"}


def test_lowercase_aliases_and_dest_parameter():
    r = route(ds(**FULL), {"project": "PARAMPROJ", "subject": "s", "session": "e", "auto-archive": "t"})
    assert (r.project, r.subject, r.session, r.auto_archive) == ("PARAMPROJ", "s", "e", True)
    assert route(ds(), {"dest": "/prearchive/projects/bobs-alias"}).project == "BOBSPROJ"
    assert route(ds(), {"dest": "/archive/projects/PARAMPROJ"}).project == "PARAMPROJ"
    assert route(ds(), {"dest": "/prearchive"}).project is None


def test_routeparams_dataclass_is_accepted():
    r = route(ds(), RouteParams(project="PARAMPROJ", session="x"))
    assert (r.project, r.session) == ("PARAMPROJ", "x")


def test_unresolvable_parameter_falls_through_to_the_next_pass():
    r = route(ds(**FULL), {"PROJECT_ID": "NOPE"})
    assert r.project == "BOBSPROJ" and r.sources["project"] == "PatientComments:Project"


def test_receiver_routing_expressions_come_after_params_and_before_comments():
    receiver = ReceiverRouting(project="(0008,1030):^(\\w+)-", subject="StudyComments:subj=(\\w+)",
                               session="0010,0020:^PID(\\d+)$:1")
    d = ds(**{**FULL, "StudyDescription": "RECV-brain", "StudyComments": "subj=xyz"})
    r = route(d, {}, receiver)
    assert (r.project, r.subject, r.session) == ("RECV", "xyz", "42")
    assert r.sources["project"] == r.sources["subject"] == r.sources["session"] == "receiver"
    assert route(d, {"PROJECT_ID": "PARAMPROJ"}, receiver).project == "PARAMPROJ"


def test_receiver_routing_disabled_or_from_a_model_like_object():
    class Receiver:
        routing_expressions_enabled = False
        project_routing_expression = "RECV"
        subject_routing_expression = ""
        session_routing_expression = ""

    assert route(ds(**FULL), {}, Receiver()).project == "BOBSPROJ"
    Receiver.routing_expressions_enabled = True
    r = route(ds(**FULL), {}, Receiver())
    assert r.project == "RECV" and r.subject == "subj001"


def test_receiver_expression_without_a_match_falls_through():
    receiver = ReceiverRouting(project="StudyDescription:^ZZZ(\\w+)\nAccessionNumber:(ACC1)")
    assert route(ds(**FULL), {}, receiver).project == "ACCPROJ"


def test_routing_expression_errors_and_tags():
    with pytest.raises(RoutingExpressionError, match="line 2: invalid regex"):
        routing_expression_parse("RECV\nStudyDescription:(")
    with pytest.raises(RoutingExpressionError, match="line 1: expected TAG:REGEX"):
        routing_expression_parse("NotAKeyword:(x)")
    with pytest.raises(RoutingExpressionError, match="no group 2"):
        routing_expression_parse("StudyDescription:(x):2")
    receiver = ReceiverRouting(project="(0020,4000):P=(\\w+)", subject="StudyDescription:(x)")
    assert 0x00204000 in routing_tags(receiver)
    assert routing_tags(receiver)[: len(ROUTING_TAGS)] == ROUTING_TAGS
    assert routing_tags(ReceiverRouting(enabled=False, project="(0020,4000):(x)")) == ROUTING_TAGS


@pytest.mark.parametrize("tag", ["PatientComments", "StudyComments", "AdditionalPatientHistory"])
def test_each_comment_field_carries_assignments(tag):
    d = ds(**{tag: "Project: bobs-alias; Subject: S1; Session: E1; AA: f"}, PatientName="N", PatientID="I")
    r = route(d)
    assert (r.project, r.subject, r.session, r.auto_archive) == ("BOBSPROJ", "S1", "E1", False)
    assert r.sources["project"] == f"{tag}:Project"


def test_comment_fields_are_searched_in_order():
    d = ds(PatientComments="Subject:fromPC", StudyComments="Subject:fromSC Session:fromSC",
           AdditionalPatientHistory="Session:fromAPH Project:BOBSPROJ")
    r = route(d)
    assert (r.project, r.subject, r.session) == ("BOBSPROJ", "fromPC", "fromSC")


def test_unresolvable_comment_project_falls_through_to_the_next_comment():
    d = ds(PatientComments="Project:unknown", StudyComments="Project:BOBSPROJ")
    assert route(d).project == "BOBSPROJ"


def test_study_description_name_and_id_pass():
    r = route(ds(StudyDescription="STUDYDESC", PatientName="DOE^JANE", PatientID="PID 42"))
    assert (r.project, r.subject, r.session) == ("STUDYDESC", "DOE_JANE", "PID_42")
    assert r.sources == {"project": "StudyDescription", "subject": "PatientName", "session": "PatientID"}


def test_accession_number_is_the_last_project_pass():
    r = route(ds(StudyDescription="unknown", AccessionNumber="ACC1"))
    assert r.project == "ACCPROJ" and r.sources["project"] == "AccessionNumber"


def test_fallbacks_unassigned_and_dicom_upload():
    r = route(ds(StudyDescription="unknown"))
    assert (r.project, r.subject, r.session, r.auto_archive) == (None, None, DEFAULT_SESSION, None)
    assert r.sources == {"session": "default"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Project:BobsProj Subject:subj001 Session:subj001_MR1", ("BobsProj", "subj001", "subj001_MR1")),
        ("Project: X; Subject: Y", ("X", "Y", None)),
        ("Project:x,Subject:y", ("x", "y", None)),
        ("project:lower SUBJECT : up", ("lower", "up", None)),
        ("MyProject:no Subject:a.b", (None, None, None)),
        ("Project:first\nProject:second", ("first", None, None)),  # the pattern's \A branch is tried first
        ("x Project:first\nProject:second", ("second", None, None)),  # then its greedy .* finds the last
        ("Project: ;Session:s-1", (None, None, "s-1")),
    ],
)
def test_assignment_extraction(text, expected):
    assert tuple(extract_assignment(text, k) for k in ("Project", "Subject", "Session")) == expected


def test_assignment_extraction_agrees_with_the_reference_pattern():
    reference = re.compile(r"(?:\A|(?:.*[\s,;]))Project\s*\:\s*([\w\-]*)(?:(?:[\s,;].*\Z)|\Z)",
                           re.IGNORECASE | re.DOTALL | re.ASCII)
    rng = random.Random(5)
    pieces = ["Project", "project", ":", " ", ";", ",", "\n", "x", "-", ".", "\t"]
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        m = reference.fullmatch(text)
        assert extract_assignment(text, "Project") == ((m.group(1) or None) if m else None), text


def test_aa_values():
    assert [parse_auto_archive(v) for v in ("t", "TRUE", "f", "False", "yes", "", None, "truex")] == [
        True, True, False, False, None, None, None, None]
    assert route(ds(PatientComments="AA:maybe", StudyComments="AA:t")).auto_archive is True


def test_labels_are_sanitised():
    assert label_sanitize("a/b\\c d.e") == "a_b_c_d_e"
    assert label_sanitize("..") == "__"
    assert label_sanitize("x" * 100) == "x" * 100  # never silently cut: intake refuses it
    assert label_sanitize("  ") is None
    r = route(ds(PatientName="../../etc", PatientID="..\x00/"), {"EXPT_LABEL": None})
    assert r.subject == "______etc" and r.session == "____"
    assert route(ds(), {"SUBJECT_ID": "a/../b"}).subject == "a____b"


def test_hostile_values_are_fast_and_safe():
    calls: list[str] = []

    def counting(value: str) -> str | None:
        calls.append(value)
        return None

    long_comment = (" " * 9990) + "Project:"
    d = ds(PatientComments=long_comment, StudyComments=",a" * 5000, AdditionalPatientHistory="Session:" + "s" * 9000,
           StudyDescription="x" * 10000, StudyID="1", PatientName="A" * 64, PatientID="/" * 64, AccessionNumber="ACC\x00")
    start = time.perf_counter()
    for _ in range(20):
        r = route_dataset(dataset=d, params={}, receiver=None, resolve_project=counting)
    assert time.perf_counter() - start < 1.0
    assert r.project is None and calls == []  # 10,000 characters and NULs are never looked up
    assert r.session == "s" * 4096 and r.subject == "A" * 64


def test_routing_tags_cover_every_header_routing_reads():
    assert set(ROUTING_TAGS) == {0x00104000, 0x00324000, 0x001021B0, 0x00081030, 0x00100010, 0x00100020,
                                 0x00080050}
