"""Scripts cannot take unbounded memory or time (issue 16 items 6 and 8; item 10's deep nesting is in
test_errors and test_admin_scripts)."""
from __future__ import annotations

import resource
import time

import pytest
from pydicom.dataset import Dataset

from anonymization.dicomedit import DicomEditRuntimeError, RunContext, parse
from anonymization.dicomedit.limits import MAX_VALUE_CHARS


def _ds() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "a" * 41
    return ds


def _fails(script: str, run: RunContext | None = None) -> DicomEditRuntimeError:
    ds = _ds()
    with pytest.raises(DicomEditRuntimeError) as excinfo:
        parse(script).apply(ds, variables={}, run=run or RunContext())
    return excinfo.value


def test_doubling_concatenate_fails_at_its_line_without_the_memory() -> None:
    """Issue 16 item 6: a project owner's 25-line ``a := concatenate[a, a]`` took a worker to 1.6 GB."""
    script = 'version "6.1"\na := "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"\n' + \
        "a := concatenate[a, a]\n" * 25 + "(0010,4000) := a\n"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = _fails(script)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # 64 characters doubled: line 2 + 15 doublings = 2 Mi characters, over the 1 Mi limit
    assert err.line == 2 + 15
    assert "longer than the limit of 1,048,576 characters" in str(err)
    assert grown_kb < 64 * 1024


@pytest.mark.parametrize("expression", [
    'replace[big, "", big]',
    'format["{0}{0}{0}", big]',
    "concatenate[big, big]",
    "{big, big}",
])
def test_every_growing_function_is_capped(expression: str) -> None:
    script = (f'version "6.6"\nx := "{"y" * 1100}"\n' + "x := concatenate[x, x]\n" * 9  # 563,200 chars
              + f"big := x\nbig2 := {expression}\n")
    err = _fails(script)
    assert err.line == 13 and "limit of" in str(err)


def test_variables_together_are_capped() -> None:
    script = (f'version "6.6"\nx := "{"y" * 1000}"\n' + "x := concatenate[x, x]\n" * 9
              + "".join(f"v{i} := concatenate[x, \"{i}\"]\n" for i in range(20)))
    err = _fails(script)
    assert "variables would hold more than" in str(err)
    # x (512,000 characters) and 15 copies of it fit in 8 Mi, the 16th does not
    assert err.line == 2 + 9 + 16


def test_nested_list_doubling_is_capped() -> None:
    script = 'version "6.6"\nl := {"a"}\n' + "l := {l, l}\n" * 40
    err = _fails(script)
    assert "list would hold more than the limit of 100,000 values" in str(err)
    assert err.line == 2 + 17  # 2**17 values


def test_values_below_the_limit_work() -> None:
    ds = _ds()
    parse('version "6.1"\na := "0123456789"\n' + "a := concatenate[a, a]\n" * 16 + "(0010,4000) := a\n").apply(
        ds, variables={}, run=RunContext())
    assert len(ds.PatientComments) == 10 * 2 ** 16 <= MAX_VALUE_CHARS


@pytest.mark.parametrize("script", [
    'version "6.1"\n(0010,0020) ~ "^(a|aa)+$" ? (0010,0010) := "MATCH"\n',
    'version "6.1"\n(0010,0010) := ismatch[(0010,0020), "^(a|aa)+$"]\n',
    'version "6.1"\n(0010,0010) := match[(0010,0020), "(a|aa)+$", 0]\n',
    'version "6.1"\nrx := "^(a|aa)+$"\n(0010,0020) !~ rx ? (0010,0010) := "NO"\n',
])
def test_backtracking_regex_is_stopped_by_the_time_limit(script: str) -> None:
    """Issue 16 item 8: a backtracking regex on a 41-character value (``^(a+)+$`` is answered at once by
    the regex engine; ``^(a|aa)+$`` really backtracks and must be stopped)."""
    ds = _ds()
    ds.PatientID = "a" * 60 + "!"
    started = time.monotonic()
    with pytest.raises(DicomEditRuntimeError) as excinfo:
        parse(script).apply(ds, variables={}, run=RunContext(time_limit=1.0))
    elapsed = time.monotonic() - started
    assert "time limit ran out in a regular expression" in str(excinfo.value)
    assert excinfo.value.line == script.count("\n")
    assert elapsed < 15  # 2**60 steps otherwise
    assert ds.PatientName == "Doe^Jane"


def test_nested_plus_regex_of_the_issue_answers_at_once() -> None:
    ds = _ds()
    started = time.monotonic()
    parse('version "6.1"\n(0010,0020) ~ "^(a+)+$" ? (0010,0010) := "A" : (0010,0010) := "B"\n').apply(
        ds, variables={}, run=RunContext(time_limit=1.0))
    assert ds.PatientName == "A" and time.monotonic() - started < 1
    ds.PatientID = "a" * 41 + "!"
    parse('version "6.1"\n(0010,0020) ~ "^(a+)+$" ? (0010,0010) := "A" : (0010,0010) := "B"\n').apply(
        ds, variables={}, run=RunContext(time_limit=1.0))
    assert ds.PatientName == "B" and time.monotonic() - started < 1


def test_time_limit_is_checked_between_statements() -> None:
    script = 'version "6.1"\n' + '(0010,4000) := "x"\n' * 10
    ds = _ds()
    with pytest.raises(DicomEditRuntimeError) as excinfo:
        parse(script).apply(ds, variables={}, run=RunContext(time_limit=-1))
    assert "time limit ran out" in str(excinfo.value) and excinfo.value.line == 1
