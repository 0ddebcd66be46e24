"""xnatlite settings: every service is picked by environment variables, read once here.

With no environment set, xnatlite runs on the embedded default: SQLite and the file trees under
``var/``, and a file-system Celery broker, so that the README's run command works on a bare machine.
"""
from __future__ import annotations

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("XNATLITE_VAR_DIR") or BASE_DIR / "var")

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    # Embedded default: a per-installation key kept under var/, never a key in the source.
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        _key_file.write_text(secrets.token_urlsafe(50))
        _key_file.chmod(0o600)
    SECRET_KEY = _key_file.read_text().strip()
# The key of the keyed hashes (HMAC) that stand for original identifiers (script memos, residual-PHI check);
# empty: derived from SECRET_KEY. Every process of a site must share it.
PHI_HMAC_SECRET = env.str("PHI_HMAC_SECRET", default="")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_celery_beat",
    "xnatlite",
    "anonymization",
    "prearchive",
    "upload",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "xnatlite.auth.XnatAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "xnatlite.urls"
WSGI_APPLICATION = "xnatlite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "xnatlite.context_processors.site_ui",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'xnatlite.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker, beat and the DICOM receiver share one file: wait for locks, write-ahead log.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = ["xnatlite.auth.ThrottledModelBackend"]
# Password guessing: after this many failed logins for one user name within the window, further
# attempts are refused until the window has passed.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)

# The cache holds login-failure counters and short-lived locks; shared between processes when Redis is
# the broker.
_CACHE_URL = env.str("CACHE_URL", default="")
if not _CACHE_URL and env.str("CELERY_BROKER_URL", default="").startswith("redis://"):
    _CACHE_URL = env.str("CELERY_BROKER_URL")
if _CACHE_URL.startswith("redis://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _CACHE_URL,
                          "KEY_PREFIX": "xnatlite"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static_root")
Path(str(STATIC_ROOT)).mkdir(parents=True, exist_ok=True)
# Serve app static files straight from their folders too, so a missed collectstatic never breaks pages.
WHITENOISE_USE_FINDERS = True

# XNAT keeps its login page here, and XNAT clients (xnatpy) expect it there.
LOGIN_URL = "/app/template/Login.vm"
LOGIN_REDIRECT_URL = "/prearchive/"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# File trees: the prearchive (incoming, under review) and the archive.
PREARCHIVE_ROOT = env.path("PREARCHIVE_ROOT", default=VAR_DIR / "prearchive")
ARCHIVE_ROOT = env.path("ARCHIVE_ROOT", default=VAR_DIR / "archive")
# Temporary uploads; kept on the prearchive's file system so that renames are atomic.
UPLOAD_TMP_ROOT = env.path("UPLOAD_TMP_ROOT", default=Path(str(PREARCHIVE_ROOT)) / ".incoming")

DICOM_AE_TITLE = env.str("DICOM_AE_TITLE", default="XNATLITE")
DICOM_PORT = env.int("DICOM_PORT", default=8104)
# Session Idle Time is in minutes (XNAT); tests shorten the unit to run the idle checker in seconds.
PREARCHIVE_IDLE_UNIT_SECONDS = env.int("PREARCHIVE_IDLE_UNIT_SECONDS", default=60)
# The receiver listens on loopback unless told otherwise; set 0.0.0.0 where scanners must reach it.
DICOM_BIND_ADDRESS = env.str("DICOM_BIND_ADDRESS", default="127.0.0.1")
# PostgreSQL: the receiver commits the rows of files for sessions it knows together (group commit,
# prearchive/services/rowbatch.py), waiting at most this many seconds for more; each C-STORE is answered
# only once its own row is committed. 0 commits each row on its own.
DICOM_RECEIVER_ROW_BATCH_SECONDS = env.float("DICOM_RECEIVER_ROW_BATCH_SECONDS", default=0.1)
# Every association writes its files' rows in its own transactions (the session row in share mode), not
# through the one row writer (prearchive/services/rowbatch.py).
DICOM_RECEIVER_OWN_TRANSACTIONS = env.bool("DICOM_RECEIVER_OWN_TRANSACTIONS", default=True)
# fsync each received file's bytes before it is renamed into place and its row written
# (prearchive/services/storage.py). Off by default: a killed process or a database crash loses nothing
# either way (files without a row are adopted); a power loss or kernel crash is not covered without it (and
# the folder entry itself is not synced even with it).
PREARCHIVE_FSYNC = env.bool("PREARCHIVE_FSYNC", default=False)
# A DICOM file in the Deflated transfer syntax (C-STORE, REST import, zip entries) is refused when its dataset
# inflates to more than this, or to more than uploadMaxBytes (prearchive/services/headers.py).
DICOM_INFLATED_MAX_BYTES = env.int("DICOM_INFLATED_MAX_BYTES", default=256 * 1024 * 1024)

# The JSESSIONID token of POST /data/JSESSION lives as long as an idle Django session.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_SAVE_EVERY_REQUEST = False

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Celery. Embedded default: a file-system broker under var/, so worker and beat run with no server.
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The pool (docs/durability.md): the embedded broker has no event loop, so prefork there is billiard's
# blocking pool, whose children share one queue lock: a child killed while holding it (an idle child waits
# holding it) stops every job and the master no longer stops on SIGTERM. The threads pool has no child to
# lose. On Redis prefork runs the asynchronous pool (a pipe per child): a dead child is replaced and its job
# redelivered (acks_late + reject_on_worker_lost above).
CELERY_WORKER_POOL = env.str("CELERY_WORKER_POOL",
                             default="threads" if CELERY_BROKER_URL.startswith("filesystem://") else "prefork")
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3900)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Beat wakes at least every second, so a changed idle-check interval is seen at once.
CELERY_BEAT_MAX_LOOP_INTERVAL = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_IMPORTS = ("xnatlite.archive.tasks", "upload.client.tasks")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"pynetdicom": {"level": "WARNING"}, "django.db.backends": {"level": "WARNING"}},
}
# pydicom/pynetdicom quote header values (possibly PHI) in warnings: redacted in every process.
from xnatlite.logredact import install as _redact_library_logs  # noqa: E402

_redact_library_logs()

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    CSRF_COOKIE_HTTPONLY = False
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    if env.bool("HTTPS", default=False):
        SESSION_COOKIE_SECURE = True
        CSRF_COOKIE_SECURE = True
        SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
        SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
        SECURE_HSTS_INCLUDE_SUBDOMAINS = True
        SECURE_HSTS_PRELOAD = True
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# XNAT clients carry the session token of POST /data/JSESSION in a cookie named JSESSIONID.
SESSION_COOKIE_NAME = "JSESSIONID"

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default cannot enforce NULLS NOT DISTINCT; PostgreSQL (production, tests) does.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]
