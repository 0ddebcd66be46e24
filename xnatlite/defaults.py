"""XNAT's shipped defaults (reference/xnat.md §1 and §8)."""

# web/src/main/resources/META-INF/xnat/defaults/id.das, as XNAT installs it at first start.
DEFAULT_SITE_ANON_SCRIPT = """//
// Default XNAT anonymization script
// XNAT http://www.xnat.org
// Copyright (c) 2005-2017, Washington University School of Medicine and Howard Hughes Medical Institute
// All Rights Reserved
//
// Released under the Simplified BSD.
//
version "6.1"
project != "Unassigned" ? (0008,1030) := project
(0010,0010) := subject
(0010,0020) := session
"""

# META-INF/xnat/defaults/PET-tracers.txt
DEFAULT_PET_TRACERS = "PIB\nFDG"

DEFAULT_DICOM_FILE_NAME_TEMPLATE = (
    "${StudyInstanceUID}-${SeriesNumber}-${InstanceNumber}-${HashSOPClassUIDWithSOPInstanceUID}"
)
