"""``manage.py run_dicom_scp [--port N] [--ae-title T] [--bind ADDRESS] [--only]``: the DICOM receiver.

Serves the default receiver (settings DICOM_AE_TITLE / DICOM_PORT, or the options) and every enabled
receiver defined in the admin; it re-reads the admin's receivers every few seconds, so adding, changing
or disabling one needs no restart. ``--only`` serves the default receiver alone.
"""
from __future__ import annotations

import logging
import signal
import tempfile
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from prearchive.services import rowbatch
from upload.dicom_scp import ReceiverConfig, receiver_configs, server_start

logger = logging.getLogger("upload.dicom_scp")


class Command(BaseCommand):
    help = "Run the DICOM receiver (C-ECHO, C-STORE) for the default AE and the admin's receivers."
    # The receiver serves DICOM only: the URL and admin checks belong to the web process. What the
    # receiver needs (a writable temporary folder on the prearchive's file system) is checked below.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None, help="Default receiver's port (DICOM_PORT).")
        parser.add_argument("--ae-title", default=None, help="Default receiver's AE title (DICOM_AE_TITLE).")
        parser.add_argument("--bind", default=None,
                            help="Address to listen on (DICOM_BIND_ADDRESS, default 127.0.0.1).")
        parser.add_argument("--only", action="store_true", help="Serve the default receiver only.")
        parser.add_argument("--reload-interval", type=float, default=5.0,
                            help="Seconds between checks of the admin's receivers.")

    def handle(self, *args, **options):
        tmp_root = Path(str(settings.UPLOAD_TMP_ROOT))
        try:
            tmp_root.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=tmp_root).close()
        except OSError as exc:
            raise CommandError(f"UPLOAD_TMP_ROOT {tmp_root} is not writable: {exc.strerror}") from None
        address = options["bind"] or getattr(settings, "DICOM_BIND_ADDRESS", "127.0.0.1")
        default = ReceiverConfig.default(ae_title=options["ae_title"], port=options["port"])
        self._recover()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        servers: dict[int, tuple[tuple, object]] = {}
        try:
            while not stop.is_set():
                self._reconcile(servers, default, address, options["only"])
                stop.wait(options["reload_interval"])
        finally:
            for _, server in servers.values():
                server.shutdown()
            rowbatch.writer_stop()  # the rows of the last files received
            self.stdout.write("DICOM receiver stopped")

    def _recover(self) -> None:
        """Start-up recovery: files a killed receiver left without a row (never acknowledged) get theirs."""
        from prearchive.services.reload import sessions_reconcile

        try:
            adopted = sessions_reconcile()
        except Exception as exc:  # noqa: BLE001 - the database is away: the jobs adopt before they act
            logger.warning("start-up recovery skipped: %s", type(exc).__name__)
            return
        finally:
            close_old_connections()
        if adopted:
            self.stdout.write(f"start-up recovery: {adopted} file(s) without a row adopted")

    def _reconcile(self, servers, default, address, only) -> None:
        close_old_connections()
        try:
            wanted = {c.port: c for c in receiver_configs(default=default, only_default=only)}
        except Exception as exc:  # noqa: BLE001 - keep serving what runs while the database is away
            logger.warning("could not read the receivers: %s", type(exc).__name__)
            return
        finally:
            close_old_connections()
        for port in list(servers):
            signature, server = servers[port]
            if port not in wanted or wanted[port].signature != signature:
                server.shutdown()
                del servers[port]
                self.stdout.write(f"DICOM receiver on port {port} stopped")
        for port, config in wanted.items():
            if port in servers:
                continue
            try:
                servers[port] = (config.signature, server_start(config, address=address))
            except OSError as exc:
                logger.error("DICOM receiver %s could not listen on port %s: %s", config.ae_title, port,
                             exc.strerror)
                continue
            self.stdout.write(f"DICOM receiver {config.ae_title} listening on {address}:{port}")
            self.stdout.flush()
