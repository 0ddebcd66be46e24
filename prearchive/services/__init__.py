"""Prearchive services: intake (every route calls ``intake.dicom_file_receive``), the idle checker, the
session builder, PET-MR separation and the reload from disk."""
