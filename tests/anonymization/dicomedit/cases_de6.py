"""Conformance table for DicomEdit 6: script, input tags (over helpers.BASE), expected tags.

Expected values marked ✓ are NRG's own expected values (xnat-rest-tests / reference §6-§9).
"""
from __future__ import annotations

from .helpers import ABSENT

V = 'version "6.6"\n'

CASES: list[dict] = [
    # ---- statements -------------------------------------------------------------------------
    dict(name="assign_creates_and_replaces", script=V + '(0008,1030) := "NEW"\n(0010,2297) := "Person"',
         expect={"(0008,1030)": "NEW", "(0010,2297)": "Person"}),
    dict(name="assign_empty_keeps_element", script=V + '(0010,1010) := ""', expect={"(0010,1010)": ""}),
    dict(name="assign_multivalue_backslash", script=V + '(0018,0022) := "1\\\\2\\\\3\\\\4"',
         expect={"(0018,0022)": "1\\2\\3\\4"}),  # ✓ standardAssignment
    dict(name="assign_float_reads_back", script=V + '(0018,9087) := "30.0"\n(0008,1040) := (0018,9087)',
         expect={"(0008,1040)": "30"}),  # ✓ assignFloat
    dict(name="assign_last_wins_de6", script=V + '(0008,1040) := "Dept B"\n(0008,1040) := "Dept A"',
         expect={"(0008,1040)": "Dept A"}),  # ✓
    dict(name="assign_absent_source_gives_empty", script=V + '(0010,1005) := (0010,0022)',
         expect={"(0010,1005)": ""}),  # assignToNull (XNAT's intended behaviour, DE-47)
    dict(name="assign_if_exists_present", script=V + '(0008,1090) ?= "REMOVED"', expect={"(0008,1090)": "REMOVED"}),
    dict(name="assign_if_exists_absent", script=V + '(0008,0061) ?= "NOTPRESENT"', expect={"(0008,0061)": ABSENT}),
    dict(name="delete_present_and_absent", script=V + '-(0010,0030)\n- (0010,1000)\n-(0010,0010)',
         expect={"(0010,0030)": ABSENT, "(0010,1000)": ABSENT, "(0010,0010)": ABSENT}),
    dict(name="variable_initialize_and_use",
         script=V + 'mod := (0008,0060)\n(0008,0060) := "CT"\n(0008,1030) := mod',
         expect={"(0008,1030)": "MR", "(0008,0060)": "CT"}),
    dict(name="variable_overwrite", script=V + 'a := "1"\na := "2"\n(0008,1030) := a', expect={"(0008,1030)": "2"}),
    dict(name="number_value_is_its_text", script=V + '(0020,0013) := 42\n(0008,1030) := -1.50',
         expect={"(0020,0013)": "42", "(0008,1030)": "-1.50"}),
    dict(name="describe_declares_variable",
         script=V + 'describe studyDesc "Study description"\ndescribe hid hidden\n'
                    'studyDesc := (0008,1030)\n(0008,103E) := format["{0}-{1}", studyDesc, lowercase[modalityLabel]]',
         vars={"modalityLabel": "MR"}, expect={"(0008,103E)": "Brain Study-mr"}),
    dict(name="describe_only_reads_null", script=V + 'describe x "X"\n(0008,1030) := concatenate[x]',
         expect={"(0008,1030)": "null"}),
    dict(name="export_is_no_dicom_effect", script=V + 'sess := "S1"\nexport sess "xnat:imageSessionData/label"',
         expect={"(0008,1030)": "Brain Study"}),
    dict(name="echo_prints", script=V + 'echo "hello"\necho (0008,0060)\necho (0010,2297)\necho',
         echo=["hello", "MR", "null", ""], expect={}),
    dict(name="version_61_and_610", script='version "6.10"\n(0008,1030) := "X"', expect={"(0008,1030)": "X"}),
    dict(name="version_60", script='version "6.0"\n(0008,1030) := "X"', expect={"(0008,1030)": "X"}),
    dict(name="remove_all_private_tags", script=V + 'removeAllPrivateTags',
         input={"(0018,0026)": ("SQ", [{"(0019,0010)": ("LO", "X"), "(0019,1001)": ("LO", "Y"),
                                        "(0018,0034)": ("LO", "KEEP")}])},
         expect={"(0019,0010)": ABSENT, "(0019,100F)": ABSENT, "(2001,100C)": ABSENT, "(0029,1010)": ABSENT,
                 "(0018,0026)[0]/(0019,1001)": ABSENT, "(0018,0026)[0]/(0018,0034)": "KEEP",
                 "(0010,0010)": "Doe^John"}),
    dict(name="comments_and_blank_lines",
         script='// leading comment\n\nversion "6.1"\n(0008,0100) := "//not a comment" // trailing\n\n',
         expect={"(0008,0100)": "//not a comment"}),  # ✓ commentLike
    dict(name="empty_script_records", script='', expect={"(0012,0064)[0]/(0008,0104)": "XNAT DicomEdit 4 Script"}),
    # ---- conditionals -----------------------------------------------------------------------
    dict(name="ternary_equals_then_else",
         script=V + '(0008,0060) = "MR" ? (0020,1204) := "100" : (0020,1204) := "50"\n'
                    '(0008,0060) = "CT" ? (0020,1206) := "100" : (0020,1206) := "50"',
         expect={"(0020,1204)": "100", "(0020,1206)": "50"}),
    dict(name="ternary_not_equals", script=V + '(0008,0060) != "CT" ? (0008,1030) := "notCT"',
         expect={"(0008,1030)": "notCT"}),
    dict(name="ternary_matches_whole_string",
         script=V + '(0008,0050) ~ "\\\\d{8}" ? (0008,1030) := "whole"\n(0008,0050) ~ "\\\\d{4}" ? (0008,103E) := "partial"',
         expect={"(0008,1030)": "whole", "(0008,103E)": "PDw_TSE"}),
    dict(name="ternary_not_matches",
         script=V + '(0028,0011) !~ "\\\\d{3}" ? (2010,0140) := "GOOD" : (2010,0140) := "BAD"',
         expect={"(2010,0140)": "GOOD"}),
    dict(name="absent_tag_is_null_in_conditions",
         script=V + '(0010,2297) = "Person" ? (0008,1030) := "eq"\n(0010,2297) != "Person" ? (0008,103E) := "ne"\n'
                    '(0010,2297) ~ ".*" ? (0008,1040) := "m"\n(0010,2297) !~ ".*" ? (0008,1050) := "nm"\n'
                    '(2001,{NONEXISTENT PVT CREATOR ID}0c) = "N" ? (0008,1060) := "pvt"',
         expect={"(0008,1030)": "Brain Study", "(0008,103E)": "ne", "(0008,1040)": ABSENT,
                 "(0008,1050)": "nm", "(0008,1060)": ABSENT}),
    dict(name="ternary_private_creator_condition",
         script=V + '(2001,{Philips Imaging DD 001}0c) = "N" ? (3006,0088) := "Nice"', expect={"(3006,0088)": "Nice"}),
    dict(name="ternary_variable_and_string_left",
         script=V + 'm := "MR"\nm = (0008,0060) ? (0008,1030) := "same"\n"x" = "y" ? (0008,103E) := "no"',
         expect={"(0008,1030)": "same", "(0008,103E)": "PDw_TSE"}),
    dict(name="ternary_delete_action", script=V + '(0008,0005) = "ISO_IR 100" ? -(0008,0008)',
         expect={"(0008,0008)": ABSENT}),
    dict(name="if_elseif_else",
         script=V + 'modality := (0008,0060)\nif (modality = "MR") {\n    (0008,0060) := "if"\n} elseif (modality = "CT") {\n'
                    '    (0008,0005) := "elseif"\n} else {\n    (0008,0008) := "else"\n}\n'
                    'acc := (0008,0050)\nif (acc = "1") {\n (0008,0012) := "if"\n}\nelseif (acc = "20100430") {\n'
                    ' (0008,103E) := "thisone"\n}\nelse {\n (0008,0013) := "else"\n}\n'
                    'if (acc = "nope") {\n (0008,1090) := "if"\n} else {\n (0008,1090) := "nowthis"\n}',
         expect={"(0008,0060)": "if", "(0008,0005)": "ISO_IR 100", "(0008,103E)": "thisone",
                 "(0008,0012)": ABSENT, "(0008,0013)": ABSENT, "(0008,1090)": "nowthis"}),
    dict(name="if_block_variable_scope_and_nesting",
         script=V + 'if (isPresent[(0008,0060)]) {\n  v := "inner"\n  if ((0008,0060) ~ "M.") {\n    (0008,1030) := v\n  }\n}\n'
                    '(0008,103E) := v',
         expect={"(0008,1030)": "inner", "(0008,103E)": "inner"}),
    dict(name="if_with_delete_and_function",
         script=V + 'if ((0008,0060) != "CT") {\n  -(0010,0030)\n  retainPrivateTags["(0019,{SIEMENS MR HEADER}0F)"]\n}',
         expect={"(0010,0030)": ABSENT, "(0019,100F)": "SIEMENSVALUE", "(0019,1010)": ABSENT,
                 "(2001,100C)": ABSENT}),
    dict(name="bare_function_conditions",
         script='version "6.7"\ntrue[] ? (0012,0010) := "CORRECT" : (0012,0010) := "INCORRECT"\n'
                'false[] ? (0012,0020) := "INCORRECT" : (0012,0020) := "CORRECT"\n'
                'isPresent[(0008,0060), (0008,0061)] ? (0012,0021) := "INCORRECT" : (0012,0021) := "CORRECT"\n'
                'isPresent[(0008,0060), (0008,0070)] ? (0012,0030) := "CORRECT"\n'
                'isPresent[(2001,{Philips Imaging DD 001}0c)] ? (0012,0031) := "CORRECT"\n'
                'isPresent[(0018,0026)[1]/(0018,0034)] ? (0012,0040) := "CORRECT"',
         expect={"(0012,0010)": "CORRECT", "(0012,0020)": "CORRECT", "(0012,0021)": "CORRECT",
                 "(0012,0030)": "CORRECT", "(0012,0031)": "CORRECT", "(0012,0040)": "CORRECT"}),  # ✓ isPresent
    # ---- lexical ----------------------------------------------------------------------------
    dict(name="line_continuation_inside_string_and_statement",
         script=V + '(0008,1030) := "INSERTED \\\nSTR\\\nING"\n(0008,103E) \\\n  := "joined"',
         expect={"(0008,1030)": "INSERTED STRING", "(0008,103E)": "joined"}),  # ✓ multiline
    dict(name="lowercase_hex_and_space_after_comma", script=V + '(0008,103e) := "lc"\n-(0010, 0030)',
         expect={"(0008,103E)": "lc", "(0010,0030)": ABSENT}),
    dict(name="crlf_newlines", script='version "6.1"\r\n(0008,1030) := "crlf"\r\n', expect={"(0008,1030)": "crlf"}),
    dict(name="lists_span_lines",
         script=V + 'tags := {\n  (0010,0010),\n  (0010,0020)\n}\nremoveTags[tags]',
         expect={"(0010,0010)": ABSENT, "(0010,0020)": ABSENT, "(0018,0026)[0]/(0010,0020)": "NESTED1"}),
    # ---- tag paths --------------------------------------------------------------------------
    dict(name="wildcard_digit_odd_even_x",
         script=V + '-(0018,901#)\n-(0018,90X0)',
         input={"(0018,0026)": ("SQ", [{"(0018,9011)": ("CS", "NESTED")}])},
         expect={"(0018,9011)": ABSENT, "(0018,9013)": ABSENT, "(0018,9010)": ABSENT, "(0018,9012)": "C",
                 "(0018,0026)[0]/(0018,9011)": "NESTED"}),  # ✓ top level only
    dict(name="wildcard_even_at", script=V + '-(0018,901@)',
         expect={"(0018,9010)": ABSENT, "(0018,9012)": ABSENT, "(0018,9011)": "B", "(0018,9013)": "D"}),
    dict(name="wildcard_lowercase_x_group", script=V + '-(00x8,0060)', expect={"(0008,0060)": ABSENT}),
    dict(name="wildcard_assign_if_exists", script=V + '(0018,901X) ?= "W"\n(0018,902X) ?= "W"',
         expect={"(0018,9010)": "W", "(0018,9013)": "W", "(0018,9020)": ABSENT}),
    dict(name="private_by_creator_read_assign",
         script=V + '(0008,1030) := (0019,{SIEMENS MR HEADER}0F)\n(0019,{SIEMENS MR HEADER}10) := "changed"',
         expect={"(0008,1030)": "SIEMENSVALUE", "(0019,1010)": "changed"}),
    dict(name="private_creator_in_other_block",
         script=V + '(0008,1030) := (0019,{SECOND}01)',
         input={"(0019,0011)": ("LO", "SECOND"), "(0019,1101)": ("LO", "BLOCK11")},
         expect={"(0008,1030)": "BLOCK11"}),
    dict(name="private_assign_creates_creator_block",
         script=V + '(0039,{INSERTED PRIVATE CREATOR ID}01) := "COOL"\n(0019,{NEW CREATOR}05) := "X"',
         expect={"(0039,0010)": "INSERTED PRIVATE CREATOR ID", "(0039,1001)": "COOL",
                 "(0019,0011)": "NEW CREATOR", "(0019,1105)": "X", "(0019,100F)": "SIEMENSVALUE"}),
    dict(name="private_wildcard_delete",
         script=V + '-(0029,{SIEMENS CSA HEADER}XX)\n-(2001,{Philips Imaging DD 001}8@)',
         expect={"(0029,1010)": ABSENT, "(0029,1019)": ABSENT, "(0029,0010)": "SIEMENS CSA HEADER",
                 "(2001,1082)": ABSENT, "(2001,1081)": "1", "(2001,100C)": "N"}),
    dict(name="sequence_item_index_read_assign",
         script=V + '(0008,1030) := (0008,1115)[1]/(0008,1155)\n(0018,0026)[1]/(0018,0034) := "CHANGED"\n'
                    '(0008,1072)[0]/(0008,0080) := "WUSTL"',
         expect={"(0008,1030)": "1.2.3.4.5.6", "(0018,0026)[1]/(0018,0034)": "CHANGED",
                 "(0018,0026)[0]/(0018,0034)": "AGENT1", "(0008,1072)[0]/(0008,0080)": "WUSTL"}),  # ✓
    dict(name="sequence_assign_if_exists_missing_item",
         script=V + '(0008,1110)[0]/(0020,000E) ?= "1.2"\n(0008,1115)[5]/(0008,1155) ?= "1.2"\n'
                    '(0008,1115)[0]/(0020,0013) ?= "1"\n(0008,1115)[1]/(0008,1155) ?= "9.9"',
         expect={"(0008,1110)": ABSENT, "(0008,1115)[0]/(0020,0013)": ABSENT,
                 "(0008,1115)[1]/(0008,1155)": "9.9"}),  # ✓ sequenceAssignIfExists
    dict(name="sequence_every_item_percent", script=V + '-(0018,0026)[%]/(0018,0034)',
         expect={"(0018,0026)[0]/(0018,0034)": ABSENT, "(0018,0026)[1]/(0018,0034)": ABSENT,
                 "(0018,0026)[0]/(0010,0020)": "NESTED1"}),  # ✓ sequenceItemWildcard
    dict(name="sequence_no_index_every_item", script=V + 'removeTags[(0018,0026)/(0018,0034)]',
         expect={"(0018,0026)[0]/(0018,0034)": ABSENT, "(0018,0026)[1]/(0018,0034)": ABSENT}),
    # XNAT >= 1.8.7 empties the item and keeps it (StandardSequenceDeleteScript; DE-91)
    dict(name="sequence_item_delete", script=V + '-(0008,1115)[0]',
         expect={"(0008,1115)[0]/(0008,1155)": ABSENT, "(0008,1115)[1]/(0008,1155)": "1.2.3.4.5.6",
                 "(0008,1115)[2]": ABSENT}),  # ✓
    dict(name="level_plus_any_depth_below_top", script=V + '-+/(0010,0020)',
         expect={"(0010,0020)": "PID123", "(0018,0026)[0]/(0010,0020)": ABSENT,
                 "(0018,0026)[1]/(0018,0029)[0]/(0010,0020)": ABSENT}),
    dict(name="level_star_any_depth", script=V + '-*/(0010,0020)',
         expect={"(0010,0020)": ABSENT, "(0018,0026)[0]/(0010,0020)": ABSENT,
                 "(0018,0026)[1]/(0018,0029)[0]/(0010,0020)": ABSENT}),
    dict(name="level_dot_exactly_one", script=V + '-./(0010,0020)',
         expect={"(0010,0020)": "PID123", "(0018,0026)[0]/(0010,0020)": ABSENT,
                 "(0018,0026)[1]/(0018,0029)[0]/(0010,0020)": "DEEP"}),
    dict(name="level_star_assign_if_exists", script=V + '*/(0010,0020) ?= "ANON"',
         expect={"(0010,0020)": "ANON", "(0018,0026)[0]/(0010,0020)": "ANON",
                 "(0018,0026)[1]/(0018,0029)[0]/(0010,0020)": "ANON", "(0018,0026)[1]/(0010,0020)": ABSENT}),
    dict(name="group2_delete_and_sync",
         script=V + '-(0002,0016)\n(0008,0018) := hashUID[(0008,0018)]',
         expect={"meta:(0002,0016)": ABSENT, "(0008,0018)": "2.25.262228503153619312954819897114011402300",
                 "meta:(0002,0003)": "2.25.262228503153619312954819897114011402300"}),  # ✓ group2
]
