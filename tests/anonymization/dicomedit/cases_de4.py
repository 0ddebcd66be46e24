"""Conformance table: DicomEdit 4.2, the seed scripts and XNAT's default site script."""
from __future__ import annotations

from .helpers import ABSENT

HASH_STUDY = "2.25.76380769527968176043226179709817176787"

SEED_SITEWIDE = """- (0010,0030) //Remove Patient Birth Date
- (0010,1000) //Remove Other Patient IDs
- (0010,1001) //Remove Other Patient Names
- (0010,1005) //Remove Patient Birth Name
- (0010,1040) //Remove Patient Address
(0012,0063) := "My XNAT sitewide anon script v01"
(0020,000D) := hashUID[(0020,000D)]     // Study Instance UID
"""
SEED_PROJECT = """(0008,1030) := project
(0010,0010) := subject
(0010,0020) := session
"""
XNAT_DEFAULT_SITE = """version "6.1"
project != "Unassigned" ? (0008,1030) := project
(0010,0010) := subject
(0010,0020) := session
"""
XNAT_VARS = {"project": "XNAT_2016", "subject": "subj190", "session": "subj190_v00_mr", "modalityLabel": "MR"}

CASES: list[dict] = [
    dict(name="de4_assign_delete_record", script='(0008,1030) := "DE4"\n-(0010,0030)',
         expect={"(0008,1030)": "DE4", "(0010,0030)": ABSENT,
                 "(0012,0064)[0]/(0008,0104)": "XNAT DicomEdit 4 Script", "(0012,0064)[0]/(0008,0102)": "XNAT",
                 "(0012,0064)[0]/(0008,0103)": "1.0", "(0012,0064)[0]/(0008,0100)": "1"}),
    dict(name="de4_colon_conditional",
         script='(0008,0060) = "MR" : (0020,1204) := "100"\n(0008,0060) = "CT" : (0020,1206) := "100"\n'
                '(0008,0050) ~ "\\\\d{8}" : (0008,1030) := "matched"',
         expect={"(0020,1204)": "100", "(0020,1206)": ABSENT, "(0008,1030)": "matched"}),
    dict(name="de4_numeric_private_tags",
         script='-(2001,100c)\n-(2001,108@)\n(0019,100F) := "numeric"\n(0008,1030) := (0019,1010)',
         expect={"(2001,100C)": ABSENT, "(2001,1082)": ABSENT, "(2001,1081)": "1", "(0019,100F)": "numeric",
                 "(0008,1030)": "OTHERVALUE"}),
    dict(name="de4_new_uid_keyword", script='(0008,0018) := new UID', check="new_uid", expect={}),
    dict(name="de4_first_assignment_wins", script='(0008,1040) := "Dept A"\n(0008,1040) := "Dept B"',
         expect={"(0008,1040)": "Dept A"}),  # ✓ DE4 vs DE6 pair
    dict(name="de4_functions",
         script='(0008,1030) := format["{0}_{1}", lowercase[(0008,0060)], uppercase["x"]]\n'
                '(0020,000D) := hashUID[(0020,000D)]\n(0008,103E) := urlEncode["a b&c~*"]\n'
                '(0008,1040) := substring[replace["0123", "3", "0"], 1, 3]\n(0008,1050) := match["aba", "(a(b)?)+", 2]',
         expect={"(0008,1030)": "mr_X", "(0020,000D)": HASH_STUDY, "(0008,103E)": "a+b%26c%7E*",
                 "(0008,1040)": "12", "(0008,1050)": "b"}),
    dict(name="de4_variables_describe_echo",
         script='describe label "Label"\nlabel := (0008,0060)\n(0008,1030) := label\necho label',
         echo=["MR"], expect={"(0008,1030)": "MR"}),
    dict(name="de4_assign_to_null", script='(0010,1005) := (0010,0022)\n(0010,1050) := (0010,0022)',
         expect={"(0010,1005)": "", "(0010,1050)": ""}),  # ✓ assignToNull DE4
    dict(name="de4_forced_dialect_on_versionless", script='(0008,1030) := "forced"', dialect="6",
         expect={"(0008,1030)": "forced", "(0012,0064)[0]/(0008,0104)": "XNAT DicomEdit 6 Script"}),
    # ---- seeds and XNAT defaults -------------------------------------------------------------
    dict(name="seed_sitewide_script", script=SEED_SITEWIDE,
         input={"(0010,1000)": ("LO", "OTHER"), "(0010,1001)": ("PN", "Other^Name"),
                "(0010,1005)": ("PN", "Birth^Name"), "(0010,1040)": ("LO", "1 Main St")},
         expect={"(0010,0030)": ABSENT, "(0010,1000)": ABSENT, "(0010,1001)": ABSENT, "(0010,1005)": ABSENT,
                 "(0010,1040)": ABSENT, "(0012,0063)": "My XNAT sitewide anon script v01",
                 "(0020,000D)": HASH_STUDY, "(0012,0064)[0]/(0008,0104)": "XNAT DicomEdit 4 Script"}),
    dict(name="seed_project_script", script=SEED_PROJECT, vars=XNAT_VARS,
         expect={"(0008,1030)": "XNAT_2016", "(0010,0010)": "subj190", "(0010,0020)": "subj190_v00_mr"}),
    dict(name="xnat_default_site_script", script=XNAT_DEFAULT_SITE, vars=XNAT_VARS,
         expect={"(0008,1030)": "XNAT_2016", "(0010,0010)": "subj190", "(0010,0020)": "subj190_v00_mr",
                 "(0012,0064)[0]/(0008,0104)": "XNAT DicomEdit 6 Script"}),
    dict(name="xnat_default_site_script_unassigned", script=XNAT_DEFAULT_SITE,
         vars={**XNAT_VARS, "project": "Unassigned"},
         expect={"(0008,1030)": "Brain Study", "(0010,0010)": "subj190"}),
    dict(name="reference_worked_example",
         script='version "6.1"\n- (0010,0030)\n(0012,0063) := "My XNAT sitewide anon script v01"\n'
                '(0020,000D) := hashUID[(0020,000D)]\n(0008,0005) = "ISO_IR 100" ? -(0028,3003)\n'
                '(0008,0060) = "MR" ? (0020,1204) := "100" : (0020,1204) := "50"\n'
                '(0028,0011) !~ "\\\\d{3}" ? (2010,0140) := "GOOD" : (2010,0140) := "BAD"\n'
                '(2001,{Philips Imaging DD 001}0c) = "N" ? (3006,0088) := "Nice"\n-(5200,9230)[%]/(0018,9152)\n'
                '-+/(0010,0020)\ndescribe studyDesc "Study description"\nstudyDesc := (0008,1030)\n'
                '(0008,103E) := format["{0}-{1}", studyDesc, lowercase[modalityLabel]]',
         vars=XNAT_VARS, input={"(0028,3003)": ("LO", "LUT")},
         expect={"(0010,0030)": ABSENT, "(0020,000D)": HASH_STUDY, "(0028,3003)": ABSENT, "(0020,1204)": "100",
                 "(2010,0140)": "GOOD", "(3006,0088)": "Nice", "(0018,0026)[0]/(0010,0020)": ABSENT,
                 "(0010,0020)": "PID123", "(0008,103E)": "Brain Study-mr"}),
]
