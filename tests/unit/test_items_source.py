"""Reading items from files and ranges: formats, and a clear error for every bad input."""

import json
from pathlib import Path

import pytest

from wq.base.errors import ConfigError
from wq.seed.items_source import ItemRange, read_items_file


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


def test_a_chart_values_file_gives_its_items(tmp_path: Path) -> None:
    """`wq digest --items-file values.yaml` must see the items the chart seeds from it."""
    f = tmp_path / "values.yaml"
    f.write_text("worker:\n  parallelism: 4\nitems:\n  - a\n  - src: x\n  - 3\n")
    assert decoded(f) == ["a", {"src": "x"}, 3]
    other = tmp_path / "other.yaml"
    other.write_text("worker:\n  parallelism: 4\nitems: not-a-list\n")
    with pytest.raises(ConfigError, match="or a mapping whose `items` is that list"):
        read_items_file(other)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("i.json", '{"a": 1}', r"must hold a list of items \(or .*\), not a dict"),
        ("i.json", "[1, 2", "is not valid JSON"),
        ("i.yaml", "- a\n b: [", "is not valid YAML"),
        ("i.yaml", "just a string", r"must hold a list of items \(or .*\), not a str"),
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
    [("0:5", [0, 1, 2, 3, 4]), ("1:10:4", [1, 5, 9]), ("3:0:-1", [3, 2, 1]), ("2:3:9", [2])],
)
def test_ranges(text: str, expected: list[int]) -> None:
    r = ItemRange.parse(text)
    assert list(range(r.start, r.end, r.step)) == expected
    assert r.count == len(expected)


INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("text", "count", "last"),
    [
        (f"-{INT64_MAX}:{INT64_MAX}", 2**64 - 2, INT64_MAX - 1),
        (f"{INT64_MAX}:-{INT64_MAX}:-1", 2**64 - 2, -INT64_MAX + 1),
        (f"0:{INT64_MAX}:{INT64_MAX}", 1, 0),
        (f"-{INT64_MAX}:{INT64_MAX}:{INT64_MAX}", 2, 0),
        (f"{INT64_MAX - 1}:{INT64_MAX}", 1, INT64_MAX - 1),
    ],
)
def test_ranges_up_to_the_64_bit_bounds_are_exact(text: str, count: int, last: int) -> None:
    """More items than Python's len() takes (2**63 - 1), every one a signed 64-bit integer."""
    r = ItemRange.parse(text)
    assert r.count == count
    assert r.start + (r.count - 1) * r.step == last
    assert range(r.start, r.end, r.step)[-1] == last


@pytest.mark.parametrize("text", ["0:7", "7:0:-1", "0:7:3", "-5:6:4", "6:-5:-4", "1:2:9"])
def test_range_count_is_python_range_length(text: str) -> None:
    r = ItemRange.parse(text)
    assert r.count == len(range(r.start, r.end, r.step))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", "not START:END"),
        ("a:b", "must be integers"),
        ("0:9:0", "must not be 0"),
        ("1:2:3:4", "not START:END"),
        ("0:1e23", "must be integers"),
        ("2:2", "'2:2' holds no items"),
        ("10:0", "'10:0' holds no items"),
        ("0:10:-1", "'0:10:-1' holds no items"),
        ("0:1_000", "must be integers"),
        ("0:\u0661\u0660", "must be integers"),  # Arabic-Indic digits: int() takes them
        ("0:99999999999999999999", "END 99999999999999999999 is outside the signed 64-bit"),
        (f"-{INT64_MAX + 1}:0", f"START -{INT64_MAX + 1} is outside the signed 64-bit"),
        (f"0:{INT64_MAX + 1}", f"END {INT64_MAX + 1} is outside the signed 64-bit"),
        (f"0:9:{INT64_MAX + 1}", f"STEP {INT64_MAX + 1} is outside the signed 64-bit"),
        ("0:" + "9" * 5000, "END 99999999999999999999... is outside the signed 64-bit"),
    ],
)
def test_bad_ranges(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ItemRange.parse(text)
