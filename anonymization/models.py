"""Lookup tables for DicomEdit's ``lookup[table, key]`` (issue 14): one two-column CSV per table, given by
a site administrator (site table, ``project`` empty) or by a project's owner (project table)."""
from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

TABLE_NAME = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                            "A table name is 1 to 64 letters, digits, '_', '.' or '-', starting with a "
                            "letter or digit.")


class LookupTable(models.Model):
    name = models.CharField(max_length=64, validators=[TABLE_NAME],
                            help_text="The name scripts use: lookup[\"name\", key].")
    project = models.ForeignKey("xnatlite.Project", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="lookup_tables",
                                help_text="Empty: a site table, for every script. Otherwise the project's "
                                          "table, which its script sees before a site table of the same name.")
    entries = models.JSONField(default=dict, help_text="key -> value, from the uploaded CSV.")
    row_count = models.PositiveIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["project_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="lookup_table_unique_in_project"),
            models.UniqueConstraint(fields=["name"], condition=models.Q(project__isnull=True),
                                    name="lookup_table_unique_on_site"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.project_id or 'site'})"
