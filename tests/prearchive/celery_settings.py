"""Settings for the worker and beat of the prearchive integration tests: the Session Idle Time (minutes in
SiteConfig) counts in seconds, and builds may be slowed so a file can arrive during one."""
import os

from xnatlite.settings import *  # noqa: F401,F403

PREARCHIVE_IDLE_UNIT_SECONDS = 1
PREARCHIVE_TEST_BUILD_DELAY = float(os.environ.get("XNATLITE_TEST_BUILD_DELAY", "0"))
