"""The whole suite runs in UTC: text outputs show local times (``TZ``), and what a test expects of them must
not depend on the machine's zone. Tests of other zones set ``TZ`` themselves (``tests/test_times.py``)."""

import os
import time

os.environ["TZ"] = "UTC"
time.tzset()
