"""SQLite writers take turns through locks of their own, across threads and processes."""

from __future__ import annotations

import fcntl
import multiprocessing
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from taskfarm.adapters.sqlalchemy.writer_turns import SqliteWriterTurns

#: Long enough for a thread that is not held back to get in, on a busy machine.
GET_IN_SECONDS = 2


def test_a_writer_waits_while_another_thread_has_its_turn(tmp_path: Path) -> None:
    turns = SqliteWriterTurns(str(tmp_path / "farm.db"))
    second_in = threading.Event()

    def second_writer() -> None:
        with turns.turn():
            second_in.set()

    with turns.turn():
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert not second_in.wait(GET_IN_SECONDS)
    assert second_in.wait(GET_IN_SECONDS * 10)
    thread.join()


def _hold_turn(database: str, held: Connection, release: Connection) -> None:
    with SqliteWriterTurns(database).turn():
        held.send("held")
        release.recv()


def test_a_writer_in_another_process_holds_the_lock_beside_the_database(tmp_path: Path) -> None:
    database = str(tmp_path / "farm.db")
    held_reader, held_writer = multiprocessing.Pipe(duplex=False)
    release_reader, release_writer = multiprocessing.Pipe(duplex=False)
    other = multiprocessing.get_context("spawn").Process(
        target=_hold_turn, args=(database, held_writer, release_reader)
    )
    other.start()
    try:
        assert held_reader.poll(60)
        with open(f"{database}.writer-lock", "rb") as lock_file:
            with pytest.raises(BlockingIOError):
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            release_writer.send("go")
            other.join(60)
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        other.kill()
        other.join()
