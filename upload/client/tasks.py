"""Celery tasks of the uploader client: thin (a transfer id in, one service call)."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="upload.client.transfer_inspect", ignore_result=True, acks_late=True)
def transfer_inspect(transfer_id: str) -> None:
    from upload.client.services import transfer_inspect as inspect

    inspect(transfer_id=transfer_id)


@shared_task(name="upload.client.transfer_import", ignore_result=True, acks_late=True)
def transfer_import(transfer_id: str) -> None:
    from upload.client.importer import transfer_import as run

    run(transfer_id=transfer_id)


@shared_task(name="upload.client.transfers_cleanup", ignore_result=True, acks_late=True)
def transfers_cleanup() -> None:
    from upload.client.services import transfers_cleanup as cleanup

    cleanup()
