"""Flag value types: numbers in a declared range and paths of the right kind, checked while argparse parses."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from rlbreakout.flag_types import input_file, input_folder, number, output_file, output_folder, whole


def parse(flag_type: object, value: str) -> object:
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=flag_type)
    return parser.parse_args([f"--x={value}"]).x


@pytest.mark.parametrize("value, expected", [("5", 5), ("1e6", 1_000_000), ("+7", 7), ("10", 10)])
def test_whole_reads_whole_numbers_and_their_exponent_form(value: str, expected: int) -> None:
    assert parse(whole(1, 10**7), value) == expected


@pytest.mark.parametrize("value", ["abc", "1.5", "0", "-1", "11", str(10**30), "inf", "nan"])
def test_whole_refuses_what_is_not_in_its_range(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(whole(1, 10), value)
    err = capsys.readouterr().err
    assert "argument --x:" in err and "from 1 to 10" in err


def test_whole_s_message_names_the_range_as_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(whole(1, 10), "0")
    assert "argument --x: 0 is out of range; give a whole number from 1 to 10" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-0.5", "1.5", "nan", "inf", "-inf", "abc"])
def test_number_with_an_open_end(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(number(0, 1, low_open=True), value)
    assert "> 0 and <= 1" in capsys.readouterr().err


def test_number_accepts_its_closed_end_and_any_finite_value_unbounded() -> None:
    assert parse(number(0, 1, low_open=True), "1") == 1.0
    assert parse(number(), "-1e9") == -1e9
    assert repr(number(0, 1, high_open=True)) == "number(>= 0 and < 1)"


def test_output_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert output_folder(str(tmp_path / "new" / "deeper")) == str(tmp_path / "new" / "deeper")
    assert output_file(str(tmp_path / "new" / "x.png")) == str(tmp_path / "new" / "x.png")
    for flag_type, value, words in [(output_folder, str(a_file), "is a file, not a folder"),
                                    (output_folder, str(a_file / "sub"), "is a file, not a folder"),
                                    (output_file, str(tmp_path), "is a folder"),
                                    (output_file, str(a_file / "x.png"), "is a file, not a folder")]:
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            flag_type(value)


def test_input_paths(tmp_path: Path) -> None:
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert input_file(str(a_file)) == str(a_file) and input_folder(str(tmp_path)) == str(tmp_path)
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist"):
        input_file(str(tmp_path / "missing"))
    with pytest.raises(argparse.ArgumentTypeError, match="is a folder"):
        input_file(str(tmp_path))
    with pytest.raises(argparse.ArgumentTypeError, match="is a file"):
        input_folder(str(a_file))
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist"):
        input_folder(str(tmp_path / "missing"))
