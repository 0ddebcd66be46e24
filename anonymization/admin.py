"""Lookup tables in the admin: upload a two-column CSV per site or per project (issue 14)."""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from anonymization.models import LookupTable
from anonymization.services import lookup_csv_parse

MSG_CSV_REQUIRED = "Choose the CSV file of the table (two columns: key,value)."


class LookupTableForm(forms.ModelForm):
    csv_file = forms.FileField(required=False, label="CSV file",
                               help_text="Two columns per row: key,value (UTF-8; quote a value with commas). "
                                         "Uploading replaces every row of the table.")

    class Meta:
        model = LookupTable
        fields = ["name", "project"]

    def clean(self):
        data = super().clean()
        upload = data.get("csv_file")
        if upload is None:
            if self.instance._state.adding:
                raise ValidationError({"csv_file": MSG_CSV_REQUIRED})
            return data
        try:
            entries = lookup_csv_parse(data=upload.read())
        except ValidationError as exc:
            raise ValidationError({"csv_file": exc.messages}) from None
        self.instance.entries, self.instance.row_count = entries, len(entries)
        return data


@admin.register(LookupTable)
class LookupTableAdmin(admin.ModelAdmin):
    form = LookupTableForm
    list_display = ["name", "project", "row_count", "updated", "updated_by"]
    list_filter = ["project"]
    search_fields = ["name"]
    readonly_fields = ["row_count", "updated", "updated_by"]

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user.get_username()
        super().save_model(request, obj, form, change)
