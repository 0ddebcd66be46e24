"""The script preview of the admin: pick a DICOM file (upload one, or one from the prearchive) and see
each tag the script would change, before and after. Nothing is stored and nothing is logged."""
from __future__ import annotations

from pathlib import Path

from django import forms
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from anonymization.dicomedit import DicomEditError, DicomEditSyntaxError
from anonymization.services import dataset_preview, script_compile

MAX_PREVIEW_BYTES = 200 * 1024 * 1024


def _prearchive_choices(project_ids: list[str] | None = None) -> list[tuple[str, str]]:
    """Recent prearchive files to try a script on; ``project_ids`` limits them to those projects."""
    from prearchive.models import PrearchiveFile

    rows = PrearchiveFile.objects.select_related("session")
    if project_ids is not None:
        rows = rows.filter(session__project_id__in=project_ids)
    rows = (rows.order_by("-session__lastmod", "session_id", "scan_id", "instance_number")[:300])
    choices = [("", "(none)")]
    for f in rows:
        s = f.session
        choices.append((str(f.pk), f"{s.project_label}/{s.name} scan {f.scan_id} #{f.instance_number or '?'}"))
    return choices


class PreviewForm(forms.Form):
    script = forms.CharField(widget=forms.Textarea(attrs={"rows": 14, "cols": 100, "class": "vLargeTextField"}),
                             required=False, help_text="The script to try; edits here are not saved.")
    dicom_file = forms.FileField(required=False, label="DICOM file to upload")
    prearchive_file = forms.ChoiceField(required=False, label="…or a file from the prearchive")
    project = forms.CharField(required=False, initial="PROJECT")
    subject = forms.CharField(required=False, initial="SUBJECT")
    session = forms.CharField(required=False, initial="SESSION")
    modality_label = forms.CharField(required=False, initial="MR", label="modalityLabel")

    def __init__(self, *args, project_ids: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["prearchive_file"].choices = _prearchive_choices(project_ids)

    def clean(self):
        data = super().clean()
        if not data.get("dicom_file") and not data.get("prearchive_file"):
            raise ValidationError("Upload a DICOM file or pick one from the prearchive.")
        upload = data.get("dicom_file")
        if upload is not None and upload.size > MAX_PREVIEW_BYTES:
            raise ValidationError("That file is too large to preview.")
        return data

    def dataset(self):
        from prearchive.models import PrearchiveFile
        from prearchive.services.storage import session_dir

        upload = self.cleaned_data.get("dicom_file")
        try:
            if upload is not None:
                upload.seek(0)
                return dcmread(upload)
            f = PrearchiveFile.objects.select_related("session").get(pk=self.cleaned_data["prearchive_file"])
            return dcmread(Path(session_dir(f.session.relative_dir)) / f.relative_path)
        except (InvalidDicomError, EOFError, ValueError, KeyError, OSError, PrearchiveFile.DoesNotExist):
            raise ValidationError("That file is not a readable DICOM file.") from None


def script_preview_run(form: PreviewForm):
    """(result, error) of a bound, valid PreviewForm: the changes the script makes, or why it cannot."""
    result = error = None
    try:
        script = script_compile(text=form.cleaned_data["script"])
        dataset = form.dataset()
        variables = {"project": form.cleaned_data["project"], "subject": form.cleaned_data["subject"],
                     "session": form.cleaned_data["session"],
                     "modalityLabel": form.cleaned_data["modality_label"]}
        result = dataset_preview(script=script, dataset=dataset, variables=variables)
    except DicomEditSyntaxError as exc:
        error = f"Script error: {exc}"
    except DicomEditError as exc:
        error = f"The script failed on this file: {exc}"
    except ValidationError as exc:
        error = " ".join(exc.messages)
    return result, error


def script_preview_view(request, *, admin_site, script_text: str, title: str, back_url: str):
    form = PreviewForm(request.POST or None, request.FILES or None, initial={"script": script_text})
    result = error = None
    if request.method == "POST" and form.is_valid():
        result, error = script_preview_run(form)
    context = {**admin_site.each_context(request), "title": title, "form": form, "result": result,
               "error": error, "back_url": back_url, "media": form.media}
    return TemplateResponse(request, "admin/anonymization/preview.html", context)


