"""Series import filters (reference/xnat.md §6): pure logic, no database, no Django."""
from __future__ import annotations

import json
import time

import pytest
from pydicom.dataset import Dataset

from anonymization.filters import (
    FilterConfig,
    FilterError,
    SeriesFilter,
    filter_from_json,
    filter_parse,
    filter_to_json,
    java_regex_to_python,
    js_escape,
)
from anonymization.jsengine import JsSandbox, check_syntax

# The three examples of filter-definitions.properties, verbatim (reference §6).
BLACKLIST_JSON = '{"mode":"blacklist","list":"^.*Sheet.*$\\n^.*Scanned.*$"}'
WHITELIST_JSON = '{"mode":"whitelist","list":"[BurnedInAnnotation]\\n!EXISTS"}'
MODALITY_MAP_JSON = (
    '{"mode":"modalityMap","exclude":"/^yes$/i.test(\'#BurnedInAnnotation#\')",\n'
    ' "PT":"\'#Modality#\' == \'PT\' || (\'#Modality#\' == \'MR\' && \'#SeriesDescription#\' == \'PET Data\')",\n'
    ' "MR":"\'#Modality#\' != \'PT\' && !(\'#Modality#\' == \'MR\' && \'#SeriesDescription#\' == \'PET Data\')"}'
)


def ds(**tags) -> Dataset:
    d = Dataset()
    for keyword, value in tags.items():
        setattr(d, keyword, value)
    return d


@pytest.fixture
def closing():
    made: list[SeriesFilter] = []

    def parse(**kwargs) -> SeriesFilter:
        f = filter_parse(**kwargs)
        made.append(f)
        return f

    yield parse
    for f in made:
        f.close()


# ---------------------------------------------------------------------- regex lists


def test_blacklist_is_case_insensitive_like_the_seed():
    f = filter_parse(mode="blacklist", text="SAG LOCALIZER")
    rejected = f.evaluate(ds(SeriesDescription="Sag Localizer"))
    assert not rejected.accepted
    assert rejected.reason == "blacklist line 1 matched SeriesDescription (0008,103E)"
    assert f.evaluate(ds(SeriesDescription="T1 MPRAGE")).accepted


def test_patterns_match_substrings_unless_anchored():
    f = filter_parse(mode="blacklist", text="LOCAL\n^T2$")
    assert not f.evaluate(ds(SeriesDescription="3-plane localizer")).accepted
    assert f.evaluate(ds(SeriesDescription="T2 FLAIR")).accepted
    assert not f.evaluate(ds(SeriesDescription="t2")).accepted


def test_whitelist_accepts_only_matches_and_absent_header_never_matches_a_regex():
    f = filter_parse(mode="whitelist", text="MPRAGE\nBOLD")
    assert f.evaluate(ds(SeriesDescription="ax bold run1")).accepted
    decision = f.evaluate(ds(SeriesDescription="Screen Save"))
    assert not decision.accepted and decision.reason == "whitelist: no pattern matched"
    assert not f.evaluate(ds(Modality="MR")).accepted


def test_reference_blacklist_json_example():
    config = filter_from_json(BLACKLIST_JSON)
    assert config == FilterConfig(mode="blacklist", text="^.*Sheet.*$\n^.*Scanned.*$", enabled=True)
    f = filter_parse(mode=config.mode, text=config.text)
    assert not f.evaluate(ds(SeriesDescription="Dose sheet")).accepted
    assert not f.evaluate(ds(SeriesDescription="scanned document")).accepted
    assert f.evaluate(ds(SeriesDescription="T1")).accepted


def test_burned_in_annotation_not_exists_whitelist_from_reference():
    config = filter_from_json(WHITELIST_JSON)
    f = filter_parse(mode=config.mode, text=config.text)
    assert f.header_tags == frozenset({0x00280301})
    assert f.evaluate(ds(SeriesDescription="T1")).accepted
    decision = f.evaluate(ds(SeriesDescription="T1", BurnedInAnnotation="NO"))
    assert not decision.accepted


def test_exists_matches_a_present_even_empty_header():
    f = filter_parse(mode="blacklist", text="[0028,0301]\nEXISTS")
    assert not f.evaluate(ds(BurnedInAnnotation="")).accepted
    assert not f.evaluate(ds(BurnedInAnnotation="YES")).accepted
    assert f.evaluate(ds(SeriesDescription="x")).accepted


