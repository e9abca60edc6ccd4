"""Formatting a capture time never fails, whatever the capture held (issue 14: timestamps beyond what
time.gmtime handles ended in an internal error)."""

from __future__ import annotations

import math

import pytest

from analyzer.base.times import clock


def test_a_capture_time_reads_as_utc_clock_time_with_milliseconds():
    assert clock(1_777_629_612.1234) == "10:00:12.123"


@pytest.mark.parametrize("t", [-1.0, 1e300, math.inf, -math.inf, math.nan, 2.6e11])
def test_a_time_that_is_no_date_is_shown_as_the_number_not_an_error(t):
    assert clock(t) == repr(t)


def test_no_time_is_a_question_mark():
    assert clock(None) == "?"
