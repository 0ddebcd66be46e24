"""Conformance table: one or more cases for every built-in function (DicomEdit 6)."""
from __future__ import annotations

from .helpers import ABSENT

V = 'version "6.7"\n'
SCALE = 'version "6.6"\nscalePatientAgeAndDobFromStudyDate[]'
SCALE_PLUS_SHIFT = SCALE + '\nshiftDateTimeSequenceByIncrement["1209600", "*/(0010,0030)"]'


def _scale_input(study: str, dob: str, age: str) -> dict:
    return {"(0008,0020)": ("DA", study), "(0010,0030)": ("DA", dob), "(0010,1010)": ("AS", age),
            "(0085,0010)": ("LO", "PRIVSEQ"),
            "(0085,1010)": ("SQ", [{"(0010,0030)": ("DA", dob), "(0010,1010)": ("AS", age)}])}


def _scale_expect(study: str, dob: str, age: str) -> dict:
    return {"(0008,0020)": study, "(0010,0030)": dob, "(0010,1010)": age,
            "(0085,1010)[0]/(0010,0030)": dob, "(0085,1010)[0]/(0010,1010)": age}

HASH_STUDY = "2.25.76380769527968176043226179709817176787"

CASES: list[dict] = [
    dict(name="fn_lowercase_uppercase",
         script=V + '(0008,1030) := lowercase[(0008,0060)]\n(0008,103E) := uppercase[(0008,103E)]',
         expect={"(0008,1030)": "mr", "(0008,103E)": "PDW_TSE"}),  # ✓
    dict(name="fn_concatenate", script=V + '(0008,1030) := concatenate["10","20","30"]\n'
                                           '(0008,103E) := concatenate[(0008,0060), "-", {"a", "b"}]',
         expect={"(0008,1030)": "102030", "(0008,103E)": "MR-ab"}),  # ✓
    dict(name="fn_format_nested",
         script=V + '(0008,1030) := format["{0}_{1}_{2}_{3}", lowercase[(0008,0060)], uppercase[(0008,103E)], '
                    'replace[substring["0123456789",0,8],"3","0"], concatenate["10","20","30"]]',
         expect={"(0008,1030)": "mr_PDW_TSE_01204567_102030"}),  # ✓
    dict(name="fn_format_messageformat_rules",
         script=V + '(0008,1030) := format["it\'\'s \'{0}\' {0} {2}", "x"]\n'
                    '(0008,103E) := format["{0,number}|{1,number,integer}|{2,number,000}", "1234567.5", "2.5", "7"]',
         expect={"(0008,1030)": "it's {0} x {2}", "(0008,103E)": "1,234,567.5|2|007"}),
    dict(name="fn_format_list_flattened", script=V + 'l := {"a", "b"}\n(0008,1030) := format["{0}+{1}", l]',
         expect={"(0008,1030)": "a+b"}),
    dict(name="fn_substring", script=V + '(0008,1030) := substring["0123456789", 0, 8]\n'
                                         '(0008,103E) := substring[(0008,0020), 0, 4]',
         expect={"(0008,1030)": "01234567", "(0008,103E)": "2010"}),  # ✓
    dict(name="fn_replace_literal", script=V + '(0008,1030) := replace["a.b.c", ".", "-"]',
         expect={"(0008,1030)": "a-b-c"}),
    dict(name="fn_match_group", script=V + '(0008,1030) := match["aba", "(a(b)?)+", 2]\n'
                                           '(0008,103E) := match[(0008,0070), "(\\\\w+) Medical", 1]\n'
                                           '(0008,1040) := match["xyz", "a", 0]',
         expect={"(0008,1030)": "b", "(0008,103E)": "Philips", "(0008,1040)": ""}),  # ✓
    dict(name="fn_ismatch", script=V + '(0008,1010) := ismatch[(0008,0020), "\\\\d{8}"]\n'
                                       '(0008,1030) := ismatch[(0008,0020), "\\\\d{7}"]',
         expect={"(0008,1010)": "true", "(0008,1030)": "false"}),  # ✓
    dict(name="fn_hashUID", script=V + '(0008,1150) := hashUID[(0020,000D)]\n(0020,000D) := hashUID[(0020,000D), "SHA-1"]\n'
                                       '(0008,1030) := hashUID["1.2.3.4.5"]',
         expect={"(0008,1150)": HASH_STUDY, "(0020,000D)": HASH_STUDY,
                 "(0008,1030)": "2.25.281097975800109040096884226991818420711"}),  # ✓
    dict(name="fn_hashUIDList",
         script=V + 'hashUIDList[(0049,{REST}10), */(0008,1155)]',
         input={"(0049,0010)": ("LO", "REST"), "(0049,1010)": ("UI", "1.2.3.4.5\\1.2.3.4.5.6")},
         expect={"(0049,1010)": "2.25.281097975800109040096884226991818420711\\"
                                "2.25.262228503153619312954819897114011402300",
                 "(0049,0010)": "REST",
                 "(0008,1115)[0]/(0008,1155)": "2.25.281097975800109040096884226991818420711",
                 "(0008,1115)[1]/(0008,1155)": "2.25.262228503153619312954819897114011402300"}),  # ✓
    dict(name="fn_hashUIDList_absent_noop", script=V + 'hashUIDList[(0008,1140)]', expect={"(0008,1140)": ABSENT}),
    dict(name="fn_shiftDateByIncrement",
         script=V + '(0008,0021) := shiftDateByIncrement["20200228","2"]\n(0008,0022) := shiftDateByIncrement["20181231","365"]\n'
                    '(0008,0023) := shiftDateByIncrement["20200228","-5"]\n(0008,0020) := shiftDateByIncrement[(0008,0020), 1, "days"]\n'
                    '(0010,0030) := shiftDateByIncrement[(0010,0030), "1", "years"]',
         expect={"(0008,0021)": "20200301", "(0008,0022)": "20191231", "(0008,0023)": "20200223",
                 "(0008,0020)": "20100501", "(0010,0030)": "19710101"}),  # ✓
    dict(name="fn_shiftDateTimeByIncrement",
         script=V + '(0008,1030) := shiftDateTimeByIncrement["20200101120000.000000","10"]\n'
                    '(0008,103E) := shiftDateTimeByIncrement["20200228235800","180"]\n'
                    '(0008,1040) := shiftDateTimeByIncrement["19960808140000","-600"]\n'
                    '(0008,002A) := shiftDateTimeByIncrement[(0008,002A), "360"]\n'
                    '(0008,1050) := shiftDateTimeByIncrement["20200101235959+0100", 1]',
         expect={"(0008,1030)": "20200101120010.000000", "(0008,103E)": "20200229000100",
                 "(0008,1040)": "19960808135000", "(0008,002A)": "20100430131041.40",
                 "(0008,1050)": "20200102000000+0100"}),  # ✓
    dict(name="fn_shiftDateTimeSequenceByIncrement",
         script=V + 'shiftDateTimeSequenceByIncrement["86400", "(5200,9230)/(0020,9111)/(0018,9151)", "(0008,0020)", "(0008,0030)"]',
         input={"(5200,9230)": ("SQ", [{"(0020,9111)": ("SQ", [{"(0018,9151)": ("DT", "20100430130441.40")}])},
                                       {"(0020,9111)": ("SQ", [{"(0018,9151)": ("DT", "20101231235959")}])}])},
         expect={"(5200,9230)[0]/(0020,9111)[0]/(0018,9151)": "20100501130441.40",
                 "(5200,9230)[1]/(0020,9111)[0]/(0018,9151)": "20110101235959",
                 "(0008,0020)": "20100501", "(0008,0030)": "130441"}),
    dict(name="fn_shiftDateTimeListByIncrement",
         script=V + 'shiftDateTimeListByIncrement[{"(0008,0020)", (0008,002A)}, 2, "hours"]',
         expect={"(0008,0020)": "20100430", "(0008,002A)": "20100430150441.40"}),
    dict(name="fn_newUID", script=V + '(0008,0018) := newUID[]',
         check="new_uid", expect={}),
    dict(name="fn_mapReferencedUIDs",
         script='version "6.2"\nmapReferencedUIDs["1.2.826.0.1.3680043.10.9", "(0020,000D)", "*/(0008,1155)"]',
         check="mapped_uids", expect={}),
    dict(name="fn_getURL_with_fetcher", script=V + '(0008,1030) := getURL["http://xnat/xapi/siteConfig/siteId"]',
         allow_get_url=True, expect={"(0008,1030)": "SITE:http://xnat/xapi/siteConfig/siteId"}),
    dict(name="fn_retainPrivateTags",
         script=V + 'retainPrivateTags["(0019,{SIEMENS MR HEADER}XX)", "*/(0065,{AE 2}XX)", (2001,{Philips Imaging DD 001}0c)]',
         input={"(0018,0026)": ("SQ", [{"(0065,0010)": ("LO", "AE 2"), "(0065,1001)": ("LO", "NESTED KEEP"),
                                        "(0067,0010)": ("LO", "AE 3"), "(0067,1001)": ("LO", "NESTED GO")}]),
                "(0019,1020)": ("SQ", [{"(0077,0010)": ("LO", "AE 3"), "(0077,1035)": ("LT", "inside kept")}])},
         expect={"(0019,100F)": "SIEMENSVALUE", "(0019,1010)": "OTHERVALUE", "(0019,0010)": "SIEMENS MR HEADER",
                 "(2001,100C)": "N", "(2001,0010)": "Philips Imaging DD 001", "(2001,1081)": ABSENT,
                 "(0029,1010)": ABSENT, "(0029,0010)": ABSENT,
                 "(0018,0026)[0]/(0065,1001)": "NESTED KEEP", "(0018,0026)[0]/(0065,0010)": "AE 2",
                 "(0018,0026)[0]/(0067,1001)": ABSENT, "(0010,0010)": "Doe^John",
                 "(0019,1020)[0]/(0077,1035)": "inside kept"}),
    dict(name="fn_removeTags", script=V + 'removeTags[{ */(0020,000D), ./(0010,0020) }, (0008,0070)]',
         expect={"(0020,000D)": ABSENT, "(0010,0020)": "PID123", "(0018,0026)[0]/(0010,0020)": ABSENT,
                 "(0008,0070)": ABSENT}),
    dict(name="fn_blankValues_paths",
         script=V + 'blankValues[(0010,0020), (0008,0050)]',
         input={"(0008,1030)": ("LO", " PID123 "), "(0018,0026)": ("SQ", [{"(0010,0020)": ("LO", "PID123")}])},
         expect={"(0010,0020)": "", "(0008,1030)": "", "(0018,0026)[0]/(0010,0020)": "",
                 "(0008,0050)": "", "(0008,0020)": "", "(0010,0010)": "Doe^John"}),
    dict(name="fn_collectValues_then_blank",
         script=V + 'pre := collectValues[(0008,0060)]\n(0008,1030) := concatenate["WAS ", (0008,0060)]\nblankValues[pre]',
         expect={"(0008,0060)": "", "(0008,1030)": "WAS MR"}),
    dict(name="fn_blankValues_no_args_noop", script=V + 'blankValues[]', expect={"(0008,0060)": "MR"}),
    dict(name="fn_set_and_delete_paths",
         script=V + 'set["(0018,0026)[0]/(0018,0034)", "SET"]\ndelete["(0018,0026)[1]/(0018,0029)[0]/(0010,0020)"]\n'
                    'set["(0008,1030)", (0008,0060)]',
         expect={"(0018,0026)[0]/(0018,0034)": "SET", "(0018,0026)[1]/(0018,0029)[0]/(0010,0020)": ABSENT,
                 "(0008,1030)": "MR"}),
    dict(name="fn_isPresent_as_value", script=V + '(0008,1030) := isPresent[(0010,0010)]',
         expect={"(0008,1030)": "true"}),
    dict(name="fn_true_false_values", script=V + '(0008,1030) := true[]\n(0008,103E) := false[]',
         expect={"(0008,1030)": "true", "(0008,103E)": "false"}),
    dict(name="fn_reject", script=V + '(0020,0011) = "5" ? reject[]\n(0008,1030) := "not reached"',
         rejected=True, expect={"(0008,1030)": "Brain Study"}),  # ✓
    dict(name="fn_reject_not_taken", script=V + '(0020,0011) = "6" ? reject[]', expect={}),
    dict(name="fn_normalizeString",
         script=V + '(0008,103E) := normalizeString[(0008,103E)]\n(0008,1030) := normalizeString["Dé:", ":)"]\n'
                    '(0010,1005) ?= normalizeString[(0010,1005)]',
         input={"(0008,103E)": ("LO", "Déscrîptîøn plüs $pec|ål ¢haraçtêrs"),
                "(0010,1005)": ("PN", "Yamada^Tarou=山田^太郎=やまだ^たろう")},
         expect={"(0008,103E)": "D_scr_pt__n pl_s $pec|_l _hara_t_rs", "(0008,1030)": "D:):",
                 "(0010,1005)": "Yamada^Tarou=__^__=___^___"}),  # ✓ normalizeString
    dict(name="fn_alterPixels", script=V + 'alterPixels["rectangle", "l=1, t=1, r=3, b=2", "solid", "v=100"]',
         check="pixels", expect={"(0028,0301)": "NO", "(0012,0063)": "Burned in text blacked out",
                                  "(0012,0064)[0]/(0008,0100)": "113101",
                                  "(0012,0064)[1]/(0008,0104)": "XNAT DicomEdit 6 Script"}),

    # ---- mapUID (DicomEdit TestMapUIDFunction: prefix kept, same value -> same UID in every file) --
    dict(name="fn_mapUID",
         script='version "6.6"\n(0008,1115)[1]/(0008,1155) := mapUID[(0020,000D), 1.666]\n'
                '(0020,000D) := mapUID[ (0020,000D), "1.666"]\n(0020,000E) := mapUID[ (0020,000E), "1.666"]',
         check="map_uid", expect={"(0020,000D)": "1.666.*", "(0020,000E)": "1.666.*"}),
    # ---- lookup (DicomEdit TestLookupFunction testScriptWithLookup: its table, its expected values) --
    dict(name="fn_lookup",
         script='version "6.6"\n(0010,0010) := lookup[ "pn", (0010,0010) ]\n(0010,0020) := lookup[ "pid", (0010,0020)]\n'
                '(0008,1030) := lookup["pn", "PatientName3"]\n(0008,103E) := lookup["pid", (0010,2297)]',
         input={"(0010,0010)": ("PN", "PatientName1"), "(0010,0020)": ("LO", "PatientID2")},
         lookup_table=" // Test lookup table.\n\npn/PatientName1 = MappedPatientName1\npid/PatientID1 = MappedPatientID1\n"
                      "pn/PatientName2 = MappedPatientName2\npid/PatientID2 = MappedPatientID2\n",
         expect={"(0010,0010)": "MappedPatientName1", "(0010,0020)": "MappedPatientID2",
                 "(0008,1030)": "", "(0008,103E)": ""}),  # ✓ (a missing key or a null key gives null)
    # ---- scalePatientAgeAndDobFromStudyDate --------------------------------------------------------
    # xnat-rest-tests TestAnonymizationDateTimeModifications (standalone.das / plusShift.das): ANON_2 data
    # with StudyDate, PatientBirthDate, PatientAge set, also inside a private sequence (0085,1010).
    dict(name="fn_scaleAge_above89", script=SCALE, input=_scale_input("20000131", "19000101", "100Y"),
         expect=_scale_expect("20000131", "19110201", "089Y")),  # ✓ testScalePatientAgeAbove89
    dict(name="fn_scaleAge_below89", script=SCALE, input=_scale_input("20000131", "19500101", "050Y"),
         expect=_scale_expect("20000131", "19500101", "050Y")),  # ✓ testScalePatientAgeBelow89
    dict(name="fn_scaleAge_plus_shift_above89", script=SCALE_PLUS_SHIFT,
         input=_scale_input("20000131", "19000101", "100Y"),
         expect=_scale_expect("20000131", "19110215", "089Y")),  # ✓ testScalePatientAgeFullAnonAbove89
    dict(name="fn_scaleAge_plus_shift_below89", script=SCALE_PLUS_SHIFT,
         input=_scale_input("20000131", "19500101", "050Y"),
         expect=_scale_expect("20000131", "19500115", "050Y")),  # ✓ testScalePatientAgeFullAnonBelow89
    dict(name="fn_scaleAge_no_dates", script=SCALE, input=_scale_input("", "", "090Y"),
         expect=_scale_expect("", "", "089Y")),  # ✓ testScalePatientAgeNoDates
    dict(name="fn_scaleAge_newborn", script=SCALE, input=_scale_input("20230410", "20230101", "099D"),
         expect=_scale_expect("20230410", "20230101", "099D")),  # ✓ testScalePatientAgeNewborn
    dict(name="fn_scaleAge_study_date_blank", script=SCALE, input=_scale_input("", "19500101", "500Y"),
         expect=_scale_expect("", "19500101", "500Y")),  # ✓ testScalePatientAgeStudyDateBlank
    dict(name="fn_scaleAge_no_age_info", script=SCALE,
         input={"(0008,0020)": ("DA", "19801010"), "(0010,0030)": ("DA", ABSENT), "(0010,1010)": ("AS", ABSENT)},
         expect={"(0008,0020)": "19801010", "(0010,0030)": ABSENT, "(0010,1010)": ABSENT}),  # ✓ NoAgeInfo
    # DicomEdit's own TestScalePatientAgeAndDobFromStudyDateFunction
    dict(name="fn_scaleAge_dob_unit", script=SCALE,
         input={"(0010,1010)": ("AS", "100Y"), "(0010,0030)": ("DA", "19230315"), "(0008,0020)": ("DA", "20230315")},
         expect={"(0010,1010)": "089Y", "(0010,0030)": "19340316", "(0008,0020)": "20230315"}),  # ✓ testDOB
    dict(name="fn_scaleAge_age_only", script=SCALE, base=False,
         input={"(0010,1010)": ("AS", "090Y"), "(0013,0010)": ("LO", "pc1"),
                "(0013,1000)": ("SQ", [{"(0010,1010)": ("AS", "099Y")}, {"(0010,1010)": ("AS", "099Y")}])},
         expect={"(0010,1010)": "089Y", "(0013,0010)": "pc1", "(0013,1000)[0]/(0010,1010)": "089Y",
                 "(0013,1000)[1]/(0010,1010)": "089Y"}),  # ✓ testOldster, testInSequences
    dict(name="fn_scaleAge_youngster", script=SCALE, base=False, input={"(0010,1010)": ("AS", "063Y")},
         expect={"(0010,1010)": "063Y"}),  # ✓ testYoungster
    # our cases beyond upstream: 89 exactly stays; months never count as years; the cut-off day
    dict(name="fn_scaleAge_edges", script=SCALE, base=False,
         input={"(0010,1010)": ("AS", "089Y"), "(0010,0030)": ("DA", "19110201"), "(0008,0020)": ("DA", "20000131")},
         expect={"(0010,1010)": "089Y", "(0010,0030)": "19110201"}),
    dict(name="fn_scaleAge_months_and_one_day_over", script=SCALE, base=False,
         input={"(0010,1010)": ("AS", "999M"), "(0010,0030)": ("DA", "19110131"), "(0008,0020)": ("DA", "20000131")},
         expect={"(0010,1010)": "999M", "(0010,0030)": "19110201"}),
    # seed 004: XNAT's uploader function; with no labels taken the visit number is 00
    dict(name="make_session_label", vars={"subject": "S1", "modalityLabel": "MR"},
         script=V + 'session := makeSessionLabel[format["{0}_v##_{1}", subject, lowercase[modalityLabel]]]\n'
                    '(0008,103E) := session', expect={"(0008,103E)": "S1_v00_mr"}),
]
