"""A condition against the baseline on one task (classit/study/differences.py): when a difference counts as real."""

from dataclasses import replace

from classit.study.differences import Difference


def test_a_difference_is_real_when_its_interval_excludes_zero_and_its_test_agrees():
    higher = Difference("merged", "blimp", baseline=60.0, value=65.0, low=1.0, high=9.0, p=0.01)
    assert higher.diff == 5.0 and higher.real
    assert replace(higher, value=55.0, low=-9.0, high=-1.0).real  # lower, as real
    assert not replace(higher, low=-1.0).real  # the interval holds 0
    assert not replace(higher, p=0.2).real  # the test does not agree
    assert not Difference("merged", "reading/eye_tracking", 1.0, 2.0).real  # no interval, no test
