"""Reading items from files and ranges: formats, and a clear error for every bad input."""

import json
from pathlib import Path

import pytest

from wq.errors import ConfigError
from wq.items_source import ItemRange, read_items_file


def decoded(path: Path, fmt: str | None = None) -> list[object]:
    return [json.loads(i) for i in read_items_file(path, fmt)]


def test_lines_keep_everything_but_the_line_end(tmp_path: Path) -> None:
    f = tmp_path / "items.txt"
    f.write_text('a,b\n "quoted" \n😀\r\nlast', encoding="utf-8")
    assert decoded(f) == ["a,b", ' "quoted" ', "😀", "last"]


def test_empty_lines_file_is_an_empty_run(tmp_path: Path) -> None:
    f = tmp_path / "items.txt"
    f.write_text("")
    assert decoded(f) == []


def test_blank_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    f = tmp_path / "items.txt"
    f.write_text("a\n\nb\n")
    with pytest.raises(ConfigError, match=r"line 2 is blank"):
        read_items_file(f)


@pytest.mark.parametrize(
    ("name", "text"),
    [("i.json", '["a", {"src": "x"}, 3]'), ("i.yaml", "- a\n- src: x\n- 3\n")],
)
def test_json_and_yaml_lists(tmp_path: Path, name: str, text: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    assert decoded(f) == ["a", {"src": "x"}, 3]


def test_format_flag_overrides_the_extension(tmp_path: Path) -> None:
    f = tmp_path / "items.txt"
    f.write_text('["a", "b"]')
    assert decoded(f, "json") == ["a", "b"]
    assert decoded(f) == ['["a", "b"]']


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("i.json", '{"a": 1}', "must hold a list of items, not a dict"),
        ("i.json", "[1, 2", "is not valid JSON"),
        ("i.yaml", "- a\n b: [", "is not valid YAML"),
        ("i.yaml", "just a string", "must hold a list of items, not a str"),
    ],
)
def test_bad_documents(tmp_path: Path, name: str, content: str, message: str) -> None:
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(ConfigError, match=message):
        read_items_file(f)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_items_file(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="is a directory"):
        read_items_file(tmp_path)
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_items_file(binary)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0:5", [0, 1, 2, 3, 4]), ("1:10:4", [1, 5, 9]), ("3:0:-1", [3, 2, 1]), ("2:2", [])],
)
def test_ranges(text: str, expected: list[int]) -> None:
    r = ItemRange.parse(text)
    assert list(range(r.start, r.end, r.step)) == expected
    assert len(r) == len(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", "not START:END"),
        ("a:b", "must be integers"),
        ("0:9:0", "must not be 0"),
        ("1:2:3:4", "not START:END"),
    ],
)
def test_bad_ranges(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ItemRange.parse(text)
