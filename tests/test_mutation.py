"""The mutation report's arithmetic: only a failing test kills a mutant."""

from __future__ import annotations

from mutation import KILLED_STATUSES, not_killed


def test_no_tests_and_suspicious_mutants_are_not_counted_as_killed() -> None:
    # the lines of `mutmut results --all true` (mutmut 3), one status of each kind
    listed = ["    rlbreakout.env_ids.x_f__mutmut_1: killed", "    rlbreakout.env_ids.x_f__mutmut_2: survived",
              "    rlbreakout.env_ids.x_g__mutmut_1: no tests", "    rlbreakout.env_ids.x_g__mutmut_2: timeout",
              "    rlbreakout.env_ids.x_g__mutmut_3: suspicious", "    rlbreakout.env_ids.x_h__mutmut_1: segfault",
              "", "some other line"]
    total, alive = not_killed(listed)
    assert total == 6
    assert alive == {"rlbreakout.env_ids.x_f__mutmut_2": "survived", "rlbreakout.env_ids.x_g__mutmut_1": "no tests",
                     "rlbreakout.env_ids.x_g__mutmut_3": "suspicious"}
    assert set(KILLED_STATUSES) == {"killed", "timeout", "segfault"}
