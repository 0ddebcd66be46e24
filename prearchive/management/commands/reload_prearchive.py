"""manage.py reload_prearchive: rebuild the prearchive rows from the file tree."""
from __future__ import annotations

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Reconcile the prearchive database with the prearchive file tree (rows and folders)."

    def handle(self, *args, **options):
        from prearchive.services.reload import prearchive_reload

        report = prearchive_reload()
        self.stdout.write(
            f"sessions created: {report.rows_created}, sessions removed: {report.rows_removed}, "
            f"files added: {report.files_added}, files dropped: {report.files_dropped}, "
            f"unreadable files: {report.unreadable}"
        )
