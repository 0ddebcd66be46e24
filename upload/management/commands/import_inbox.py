"""``manage.py import_inbox PATH [--project P] [--subject S] [--session L] [--user U] [--commit]``:
import a folder under the DICOM inbox root (the admin's "DICOM inbox root" setting)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from upload.inbox import inbox_import
from upload.services import ImportRefused, ImportReport, import_authorize, import_receipt_record


class Command(BaseCommand):
    help = "Import DICOM files from a folder under the inbox root."

    def add_arguments(self, parser):
        parser.add_argument("path", help="Folder or file, absolute or relative to the inbox root.")
        parser.add_argument("--project", default="")
        parser.add_argument("--subject", default="")
        parser.add_argument("--session", default="")
        parser.add_argument("--user", default="", help="Act as this user (default: the site's received-file user).")
        parser.add_argument("--commit", action="store_true", help="Build the sessions at once.")

    def handle(self, *args, **options):
        from xnatlite.selectors import site_config_get

        name = options["user"] or site_config_get().received_file_user
        user = get_user_model().objects.filter(username=name, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {name!r}.")
        params = {k: v for k, v in (("PROJECT_ID", options["project"]), ("SUBJECT_ID", options["subject"]),
                                    ("EXPT_LABEL", options["session"])) if v}
        if options["commit"]:
            params["action"] = "commit"
        report = None
        try:
            import_authorize(user=user, params=params)
            report = ImportReport()
            inbox_import(path=options["path"], params=params, user=user, report=report)
        except ImportRefused as exc:
            if report is not None:
                import_receipt_record(report=report, actor=user.get_username(), route="inbox",
                                      project_id=params.get("PROJECT_ID", ""), failed=exc.message)
            raise CommandError(exc.message) from None
        import_receipt_record(report=report, actor=user.get_username(), route="inbox",
                              project_id=params.get("PROJECT_ID", ""))
        for uri in report.uri_list():
            self.stdout.write(uri)
        self.stdout.write(f"stored {report.stored}, duplicates {report.duplicates}, filtered {report.filtered}, "
                          f"refused {report.rejected}, skipped {report.skipped_total}")
        for entry, reason in report.skipped:
            self.stdout.write(f"skipped: {entry}: {reason}")
