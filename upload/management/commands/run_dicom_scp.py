"""``manage.py run_dicom_scp [--port N] [--ae-title T] [--bind ADDRESS] [--only] [--processes N]``: the DICOM
receiver.

Serves the default receiver (settings DICOM_AE_TITLE / DICOM_PORT, or the options) and every enabled
receiver defined in the admin; it re-reads the admin's receivers every few seconds, so adding, changing
or disabling one needs no restart. ``--only`` serves the default receiver alone.

``--processes N`` (default: the number of cores on PostgreSQL; 1 on the embedded SQLite, whose one writer at a
time several processes would only queue for) runs N receiver processes under a supervisor
(upload/supervisor.py), all serving the same ports (SO_REUSEPORT: the kernel spreads the associations);
``--processes 1`` is a single process that serves the ports itself.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connections

from prearchive.services import rowbatch
from upload.dicom_scp import ReceiverConfig, receiver_configs, server_start
from upload.supervisor import Supervisor, parent_watch

logger = logging.getLogger("upload.dicom_scp")


def processes_default() -> int:
    """The number of cores this process may run on, on PostgreSQL; 1 on any other database."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 1
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Command(BaseCommand):
    help = "Run the DICOM receiver (C-ECHO, C-STORE) for the default AE and the admin's receivers."
    # The receiver serves DICOM only: the URL and admin checks belong to the web process. What the
    # receiver needs (a writable temporary folder on the prearchive's file system) is checked below.
    requires_system_checks: list = []
    _output_lock = threading.Lock()

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None, help="Default receiver's port (DICOM_PORT).")
        parser.add_argument("--ae-title", default=None, help="Default receiver's AE title (DICOM_AE_TITLE).")
        parser.add_argument("--bind", default=None,
                            help="Address to listen on (DICOM_BIND_ADDRESS, default 127.0.0.1).")
        parser.add_argument("--only", action="store_true", help="Serve the default receiver only.")
        parser.add_argument("--reload-interval", type=float, default=5.0,
                            help="Seconds between checks of the admin's receivers.")
        parser.add_argument("--processes", type=int, default=None,
                            help="Receiver processes serving the same ports (default: the number of cores on "
                                 "PostgreSQL, 1 on SQLite).")
        # A receiver process started by the supervisor: the supervisor's pid (it shares the ports, no recovery).
        parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        tmp_root = Path(str(settings.UPLOAD_TMP_ROOT))
        try:
            tmp_root.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=tmp_root).close()
        except OSError as exc:
            raise CommandError(f"UPLOAD_TMP_ROOT {tmp_root} is not writable: {exc.strerror}") from None
        if options["processes"] is None:
            options["processes"] = processes_default()
        if options["processes"] < 1:
            raise CommandError("--processes must be at least 1")
        address = options["bind"] or getattr(settings, "DICOM_BIND_ADDRESS", "127.0.0.1")
        default = ReceiverConfig.default(ae_title=options["ae_title"], port=options["port"])
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if options["child"] is None:
            self._recover()
        if options["child"] is None and options["processes"] > 1:
            self._supervise(options, stop)
            return
        alive = parent_watch(options["child"]) if options["child"] is not None else (lambda: True)
        servers: dict[int, tuple[tuple, object]] = {}
        try:
            while not stop.is_set() and alive():
                self._reconcile(servers, default, address, options["only"], shared=options["child"] is not None)
                stop.wait(options["reload_interval"])
        finally:
            for _, server in servers.values():
                server.shutdown()
            rowbatch.writer_stop()  # the rows of the last files received
            self._say("DICOM receiver stopped")

    def _say(self, line: str) -> None:
        with self._output_lock:
            self.stdout.write(line)
            self.stdout.flush()

    def _supervise(self, options, stop: threading.Event) -> None:
        """N receiver processes (upload/supervisor.py); no database connection is kept across their start."""
        connections.close_all()
        command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "run_dicom_scp",
                   "--reload-interval", str(options["reload_interval"])]
        for name in ("port", "ae_title", "bind"):
            if options[name] is not None:
                command += [f"--{name.replace('_', '-')}", str(options[name])]
        if options["only"]:
            command.append("--only")
        if options["verbosity"] != 1:
            command += ["--verbosity", str(options["verbosity"])]
        Supervisor(processes=options["processes"], command=command, say=self._say).run(stop)
        self._say("DICOM receiver stopped")

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
            self._say(f"start-up recovery: {adopted} file(s) without a row adopted")

    def _reconcile(self, servers, default, address, only, *, shared: bool = False) -> None:
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
                self._say(f"DICOM receiver on port {port} stopped")
        for port, config in wanted.items():
            if port in servers:
                continue
            try:
                servers[port] = (config.signature, server_start(config, address=address, shared_port=shared))
            except OSError as exc:
                logger.error("DICOM receiver %s could not listen on port %s: %s", config.ae_title, port,
                             exc.strerror)
                continue
            self._say(f"DICOM receiver {config.ae_title} listening on {address}:{port}")
