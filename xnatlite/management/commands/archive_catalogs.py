"""Write the scans' catalogs (SCANS/{id}/DICOM/scan_{id}_catalog.xml) and header parameters of archived
sessions: those missing, or all of them with --force. Sessions archived before catalogs existed get theirs
here, or when next read through the data REST. Prints counts only."""
from __future__ import annotations

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Write missing scan catalogs of archived sessions (--force: rewrite all)."

    def add_arguments(self, parser):
        parser.add_argument("--project", help="only this project's sessions")
        parser.add_argument("--force", action="store_true", help="rewrite catalogs that exist")

    def handle(self, *args, project=None, force=False, **options):
        from xnatlite.archive.data import session_catalogs_ensure
        from xnatlite.models import ImageSession

        sessions = ImageSession.objects.order_by("pk")
        if project:
            sessions = sessions.filter(project_id=project)
        written = failed = 0
        for session in sessions.iterator():
            try:
                written += session_catalogs_ensure(session=session, force=force)
            except OSError as exc:
                failed += 1
                self.stderr.write(f"session {session.pk}: {type(exc).__name__}")
        self.stdout.write(f"{written} catalog(s) written, {failed} session(s) failed")
        if failed:
            raise SystemExit(1)
