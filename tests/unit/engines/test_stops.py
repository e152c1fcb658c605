"""`StopScanner` (engines/stops.py): output is cut exactly before the first stop string, however
the text is split into pushes, and text that might start a stop string is held back until decided."""

from __future__ import annotations

import pytest

from gpucloud.engines.stops import StopScanner


def run(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    scanner = StopScanner(stops)
    out = ""
    for piece in pieces:
        text, stopped = scanner.push(piece)
        out += text
        if stopped:
            return out, True
    return out + scanner.release(), False


def test_without_stops_text_passes_through_unheld() -> None:
    scanner = StopScanner([])
    assert scanner.push("abc") == ("abc", False)
    assert scanner.release() == ""


def test_empty_stop_strings_are_ignored() -> None:
    assert run(["", ""], ["hello"]) == ("hello", False)


@pytest.mark.parametrize("split", range(1, 12))
def test_a_stop_split_anywhere_cuts_at_the_same_place(split: int) -> None:
    text = "one two STOP three"
    assert run(["STOP"], [text[:split], text[split:]]) == ("one two ", True)


def test_a_stop_split_over_single_characters_is_never_partly_emitted() -> None:
    scanner = StopScanner(["<end>"])
    emitted = ""
    for ch in "ab<en":
        text, stopped = scanner.push(ch)
        assert not stopped
        emitted += text
    assert emitted == "ab"  # "<en" is held: it may still become "<end>"
    assert scanner.push("d>tail") == ("", True)


def test_the_earliest_of_several_stops_wins() -> None:
    assert run(["zz", "b"], ["a b zz"]) == ("a ", True)


def test_held_text_is_released_when_it_does_not_become_a_stop() -> None:
    scanner = StopScanner(["xyz"])
    assert scanner.push("abxy") == ("ab", False)
    assert scanner.push("q") == ("xyq", False)
    assert scanner.push("x") == ("", False)
    assert scanner.release() == "x"
    assert scanner.release() == ""  # released once


def test_a_stop_at_the_very_start_emits_nothing() -> None:
    assert run(["A"], ["A long text"]) == ("", True)
