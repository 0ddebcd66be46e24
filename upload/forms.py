from __future__ import annotations

from django import forms

from .models import AE_TITLE_VALIDATOR, DicomReceiver


class DicomReceiverForm(forms.ModelForm):
    class Meta:
        model = DicomReceiver
        fields = "__all__"

    def clean_ae_title(self) -> str:
        title = self.cleaned_data["ae_title"].strip()
        if "\\" in title:
            raise forms.ValidationError("An AE title may not contain a backslash.")
        return title

    def clean_whitelist(self) -> str:
        text = self.cleaned_data.get("whitelist", "")
        for title in text.replace(",", "\n").splitlines():
            title = title.strip()
            if title:
                AE_TITLE_VALIDATOR(title)
        return text

    def clean(self):
        data = super().clean()
        if data.get("whitelist_enabled") and not (data.get("whitelist") or "").strip():
            self.add_error("whitelist", "List at least one calling AE title, or turn the whitelist off.")
        return data
