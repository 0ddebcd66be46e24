"""Settings for the worker, beat and receiver of the hardening tests: the Session Idle Time (minutes in
SiteConfig) counts in seconds, builds may be slowed so a worker can be killed midway, and queued jobs whose
broker message was lost are re-queued after a few seconds instead of minutes."""
import os

from xnatlite.settings import *  # noqa: F401,F403

PREARCHIVE_IDLE_UNIT_SECONDS = 1
PREARCHIVE_TEST_BUILD_DELAY = float(os.environ.get("XNATLITE_TEST_BUILD_DELAY", "0"))
PREARCHIVE_QUEUED_STALE_SECONDS = 5
