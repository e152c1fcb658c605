"""Batch input lines: each rule of the format refuses its own mistake with the line's number,
and `LineChecker` finds them however the upload is split into chunks."""

from __future__ import annotations

import orjson
import pytest

from gpucloud.errors import InvalidRequest
from gpucloud.files.jsonl import MAX_CUSTOM_ID, LineChecker, parse_batch_line


def _line(custom_id: object = "a", **fields: object) -> bytes:
    value = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": []},
    }
    return orjson.dumps(value | fields)


def test_a_good_line_parses() -> None:
    line = parse_batch_line(_line("req-1", url="/v1/embeddings", body={"model": "e", "input": "x"}), 1)
    assert (line.custom_id, line.url, line.body) == ("req-1", "/v1/embeddings", {"model": "e", "input": "x"})


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_line(""), "custom_id"),
        (_line(7), "custom_id"),
        (_line("x" * (MAX_CUSTOM_ID + 1)), "custom_id"),
        (_line(method="GET"), "method"),
        (_line(url="/v1/models"), "url must be one of"),
        (_line(body={"messages": []}), "string 'model'"),
        (_line(body=[]), "string 'model'"),
        (_line(body={"model": "m", "stream": True}), "cannot stream"),
    ],
)
def test_each_mistake_is_named_with_its_line(raw: bytes, why: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_batch_line(raw, 42)
    assert refused.value.message.startswith("Line 42 of the batch input file is invalid")
    assert why in refused.value.message
    assert (refused.value.code, refused.value.param) == ("invalid_batch_line", "file")


def test_the_longest_custom_id_and_a_false_stream_are_accepted() -> None:
    parse_batch_line(_line("x" * MAX_CUSTOM_ID, body={"model": "m", "stream": False}), 1)


def test_lines_split_across_any_chunks_are_checked_and_kept() -> None:
    data = b"\n".join([_line("a"), b"", _line("b"), b"   ", _line("c")])
    for size in (1, 7, len(data)):
        checker = LineChecker(10, keep=True)
        for start in range(0, len(data), size):
            checker.feed(data[start : start + size])
        assert checker.finish() == 3
        assert [line.custom_id for line in checker.kept or []] == ["a", "b", "c"]
        assert checker.number == 5  # blank lines are counted, so errors name the right line


def test_a_duplicate_custom_id_names_the_later_line() -> None:
    checker = LineChecker(10)
    with pytest.raises(InvalidRequest, match=r"Line 3 .* 'a' is used by an earlier line"):
        checker.feed(_line("a") + b"\n" + _line("b") + b"\n" + _line("a") + b"\n")


def test_too_many_requests_and_an_empty_file_are_refused() -> None:
    checker = LineChecker(2)
    checker.feed(_line("a") + b"\n" + _line("b") + b"\n")
    checker.feed(_line("c"))  # not a whole line yet
    with pytest.raises(InvalidRequest) as many:
        checker.finish()
    assert many.value.code == "too_many_lines"
    empty = LineChecker(2)
    empty.feed(b"\n\n  \n")
    with pytest.raises(InvalidRequest) as none:
        empty.finish()
    assert none.value.code == "empty_file"
    assert LineChecker(1).kept is None
