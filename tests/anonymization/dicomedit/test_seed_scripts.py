"""The seeds' own scripts are accepted and do what the seeds say (issue 14 item 1, engine side)."""
from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from anonymization.dicomedit import RunContext, parse
from anonymization.dicomedit.interpreter import InputVariable
from anonymization.services import script_validate

# Seed 004, "Now let's save the script in XNAT" (verbatim).
SEED_004 = """(0008,1030) := project
(0010,0010) := subject
(0010,0020) := session
session := makeSessionLabel[format["{0}_v##_{1}", subject, lowercase[modalityLabel]]]
"""
# Seed 002: "the following project anonymization script ... will create a custom field".
SEED_002 = "(0008,1030) := my_var\n"


def _ds() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID0001"
    ds.StudyDescription = "Brain"
    ds.Modality = "MR"
    return ds


XNAT = {"project": "P1", "subject": "111", "session": "111_MR1", "modalityLabel": "MR"}


@pytest.mark.django_db
def test_seed_004_script_is_saved_and_computes_the_visit_label() -> None:
    script_validate(text=SEED_004)  # raised "4:12: unknown function 'makeSessionLabel'" before
    script = parse(SEED_004)
    assert script.input_names == []  # everything it reads is an XNAT variable
    ds = _ds()
    script.apply(ds, variables=XNAT, run=RunContext())
    # the server-side effect: the three labels; the last line only sets the session variable
    assert (ds.StudyDescription, str(ds.PatientName), ds.PatientID) == ("P1", "111", "111_MR1")
    # the label it computes: v## is the first visit number free in the project (gaps first)
    label = parse('(0008,103E) := makeSessionLabel[format["{0}_v##_{1}", subject, lowercase[modalityLabel]]]')
    for taken, expected in (((), "111_v00_mr"), (("111_v00_mr",), "111_v01_mr"),
                            (("111_v00_mr", "111_v02_mr"), "111_v01_mr"), (("111_v00_ct",), "111_v00_mr")):
        out = _ds()
        label.apply(out, variables=XNAT, run=RunContext(session_labels=taken), record=False)
        assert out.SeriesDescription == expected, taken


def test_session_variable_is_set_by_make_session_label_for_later_statements() -> None:
    script = parse(SEED_004 + "(0008,103E) := session\n")
    ds = _ds()
    script.apply(ds, variables=XNAT, run=RunContext(session_labels=["111_v00_mr"]))
    assert ds.SeriesDescription == "111_v01_mr" and ds.PatientID == "111_MR1"


@pytest.mark.django_db
def test_seed_002_unknown_variable_is_an_input_the_uploader_asks_for() -> None:
    script_validate(text=SEED_002)  # raised "1:16: unknown variable 'my_var'" before
    script = parse(SEED_002)
    assert script.inputs == [InputVariable("my_var", "my_var", False)]
    given = _ds()
    script.apply(given, variables={**XNAT, "my_var": "typed by the user"}, run=RunContext())
    assert given.StudyDescription == "typed by the user"
    unset = _ds()  # an input nobody gave reads as null: the element is kept, empty (assignToNull)
    script.apply(unset, variables=XNAT, run=RunContext())
    assert 0x00081030 in unset and unset.StudyDescription == ""


def test_inputs_list_described_and_unset_variables_in_script_order_once() -> None:
    script = parse('version "6.1"\ndescribe studyDesc "Study description"\ndescribe token hidden\n'
                   "(0008,1030) := concatenate[studyDesc, other]\n(0008,103E) := other\n"
                   'later := "x"\n(0010,4000) := later\n')
    assert script.inputs == [InputVariable("studyDesc", "Study description", False),
                             InputVariable("token", "token", True), InputVariable("other", "other", False)]


def test_seed_000_visit_is_a_known_variable() -> None:
    script = parse('version "6.1"\n(0008,1030) := visit\n')
    assert script.input_names == []
    ds = _ds()
    script.apply(ds, variables={**XNAT, "visit": "V2"}, run=RunContext())
    assert ds.StudyDescription == "V2"
