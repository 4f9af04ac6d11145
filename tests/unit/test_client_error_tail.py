"""What `taskfarm work` keeps of a failed command's error output, to send with its failure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from taskfarm.client.error_tail import MAX_ERROR_BYTES, ErrorTail


def tail_of(*lines: bytes, limit: int = MAX_ERROR_BYTES) -> str:
    tail = ErrorTail(limit)
    for line in lines:
        tail.add(line)
    return tail.text()


def test_short_error_output_is_kept_whole() -> None:
    assert tail_of(b"warming up\n", b"ValueError: bad\n") == "warming up\nValueError: bad\n"


def test_long_error_output_keeps_its_last_lines_within_the_limit() -> None:
    lines = [f"line {i}\n".encode() for i in range(2000)]

    kept = tail_of(*lines)

    assert kept.endswith("line 1999\n")
    assert len(kept.encode()) <= MAX_ERROR_BYTES
    assert kept.startswith("line ")  # whole lines only


def test_a_single_huge_line_is_cut_from_its_start_at_a_character() -> None:
    kept = tail_of(("é" * 5000).encode() + b"\n", limit=101)

    assert kept == "é" * 50 + "\n"


def test_undecodable_bytes_and_nul_do_not_reach_the_server() -> None:
    assert tail_of(b"bad \xff byte\x00\n") == "bad \ufffd byte\n"


#: Lines as a command's error output is read: whatever bytes, each ending in a newline.
_LINES = st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=40)


@given(_LINES, st.integers(4, 500))
def test_the_tail_always_fits_and_ends_as_the_output_did(lines: list[bytes], limit: int) -> None:
    kept = tail_of(*lines, limit=limit)

    assert len(kept.encode()) <= limit
    whole = b"".join(lines).decode("utf-8", "replace").replace("\x00", "")
    assert whole.endswith(kept)