def test_header_lines_switch_the_tag_in_all_three_spellings():
    f = filter_parse(mode="blacklist", text="[(0008,0060)]\n^sr$\n[0008,0070]\nacme\n[ImageType]\nSECONDARY")
    assert f.header_tags == frozenset({0x00080060, 0x00080070, 0x00080008})
    assert not f.evaluate(ds(Modality="SR")).accepted
    assert not f.evaluate(ds(Manufacturer="ACME Corp")).accepted
    assert not f.evaluate(ds(ImageType=["DERIVED", "SECONDARY"])).accepted
    assert f.evaluate(ds(Modality="MR", SeriesDescription="SR", ImageType=["ORIGINAL", "PRIMARY"])).accepted


def test_comments_blank_lines_and_literal_backslash_n_are_handled():
    f = filter_parse(mode="blacklist", text="  # a comment SCOUT\n\n   \\nlocalizer  \\n#scout")
    assert [r.line for r in f.rules] == [4]
    assert f.evaluate(ds(SeriesDescription="SCOUT")).accepted
    assert not f.evaluate(ds(SeriesDescription="Localizer")).accepted


def test_empty_lists_follow_xnat():
    assert filter_parse(mode="blacklist", text="").evaluate(ds(SeriesDescription="x")).accepted
    assert not filter_parse(mode="whitelist", text="# nothing").evaluate(ds(SeriesDescription="x")).accepted


def test_invalid_patterns_are_all_named_with_line_numbers():
    with pytest.raises(FilterError) as err:
        filter_parse(mode="whitelist", text="ok\n# fine\n[unclosed\n(a\n[NoSuchKeyword]")
    message = str(err.value)
    assert message.startswith("The series import filter contains the following invalid pattern(s): ")
    assert "line 3: [unclosed (unterminated character set at position 0)" in message
    assert "line 4: (a (missing ), unterminated subpattern at position 0)" in message
    assert "line 5: [NoSuchKeyword] (not a DICOM tag or keyword)" in message


def test_unknown_mode_is_an_error():
    with pytest.raises(FilterError, match="Unknown series import filter mode"):
        filter_parse(mode="greylist", text="")


def test_java_only_constructs_are_translated():
    assert java_regex_to_python(r"\p{Alpha}+\d") == r"[a-zA-Z]+\d"
    assert java_regex_to_python(r"[\p{Digit}x]") == r"[0-9x]"
    assert java_regex_to_python(r"\Qa.b\E") == r"a\.b"
    f = filter_parse(mode="blacklist", text=r"(?<p>ab)\k<p>" + "\n" + r"^\p{Upper}{3}\z")
    assert not f.evaluate(ds(SeriesDescription="xABab")).accepted
    assert not f.evaluate(ds(SeriesDescription="ABC")).accepted
    assert f.evaluate(ds(SeriesDescription="ABCD")).accepted


def test_java_case_insensitivity_and_word_class_are_ascii():
    f = filter_parse(mode="blacklist", text=r"^\w+$")
    assert not f.evaluate(ds(SeriesDescription="abc_1")).accepted
    assert f.evaluate(ds(SeriesDescription="café")).accepted


def test_evaluation_uses_precompiled_patterns_and_is_fast():
    f = filter_parse(mode="blacklist", text="\n".join(f"^series{i}$" for i in range(50)))
    d = ds(SeriesDescription="T1 MPRAGE")
    start = time.perf_counter()
    for _ in range(2000):
        assert f.evaluate(d).accepted
    assert time.perf_counter() - start < 2.0


def test_reasons_do_not_contain_header_values():
    f = filter_parse(mode="blacklist", text="[PatientName]\nDOE")
    decision = f.evaluate(ds(PatientName="DOE^JOHN"))
    assert not decision.accepted and "DOE" not in decision.reason and "JOHN" not in decision.reason


# ---------------------------------------------------------------------- modality map


