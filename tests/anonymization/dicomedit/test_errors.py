"""Bad scripts: each gives one located, readable error, exactly "LINE:COL: message"."""
from __future__ import annotations

import pytest

from anonymization.dicomedit import DicomEditSyntaxError, parse

BAD_SCRIPTS = [
    ('unterminated_string', 'version "6.6"\n(0008,1030) := "abc', '2:16: unterminated string'),
    ('unterminated_string_eof_continuation', 'version "6.6"\n(0008,1030) := "abc\\', '2:16: unterminated string'),
    ('bad_tag_short', 'version "6.6"\n(0008,103) := "x"', '2:1: malformed tag: expected (gggg,eeee) or (gggg,{creator}ee)'),
    ('bad_tag_nonhex', 'version "6.6"\n(0008,10G0) := "x"', '2:1: malformed tag: expected (gggg,eeee) or (gggg,{creator}ee)'),
    ('creator_on_even_group', 'version "6.6"\n-(0028,{ACME}10)', '2:2: tag (0028,{ACME}10) has a private creator but an even (public) group'),
    ('creator_bad_charset', 'version "6.6"\n-(0029,{1ACME}10)', "2:2: malformed private creator '1ACME'"),
    ('private_element_3_digits', 'version "6.6"\n-(0029,{ACME}101)', '2:2: malformed private tag: expected 2 hex digits after the creator'),
    ('unknown_function', 'version "6.6"\n(0008,1030) := frobnicate["x"]', "2:16: unknown function 'frobnicate'"),
    ('unknown_function_de4_only_name', 'version "6.6"\n(0008,1030) := urlEncode["x"]', "2:16: unknown function 'urlEncode'"),
    ('mapUID_arity', 'version "6.6"\n(0020,000D) := mapUID[(0020,000D)]', '2:16: mapUID takes 2 arguments, got 1'),
    ('mapUID_bad_prefix', 'version "6.6"\n(0020,000D) := mapUID[(0020,000D), "1.2.x"]', "2:36: mapUID: '1.2.x' is not a UID root (digits separated by dots, at most 62 characters)"),
    ('mapUID_leading_zero_prefix', 'version "6.6"\n(0020,000D) := mapUID[(0020,000D), "1.02"]', "2:36: mapUID: '1.02' is not a UID root (digits separated by dots, at most 62 characters)"),
    ('mapUID_list', 'version "6.6"\n(0020,000D) := mapUID[{(0020,000D)}, "1.2"]', '2:23: mapUID does not take a list'),
    ('lookup_arity', 'version "6.6"\n(0008,1030) := lookup["pn"]', '2:16: lookup takes 2 arguments, got 1'),
    ('lookup_bad_table', 'version "6.6"\n(0010,0010) := lookup["pn/x", (0010,0010)]', "2:23: lookup: 'pn/x' can never name a lookup table (empty, surrounding spaces, '/' or '=')"),
    ('lookup_bad_key', 'version "6.6"\n(0010,0010) := lookup["pn", "a=b"]', "2:29: lookup: a key with '/' or '=' can never be in a lookup table"),
    ('scale_takes_no_args', 'version "6.6"\nscalePatientAgeAndDobFromStudyDate["x"]', '2:1: scalePatientAgeAndDobFromStudyDate takes no arguments, got 1'),
    ('scale_not_de4', 'scalePatientAgeAndDobFromStudyDate[]', "1:1: unknown function 'scalePatientAgeAndDobFromStudyDate'"),
    ('wildcard_as_value', 'version "6.6"\n(0008,1030) := (0018,901X)', '2:16: tag path (0018,901X) matches multiple tags and cannot be used as a value'),
    ('level_wildcard_as_value', 'version "6.6"\n(0008,1030) := */(0010,0020)', '2:16: tag path */(0010,0020) matches multiple tags and cannot be used as a value'),
    ('item_wildcard_as_value', 'version "6.6"\n(0008,1030) := (0008,1115)[%]/(0008,1155)', '2:16: tag path (0008,1115)[%]/(0008,1155) matches multiple tags and cannot be used as a value'),
    ('too_many_args', 'version "6.6"\n(0008,1030) := lowercase["a", "b"]', '2:16: lowercase takes 1 argument, got 2'),
    ('too_few_args', 'version "6.6"\n(0008,1030) := substring["abc", 1]', '2:16: substring takes 3 arguments, got 2'),
    ('args_to_nullary', 'version "6.6"\n(0008,0018) := newUID["x"]', '2:16: newUID takes no arguments, got 1'),
    ('unknown_version', 'version "6.8"\n(0008,1030) := "x"', '1:9: unsupported version "6.8"'),
    ('version_capital_unquoted', 'Version 6.3\n(0008,1030) := "x"', "1:9: unexpected number 6.3: expected ':=', '[' or a condition operator"),
    ('version_not_string', 'version 6.3\n(0008,1030) := "x"', '1:9: unexpected number 6.3: expected a version string'),
    ('missing_value', 'version "6.6"\n(0008,1030) :=', '2:15: unexpected end of script: expected a value'),
    ('missing_operator', 'version "6.6"\n(0008,1030) "x"', '2:13: unexpected string: expected a condition operator (=, !=, ~, !~)'),
    ('bad_character', 'version "6.6"\n(0008,1030) := "x" ;', "2:20: unexpected character ';'"),
    ('bang_alone', 'version "6.6"\n(0008,1030) ! "x" ? -(0010,0010)', "2:13: unexpected character '!': expected '!=' or '!~'"),
    ('ternary_without_action', 'version "6.6"\n(0008,0060) = "MR" ?', '2:21: unexpected end of script: expected an action'),
    ('unclosed_bracket', 'version "6.6"\n(0008,1030) := lowercase["x"', "2:29: unexpected end of script: expected ',' or ']'"),
    ('unclosed_if_block', 'version "6.6"\nif ((0008,0060) = "MR") {\n(0008,1030) := "x"\n', "4:1: unexpected end of script: expected '}'"),
    ('if_without_paren', 'version "6.6"\nif (0008,0060) = "MR" {\n}', "2:4: unexpected tag (0008,0060): expected '('"),
    ('two_statements_one_line', 'version "6.6"\n(0008,1030) := "x" (0008,103E) := "y"', '2:20: unexpected tag (0008,103E): expected end of line'),
    ('de4_not_equals', '(0008,0060) != "MR" : (0008,1030) := "x"', "1:13: operator '!=' is not available in DicomEdit 4.2"),
    ('de4_question_ternary', '(0008,0060) = "MR" ? (0008,1030) := "x"', "1:20: unexpected '?': expected ':' and an action"),
    ('de4_creator_syntax', '-(0029,{ACME}10)', '1:2: private creator names in tags are DicomEdit 6 only'),
    ('de4_sequence_path', '-(0008,1115)[0]/(0008,1155)', '1:2: sequence paths are not available in DicomEdit 4.2'),
    ('de4_remove_all_private', 'removeAllPrivateTags', '1:1: removeAllPrivateTags is not available in DicomEdit 4.2'),
    ('bad_regex', 'version "6.6"\n(0008,0060) ~ "([a-z" ? -(0010,0010)', '2:15: invalid regular expression: unterminated character set'),
    ('bad_format_pattern', 'version "6.6"\n(0008,1030) := format["{0", "x"]', '2:23: invalid format pattern: Unmatched braces in the pattern.'),
    ('bad_tagpath_string', 'version "6.6"\ndelete["(0008,10)"]', '2:8: bad tag path in string: malformed tag: expected (gggg,eeee) or (gggg,{creator}ee)'),
    ('retain_public_tag', 'version "6.6"\nretainPrivateTags["(0008,0060)"]', '2:19: retainPrivateTags accepts private tags only, not (0008,0060)'),
    ('assign_to_item', 'version "6.6"\n(0008,1115)[0] := "x"', '2:1: cannot assign a value to a sequence item'),
    ('keyword_as_variable', 'version "6.6"\ndescribe if "x"', "2:10: 'if' is a keyword, not a variable name"),
    ('bad_item_index', 'version "6.6"\n-(0008,1115)[x]/(0008,1155)', "2:14: unexpected 'x': expected an item number or '%'"),
    ('path_ends_with_wildcard', 'version "6.6"\n-(0008,1115)/*', '2:2: a tag path must end with a tag'),
    ('list_unclosed', 'version "6.6"\nl := {"a", "b"\n(0008,1030) := "x"', "3:1: unexpected tag (0008,1030): expected ',' or '}'"),
    ('nested_too_deeply', 'version "6.6"\n(0008,1030) := ' + 'lowercase[' * 65 + '"x"' + ']' * 65,
     '2:656: nested too deeply (more than 64 levels)'),
    ('lists_nested_too_deeply', 'version "6.6"\nl := ' + '{' * 65 + '"x"' + '}' * 65,
     '2:70: nested too deeply (more than 64 levels)'),
    ('tag_path_too_deep', 'version "6.6"\n-' + '(0008,1115)/' * 64 + '(0008,1155)',
     '2:2: tag path nested too deeply (more than 64 levels)'),
    ('script_too_long', 'version "6.6"\n' + '//' + 'x' * (1024 * 1024), '1:1: script is longer than the limit of 1,048,576 characters'),
    ('stray_backslash', 'version "6.6"\n(0008,1030) := \\ "x"', "2:16: unexpected character '\\'"),
]


@pytest.mark.parametrize(("name", "script", "message"), BAD_SCRIPTS, ids=[b[0] for b in BAD_SCRIPTS])
def test_bad_script_error(name: str, script: str, message: str) -> None:
    with pytest.raises(DicomEditSyntaxError) as excinfo:
        parse(script)
    err = excinfo.value
    assert str(err) == message
    line, column, text = message.split(":", 2)
    assert (err.line, err.column, err.message) == (int(line), int(column), text.strip())


def test_at_least_twenty_kinds() -> None:
    assert len({m.split(": ", 1)[1].split("'")[0] for _, _, m in BAD_SCRIPTS}) >= 20


def test_extra_variables_are_declared_by_the_caller() -> None:
    assert parse('version "6.1"\n(0008,1030) := study_var').input_names == ["study_var"]
    assert parse('version "6.1"\n(0008,1030) := study_var', variables=["study_var"]).input_names == []
