"""The engine against XNAT's own DicomEdit 6 tests (issue 14 item 11).

Each test mirrors the elements of the upstream fixture (NrgXnat/xnat-rest-tests, data ANON_2 / SIMPLE_PET)
that the upstream script touches, runs the upstream script text, writes the file with pydicom, reads it
back and checks the upstream test's expected values. The upstream class and method are named in each
docstring (``src/test/java/org/nrg/testing/xnat/tests/dicomedit/TestAnonymization<Class>.java``).
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLosslessSV1,
                         MRImageStorage)

from anonymization.dicomedit import RunContext, parse

ORIGINAL_SOP_UID = "1.3.46.670589.11.5730.5.0.1744.2010043012343685002"
HASHED_SOP_UID = "2.25.76380769527968176043226179709817176787"  # NRG's expected hashUID of the above
PHILIPS = "Philips Imaging DD 001"
PHILIPS_MR = "Philips MR Imaging DD 001"


def _item(**elements) -> Dataset:
    item = Dataset()
    for keyword, value in elements.items():
        setattr(item, keyword, value)
    return item


def _file(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> Dataset:
    ds.SOPClassUID = ds.get("SOPClassUID", MRImageStorage)
    ds.SOPInstanceUID = ds.get("SOPInstanceUID", ORIGINAL_SOP_UID)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.SourceApplicationEntityTitle = "DicomBrowser"
    ds.file_meta = meta
    return ds


def _write_read(ds: Dataset) -> Dataset:
    """Write as a DICOM file (the file meta's transfer syntax decides the encoding) and read it back."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return dcmread(io.BytesIO(buf.getvalue()))


def _anonymize(script: str, ds: Dataset, run: RunContext | None = None) -> Dataset:
    result = parse(script).apply(ds, variables={}, run=run or RunContext())
    assert not result.rejected
    return _write_read(ds)


def _with_pixels(ds: Dataset) -> Dataset:
    ds.Rows = ds.Columns = 32
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.full((32, 32), 500, dtype="<u2").tobytes()
    return ds


# -- TestAnonymizationBuiltinFunctions.testDeleteFunction / TestAnonymizationUids.testTransferSyntax ---------
DELETE_FUNCTION_DAS = """version "6.1"
delete["(0008,0080)"]
delete["(0008,0081)"]
delete["(0008,1110)"]
delete["(0018,9112)[0]/(0018,0080)"]
delete["(0018,9112)[0]/(0018,9176)"]
delete["(0018,9112)[0]/(0018,9239)[1]/(0018,9181)"]
delete["(2001,1019)"]
delete["(2001,101f)"]
delete["(2001,105F)[0]/(2005,10a3)"]
"""


def _delete_function_fixture() -> Dataset:
    ds = Dataset()
    ds.InstitutionName = "Hospital"
    ds.InstitutionAddress = "1 Hospital Road"
    ds.ReferencedStudySequence = Sequence([_item(ReferencedSOPClassUID="1.2.3", ReferencedSOPInstanceUID="1.2.3.4")])
    ds.MRTimingAndRelatedParametersSequence = Sequence([_item(
        RepetitionTime="2000",
        OperatingModeSequence=Sequence([_item(OperatingModeType="GRADIENT", OperatingMode="IEC_NORMAL")]),
        SpecificAbsorptionRateSequence=Sequence([
            _item(SpecificAbsorptionRateDefinition="IEC_LOCAL", SpecificAbsorptionRateValue=10),
            _item(SpecificAbsorptionRateDefinition="IEC_WHOLE_BODY", SpecificAbsorptionRateValue=2.5),
        ]),
    )])
    ds.add_new(0x20010010, "LO", PHILIPS)
    ds.add_new(0x20011019, "CS", "N")
    ds.add_new(0x2001101F, "CS", "NO")
    inner = Dataset()
    inner.add_new(0x20010010, "LO", PHILIPS)
    inner.add_new(0x20011033, "CS", "AP")
    inner.add_new(0x20050010, "LO", PHILIPS_MR)
    inner.add_new(0x20051081, "CS", "FH")
    inner.add_new(0x200510A3, "FL", 1.5)
    ds.add_new(0x2001105F, "SQ", Sequence([inner]))
    return ds


def _check_delete_function(out: Dataset) -> None:
    for tag in (0x00080080, 0x00080081, 0x00081110, 0x20011019, 0x2001101F):
        assert tag not in out
    timing = out.MRTimingAndRelatedParametersSequence[0]
    assert 0x00180080 not in timing and 0x00189176 not in timing
    sar = timing.SpecificAbsorptionRateSequence
    assert sar[0].SpecificAbsorptionRateDefinition == "IEC_LOCAL" and sar[0].SpecificAbsorptionRateValue == 10
    assert sar[1].SpecificAbsorptionRateDefinition == "IEC_WHOLE_BODY" and 0x00189181 not in sar[1]
    private_item = out[0x2001105F].value[0]
    assert private_item[0x20011033].value == "AP" and private_item[0x20051081].value == "FH"
    assert 0x200510A3 not in private_item


def test_delete_function_addresses_private_elements_by_number() -> None:
    """TestAnonymizationBuiltinFunctions.testDeleteFunction: deleteFunction.das (a DE6 script that names
    private elements by number: "(2001,1019)", "(2001,105F)[0]/(2005,10a3)")."""
    _check_delete_function(_anonymize(DELETE_FUNCTION_DAS, _file(_delete_function_fixture())))


def test_private_element_by_number_in_a_statement() -> None:
    """Same rule outside strings: ``-(2001,1019)`` in DE6 (issue 14 item 11: "as XNAT accepts")."""
    out = _anonymize('version "6.1"\n-(2001,1019)\n(2001,101f) := "YES"\n', _file(_delete_function_fixture()))
    assert 0x20011019 not in out and out[0x2001101F].value == "YES"


@pytest.mark.parametrize("transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLosslessSV1],
                         ids=["a_evle_delete", "b_ivle_delete", "c_jpeglossless_delete"])
def test_transfer_syntax_kept_without_pixel_edits(transfer_syntax: str) -> None:
    """TestAnonymizationUids.testTransferSyntax, its deleteFunction.das runs: "Anon without pixel edits
    retains the original xfer syntax" (EVLE, IVLE and JPEG Lossless SV1 data)."""
    ds = _delete_function_fixture()
    if transfer_syntax == JPEGLosslessSV1:
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = encapsulate([b"\xff\xd8 not decoded here \xff\xd9"])
        ds["PixelData"].VR = "OB"
    out = _anonymize(DELETE_FUNCTION_DAS, _file(ds, transfer_syntax))
    assert out.file_meta.TransferSyntaxUID == transfer_syntax
    _check_delete_function(out)


ALTER_PIXELS_XFER_SYNTAX_DAS = 'version "6.3"\n\nalterPixels["rectangle", "l=10, t=10, r=20, b=20", "solid", "v=0"]\n'


@pytest.mark.parametrize("transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian],
                         ids=["a_evle_alterpixels", "c_ivle_alterpixels"])
def test_transfer_syntax_after_alter_pixels(transfer_syntax: str) -> None:
    """TestAnonymizationUids.testTransferSyntax, its alterPixelsXferSyntax.das runs: "Anon with pixel edits
    always results in EVLE data" (expected UID.ExplicitVRLittleEndian for the EVLE and the IVLE data)."""
    ds = _file(_with_pixels(_delete_function_fixture()), transfer_syntax)
    out = _anonymize(ALTER_PIXELS_XFER_SYNTAX_DAS, ds)
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert tuple(out.original_encoding) == (False, True)  # really written explicit, not just relabelled
    pixels = np.frombuffer(out.PixelData, dtype="<u2").reshape(32, 32)
    assert (pixels[10:20, 10:20] == 0).all() and pixels[9, 9] == 500 and pixels[20, 20] == 500
    assert out[0x20011019].value == "N"  # private elements survive the change of encoding


# -- TestAnonymizationUids.testPrivateMapReferencedUIDs ----------------------------------------------------
PRIVATE_MAP_REFERENCED_UIDS_DAS = """version "6.2"

set["(00e1,0010)", "INSERTED PRIVATE ID"]
mapReferencedUIDs["1.2.826.0.1.3680043.10.9", "(00e1,{INSERTED PRIVATE ID}c2)"]"""


def test_private_map_referenced_uids() -> None:
    """TestAnonymizationUids.testPrivateMapReferencedUIDs (PrivateMapReferencedUIDsScript): the private UID
    (00e1,10c2), whose creator is missing in SIMPLE_PET, starts with the prefix after the script, and has
    the same value in every file (FixedTagValue); ``set`` names the creator element by number."""
    script = parse(PRIVATE_MAP_REFERENCED_UIDS_DAS)
    run = RunContext()
    values = []
    for n in range(2):
        ds = Dataset()
        ds.SOPInstanceUID = f"1.2.3.4.{n}"
        ds.add_new(0x00E110C2, "UI", "1.3.12.2.1107.5.1.4.99.30000")
        script.apply(_file(ds), variables={}, run=run)
        out = _write_read(ds)
        assert out[0x00E10010].value == "INSERTED PRIVATE ID"
        values.append(out[0x00E110C2].value)
    assert values[0].startswith("1.2.826.0.1.3680043.10.9.") and len(values[0]) <= 64
    assert values[0] == values[1]


# -- TestAnonymizationGroup2.testGroup2SyncDE6 ------------------------------------------------------------
def test_group2_follows_changed_sop_class_and_instance() -> None:
    """TestAnonymizationGroup2.testGroup2SyncDE6 (group2Sync.das): (0002,0002) = (0008,0016) = MR Image
    Storage and (0002,0003) = (0008,0018) = the hashed SOP Instance UID."""
    script = ('version "6.1"\n(0008,0016) := "1.2.840.10008.5.1.4.1.1.4" // MR Image Storage\n'
              "(0008,0018) := hashUID[(0008,0018)]")
    ds = _file(Dataset())
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    parse(script).apply(ds, variables={}, run=RunContext())
    # the engine itself keeps group 2 in step (a writer that copies the file meta must not need to)
    assert ds.file_meta.MediaStorageSOPClassUID == MRImageStorage
    assert ds.file_meta.MediaStorageSOPInstanceUID == HASHED_SOP_UID
    out = _write_read(ds)
    assert out.file_meta.MediaStorageSOPClassUID == MRImageStorage == out.SOPClassUID
    assert out.file_meta.MediaStorageSOPInstanceUID == HASHED_SOP_UID == out.SOPInstanceUID
    assert out.file_meta.SourceApplicationEntityTitle == "DicomBrowser"


# -- TestAnonymizationRemoveTags.testRemoveTagsSequenceItem ------------------------------------------------
def test_remove_tags_sequence_item_empties_the_item() -> None:
    """TestAnonymizationRemoveTags.testRemoveTagsSequenceItem (removeTagsSequenceItem.das): item 0 of
    (0010,1002) loses its elements but stays; items 1-3 (and the nested sequence of item 2) are untouched."""
    def patient(name: str, pid: str, issuer: str) -> Dataset:
        return _item(PatientName=name, PatientID=pid, IssuerOfPatientID=issuer)

    ds = Dataset()
    ds.OtherPatientIDsSequence = Sequence([
        patient("WATERMELON^FRUIT", "PERSON_0000", "Hospital_0001"),
        patient("WATERMELON^FRUIT", "PERSON_0001", "Hospital_0002"),
        _item(OtherPatientIDsSequence=Sequence([patient("WATERMELON^FRUIT", "PATIENT_0003", "Hospital_0003")])),
        patient("WATERMELON^FRUIT", "PERSON_0004", "Hospital_0004"),
    ])
    out = _anonymize('version "6.6"\nremoveTags[(0010,1002)[0]]\n', _file(ds))
    items = out.OtherPatientIDsSequence
    assert len(items) == 4
    assert not any(tag in items[0] for tag in (0x00100010, 0x00100020, 0x00100021))
    assert (items[1].PatientName, items[1].PatientID, items[1].IssuerOfPatientID) == \
        ("WATERMELON^FRUIT", "PERSON_0001", "Hospital_0002")
    nested = items[2].OtherPatientIDsSequence[0]
    assert (nested.PatientName, nested.PatientID, nested.IssuerOfPatientID) == \
        ("WATERMELON^FRUIT", "PATIENT_0003", "Hospital_0003")
    assert (items[3].PatientID, items[3].IssuerOfPatientID) == ("PERSON_0004", "Hospital_0004")


# -- TestAnonymizationSequenceOperations ------------------------------------------------------------------
def test_standard_sequence_assignment_with_an_at_value() -> None:
    """TestAnonymizationSequenceOperations.testStandardSequenceAssignmentDE6 (standardSequenceAssignment.das):
    (0008,1072)[0]/(0008,0080) = WUSTL, (5200,9229) item 1 gets (0008,0100) NICE and (0018,9180) DB_DT,
    item 0 is untouched, and (0040,1002) := the AT value (0020,9222)[0]/(0020,9165) reads "00209056"."""
    script = ('version "6.1"\n(0008,1072)[0]/(0008,0080) := "WUSTL"\n(5200,9229)[1]/(0008,0100) := "NICE"\n'
              '(5200,9229)[1]/(0018,9180) := "DB_DT"\n(0040,1002) := (0020,9222)[0]/(0020,9165)')
    ds = Dataset()
    ds.SharedFunctionalGroupsSequence = Sequence([_item(GradientOutputType="ELECTRIC_FIELD"),
                                                  _item(GradientOutputType="PER_NERVE_STIMULATION")])
    ds.DimensionIndexSequence = Sequence([_item(DimensionIndexPointer=0x00209056, FunctionalGroupPointer=0x00209111),
                                          _item(DimensionIndexPointer=0x00209057, FunctionalGroupPointer=0x00209111)])
    out = _anonymize(script, _file(ds))
    assert out.OperatorIdentificationSequence[0].InstitutionName == "WUSTL"
    shared = out.SharedFunctionalGroupsSequence
    assert 0x00080100 not in shared[0] and shared[0].GradientOutputType == "ELECTRIC_FIELD"
    assert shared[1].CodeValue == "NICE" and shared[1].GradientOutputType == "DB_DT" and 0x00189182 not in shared[1]
    assert out.ReasonForTheRequestedProcedure == "00209056"


def test_standard_sequence_delete() -> None:
    """TestAnonymizationSequenceOperations.testStandardSequenceDeleteDE6 (StandardSequenceDeleteScript, XNAT
    1.8.7+): item 1 of (0018,0026) is emptied but kept, (0040,100A) is not created, (0020,9222) keeps its
    two items (there is no item 2), (0040,0260)[0] loses (0008,010b) only."""
    script = ('version "6.1"\n-(0018,0026)[1]\n-(0040,100A)[0]/(0008,0100)\n-(0020,9222)[2]/(0008,0100)\n'
              "-(0040,0260)[0]/(0008,010b)")
    ds = Dataset()
    ds.InterventionDrugInformationSequence = Sequence([
        _item(InterventionDrugStartTime="150000", InterventionDrugName="CHOCOLATE",
              InterventionDrugCodeSequence=Sequence([_item(CodeValue="C-21047", CodeMeaning="Ethanol")])),
        _item(InterventionDrugStartTime="160000", InterventionDrugName="COFFEE"),
    ])
    ds.DimensionIndexSequence = Sequence([_item(DimensionDescriptionLabel="Stack ID"),
                                          _item(DimensionDescriptionLabel="In-Stack Position Number")])
    ds.PerformedProtocolCodeSequence = Sequence([_item(CodeValue="UNDEFINED", ContextGroupExtensionFlag="N")])
    out = _anonymize(script, _file(ds))
    drugs = out.InterventionDrugInformationSequence
    assert len(drugs) == 2
    assert (drugs[0].InterventionDrugStartTime, drugs[0].InterventionDrugName) == ("150000", "CHOCOLATE")
    code = drugs[0].InterventionDrugCodeSequence[0]
    assert (code.CodeValue, code.CodeMeaning) == ("C-21047", "Ethanol")
    assert 0x00180028 not in drugs[1] and 0x00180034 not in drugs[1]
    assert 0x0040100A not in out
    assert [i.DimensionDescriptionLabel for i in out.DimensionIndexSequence] == ["Stack ID", "In-Stack Position Number"]
    protocol = out.PerformedProtocolCodeSequence
    assert len(protocol) == 1 and protocol[0].CodeValue == "UNDEFINED" and 0x0008010B not in protocol[0]
