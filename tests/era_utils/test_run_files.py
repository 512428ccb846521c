"""The run files' one definition and one strict CSV rule, shared by the agents' logs and the aggregation."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from era_utils.run_files import (
    ENTROPY_LOG,
    EPISODES_LOG,
    EVALUATIONS_LOG,
    RUN_LOGS,
    CSVLog,
    read_strict_rows,
)

REPO = Path(__file__).resolve().parents[2]


def test_run_files_imports_neither_torch_nor_tensorboard_nor_pandas() -> None:
    code = "import sys, era_utils.run_files; print(sorted({'torch', 'tensorboard', 'pandas'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_log_written_by_csvlog_reads_back_without_problems(tmp_path: Path) -> None:
    rows = {
        EPISODES_LOG: [[10, -5.5, 200], [10, -4.0, 200], [30, 1.0, 7]],  # two envs ending on step 10
        EVALUATIONS_LOG: [[100, 2.0, 1.0, 10], [200, 3.0, 0.5, 10]],
        ENTROPY_LOG: [[100, -3.0, -2.7, -2.5, -2.0, -2.9, 0.1], [200, "", "", -2.5, -2.0, -2.9, ""]],
    }
    for log in RUN_LOGS:
        csv_log = CSVLog(tmp_path / log.name, log.header)
        for row in rows[log]:
            csv_log.write(row)
        csv_log.close()
        read = log.read(tmp_path)
        assert read.problems == [] and not read.cut_off
        # An empty optional cell reads as NaN (compared here as "").
        assert [["" if math.isnan(value) else value for value in row] for row in read.rows] == rows[log]
        assert "".join([read.header_line, *read.lines]) == (tmp_path / log.name).read_text()


def test_repeated_steps_are_valid_only_where_the_log_allows_them(tmp_path: Path) -> None:
    episodes = tmp_path / "episodes.csv"
    episodes.write_text("global_step,episodic_return,episodic_length\n10,1.0,5\n10,2.0,5\n9,3.0,5\n")
    problems = [str(problem) for problem in EPISODES_LOG.read(tmp_path).problems]
    assert problems == [f"{episodes}:4: global_step 9 does not come after the previous row's 10"]
    read = read_strict_rows(episodes, EPISODES_LOG.header, EPISODES_LOG.integer_columns)  # without repeated_steps
    assert [problem.line for problem in read.problems] == [3, 4]


@pytest.mark.parametrize(
    ("text", "cut_off", "lines"),
    [("h\n1\n2", True, 3), ("h\n1\n", False, 2), ("", False, 0)],
)
def test_cut_off_says_whether_the_last_line_lacks_its_line_break(
    tmp_path: Path, text: str, cut_off: bool, lines: int
) -> None:
    (tmp_path / "x.csv").write_text(text)
    read = read_strict_rows(tmp_path / "x.csv", ("h",), integer_columns=("h",))
    assert (read.cut_off, read.num_lines) == (cut_off, lines)
