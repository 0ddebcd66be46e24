"""`manage.py check --deploy` is clean when configured for production."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def _check(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_overrides)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_production_configuration_passes_deploy_check(tmp_path):
    result = _check({"DEBUG": "False", "HTTPS": "True", "ALLOWED_HOSTS": "xnat.example.org",
                     "SECRET_KEY": "k" * 20 + "-production-secret-key-with-plenty-of-entropy-93jf8",
                     "XNATLITE_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_plain_http_configuration_is_flagged(tmp_path):
    result = _check({"DEBUG": "False", "HTTPS": "False", "ALLOWED_HOSTS": "xnat.example.org",
                     "SECRET_KEY": "k" * 60, "XNATLITE_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stdout + result.stderr
