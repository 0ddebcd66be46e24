"""``python tests/hardening/fault_worker.py worker ...``: a Celery worker with one fault hook, for the
fault tests only (never imported by the application).

XNATLITE_FAULT_PAUSE_AFTER=module:function makes that function, after it returns, touch the file named by
XNATLITE_FAULT_FLAG and sleep, so a test can SIGKILL the worker at exactly that point of a job (e.g. after
a move renamed the session folder and before the database says so)."""
from __future__ import annotations

import functools
import importlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _install_hook(**_kwargs) -> None:
    target = os.environ.get("XNATLITE_FAULT_PAUSE_AFTER")
    if not target:
        return
    module_name, func_name = target.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, func_name)

    @functools.wraps(original)
    def paused(*args, **kwargs):
        result = original(*args, **kwargs)
        Path(os.environ["XNATLITE_FAULT_FLAG"]).touch()
        time.sleep(120)
        return result

    setattr(module, func_name, paused)


if __name__ == "__main__":
    from celery.signals import worker_ready

    worker_ready.connect(_install_hook, weak=False)
    from celery.__main__ import main

    sys.argv = ["celery", "-A", "xnatlite", *sys.argv[1:]]
    sys.exit(main())
