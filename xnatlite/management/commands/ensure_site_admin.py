"""Create the first site admin ('admin', XNAT's default received-file user) if there is none, and print
its password. The password comes from XNATLITE_ADMIN_PASSWORD, else a new one is made and kept in
var/admin-password (readable by its owner only) so that later runs print the same one."""
from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first site admin if missing and print its password."

    def handle(self, *args, **options) -> None:
        users = get_user_model()
        stored = settings.VAR_DIR / "admin-password"
        wanted = os.environ.get("XNATLITE_ADMIN_PASSWORD", "")
        admin = users.objects.filter(username="admin").first()
        if admin is None:
            password = wanted or secrets.token_urlsafe(12)
            users.objects.create_superuser("admin", "admin@localhost", password)
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            stored.write_text(password)
            stored.chmod(0o600)
        elif wanted:
            admin.set_password(wanted)
            admin.save(update_fields=["password"])
            stored.write_text(wanted)
            password = wanted
        else:
            password = stored.read_text().strip() if stored.exists() else "(unchanged; set XNATLITE_ADMIN_PASSWORD to reset it)"
        self.stdout.write(password)