def test_reference_modality_map_example(closing):
    config = filter_from_json(MODALITY_MAP_JSON)
    assert config.mode == "modalityMap"
    f = closing(mode=config.mode, text=config.text)
    assert f.header_tags == frozenset({0x00280301, 0x00080060, 0x0008103E})
    pet = f.evaluate(ds(Modality="PT", SeriesDescription="AC CT"))
    assert (pet.accepted, pet.modality) == (True, "PT")
    assert f.evaluate(ds(Modality="MR", SeriesDescription="PET Data")).modality == "PT"
    assert f.evaluate(ds(Modality="MR", SeriesDescription="T1")).modality == "MR"
    excluded = f.evaluate(ds(Modality="MR", SeriesDescription="T1", BurnedInAnnotation="YES"))
    assert not excluded.accepted and excluded.modality is None
    assert excluded.reason == "modality map line 1: exclude is true"
    assert f.evaluate(ds(Modality="MR", BurnedInAnnotation="NO")).accepted


def test_modality_map_default_and_fallback(closing):
    f = closing(mode="modalityMap", text="CT: '#Modality#' == 'CT'\ndefault: OT")
    assert f.find_modality(ds(Modality="CT")) == "CT"
    assert f.find_modality(ds(Modality="US")) == "OT"
    g = closing(mode="modalityMap", text="CT: '#Modality#' == 'CT'")
    assert g.find_modality(ds(Modality="US")) == "MR"


def test_strict_mode_refuses_missing_headers(closing):
    text = "PT: '#Modality#' == 'PT' && '#SeriesDescription#' != ''"
    lax = closing(mode="modalityMap", text=text)
    assert lax.evaluate(ds(Modality="PT")).modality == "MR"
    strict = closing(mode="modalityMap", text="strict: true\n" + text)
    decision = strict.evaluate(ds(Modality="PT"))
    assert not decision.accepted
    assert "SeriesDescription (0008,103E) is missing" in decision.reason
    assert strict.evaluate(ds(Modality="PT", SeriesDescription="x")).modality == "PT"


def test_disabled_map_accepts_everything(closing):
    f = closing(mode="modalityMap", text="enabled: false\nexclude: true")
    assert f.evaluate(ds(Modality="MR")).accepted


def test_non_boolean_result_is_a_refusal(closing):
    f = closing(mode="modalityMap", text="PT: '#Modality#'")
    decision = f.evaluate(ds(Modality="PT"))
    assert not decision.accepted
    assert decision.reason == "modality map line 1 (PT): the expression did not return a boolean"


def test_runaway_loop_is_cut_off_quickly_and_the_next_file_still_works(closing):
    f = closing(mode="modalityMap", text="exclude: '#Modality#' == 'US'\nPT: (function(){while(true){}})()")
    start = time.perf_counter()
    decision = f.evaluate(ds(Modality="PT"))
    assert time.perf_counter() - start < 1.5
    assert not decision.accepted and "ran out of time" in decision.reason
    assert not f.evaluate(ds(Modality="US")).accepted  # exclude runs before the loop
    assert f.evaluate(ds(Modality="US")).reason == "modality map line 1: exclude is true"


def test_catastrophic_regex_backtracking_cannot_hang(closing):
    # QuickJS's regex engine ignores its time limit: only the killable child process stops this.
    f = closing(mode="modalityMap", text="PT: /^(a+)+$/.test('#SeriesDescription#')\nMR: true")
    start = time.perf_counter()
    decision = f.evaluate(ds(SeriesDescription="a" * 40 + "b"))
    assert time.perf_counter() - start < 3.0
    assert not decision.accepted and "ran out of time" in decision.reason
    assert f.evaluate(ds(SeriesDescription="aaa")).modality == "PT"  # a fresh child took over


def test_doubling_string_bomb_hits_the_heap_limit(closing):
    f = closing(mode="modalityMap", text="PT: (function(){var s='#Modality#';for(;;){s=s+s+'.'}})()\nMR: true")
    start = time.perf_counter()
    decision = f.evaluate(ds(Modality="PT"))
    assert time.perf_counter() - start < 3.0
    assert not decision.accepted
    assert decision.reason == "modality map line 1 (PT): the expression ran out of memory"


