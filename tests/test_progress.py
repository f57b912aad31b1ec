"""Progress lines where no terminal shows a bar."""

from __future__ import annotations

import io

from rlbreakout.progress import MAX_STEPS_BETWEEN_LINES, ProgressLine, on_terminal, steps_between_lines


def test_a_line_at_every_mark_with_steps_rate_and_last_scores() -> None:
    stream = io.StringIO()
    progress = ProgressLine(1_000, every=250, enabled=True, stream=stream)
    assert progress.update(100) is None
    line = progress.update(260, scores=[1, 2, 3, 4, 5, 6, 7])
    assert line is not None and line.startswith("step 260/1,000 (26%)") and "steps/s" in line
    assert line.endswith("last games: 3 4 5 6 7")  # the last five
    assert progress.update(300) is None  # the next mark is 500
    progress.update(1_000)
    assert len(stream.getvalue().splitlines()) == 2


def test_disabled_on_a_terminal_and_spacing_of_lines() -> None:
    assert ProgressLine(100, enabled=False).update(100) is None
    assert on_terminal(io.StringIO()) is False
    assert steps_between_lines(1_000) == 100  # a tenth of a short run
    assert steps_between_lines(10_000_000) == MAX_STEPS_BETWEEN_LINES
    assert steps_between_lines(3) == 1


def test_a_resumed_run_counts_its_rate_from_its_first_step() -> None:
    progress = ProgressLine(200, every=50, enabled=True, stream=io.StringIO(), start_step=100)
    assert progress.update(120) is None
    assert progress.update(150).startswith("step 150/200 (75%)")
