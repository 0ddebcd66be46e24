"""Remove abandoned uploader transfers (not confirmed in time) and leftover transfer folders."""
from __future__ import annotations

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Fail and remove uploader transfers left unconfirmed longer than --older-than seconds."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=None,
                            help="Seconds (default: the UPLOAD_CLIENT_ABANDON_AFTER setting, 86400).")

    def handle(self, *args, **options):
        from upload.client.services import transfers_cleanup

        result = transfers_cleanup(older_than=options["older_than"])
        self.stdout.write(f"{result['abandoned']} abandoned transfer(s) removed, "
                          f"{result['removed']} leftover folder(s) removed")