def test_array_growth_bomb_is_refused(closing):
    f = closing(mode="modalityMap",
                text="PT: (function(){var a=[];for(;;){a.push('#Modality#'.repeat(1000)+a.length)}})()")
    start = time.perf_counter()
    decision = f.evaluate(ds(Modality="PT"))
    assert time.perf_counter() - start < 3.0
    assert not decision.accepted
    assert "ran out of memory" in decision.reason or "ran out of time" in decision.reason


def test_values_cannot_break_out_of_quotes(closing):
    f = closing(mode="modalityMap", text="PT: '#SeriesDescription#' == 'PET'")
    hostile = "x' || true || '"
    assert f.evaluate(ds(SeriesDescription=hostile)).modality == "MR"
    loop = "'; while(true){} '"
    start = time.perf_counter()
    assert f.evaluate(ds(SeriesDescription=loop)).modality == "MR"
    assert time.perf_counter() - start < 0.5
    g = closing(mode="modalityMap", text="PT: '#SeriesDescription#' == \"a'b\\\\c/\"")
    assert g.evaluate(ds(SeriesDescription="a'b\\c/")).modality == "PT"


def test_state_does_not_leak_between_files(closing):
    f = closing(mode="modalityMap",
                text="PT: typeof globalThis.seen !== 'undefined'\nMR: (globalThis.seen = 1) === 1")
    assert f.find_modality(ds(Modality="MR")) == "MR"
    assert f.find_modality(ds(Modality="MR")) == "MR"


def test_sandbox_has_no_io():
    sandbox = JsSandbox()
    try:
        results = sandbox.evaluate(["typeof require === 'undefined' && typeof std === 'undefined' && "
                                    "typeof os === 'undefined' && typeof fetch === 'undefined'"])
    finally:
        sandbox.close()
    assert [r.status for r in results] == ["true"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("PT '#Modality#' == 'PT'", "line 1: expected KEY: expression"),
        ("PT: '#Modality#' ==", "line 1: PT: SyntaxError"),
        ("PT: '#NotAKeyword#' == 'x'", "line 1: unknown DICOM keyword(s) NotAKeyword"),
        ("strict: maybe", "line 1: strict must be true or false"),
        ("mode: whitelist", "line 1: mode must be modalityMap"),
        ("PT: true\nPT: false", "line 2: PT is defined twice"),
        ("PT:", "line 1: PT has no expression"),
    ],
)
def test_modality_map_syntax_errors(text, fragment):
    with pytest.raises(FilterError) as err:
        filter_parse(mode="modalityMap", text=text)
    assert str(err.value).startswith("The modality map contains the following error(s): ")
    assert fragment in str(err.value)


def test_check_syntax_does_not_run_the_expression():
    assert check_syntax("(function(){while(true){}})()") is None
    assert check_syntax("1 ===") is not None


def test_js_escape_keeps_meaning_but_not_code():
    assert js_escape("abc 1.2") == "abc 1.2"
    assert js_escape("a'b") == "a\\u0027b"
    assert js_escape("\\`$/\n") == "\\u005c\\u0060\\u0024\\u002f\\u000a"


# ---------------------------------------------------------------------- stored JSON


def test_json_round_trip_for_lists():
    stored = filter_to_json("whitelist", "[BurnedInAnnotation]\n!EXISTS", True, project_id="P1")
    assert json.loads(stored) == {"mode": "whitelist", "enabled": "true", "projectId": "P1",
                                  "list": "[BurnedInAnnotation]\n!EXISTS"}
    assert filter_from_json(stored) == FilterConfig("whitelist", "[BurnedInAnnotation]\n!EXISTS", True, "P1")


def test_json_round_trip_for_modality_map():
    config = filter_from_json(MODALITY_MAP_JSON)
    stored = json.loads(filter_to_json(config.mode, config.text, False))
    original = json.loads(MODALITY_MAP_JSON)
    assert stored == {**original, "enabled": "false"}
    assert list(stored)[2:] == ["exclude", "PT", "MR"]


def test_empty_or_bad_json():
    assert filter_from_json("") == FilterConfig("blacklist", "", True)
    assert filter_from_json(None) == FilterConfig("blacklist", "", True)
    assert filter_from_json('{"mode":"blacklist","list":"x","enabled":false}').enabled is False
    with pytest.raises(FilterError):
        filter_from_json("{not json")
    with pytest.raises(FilterError):
        filter_from_json('{"mode":"nope"}')
