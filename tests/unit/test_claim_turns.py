"""Claims of one run take turns in each server process; claims of other runs do not wait."""

from __future__ import annotations

import threading

from taskfarm.adapters.sqlalchemy.claim_turns import ClaimTurns

#: Long enough for a thread that is not held back to get in, on a busy machine.
GET_IN_SECONDS = 2


def _enter(turns: ClaimTurns, run: str, entered: threading.Event, leave: threading.Event) -> None:
    with turns.turn(run):
        entered.set()
        leave.wait()


def test_claims_of_a_run_beyond_the_limit_wait_while_other_runs_go_on() -> None:
    turns = ClaimTurns(at_once=2)
    leave = threading.Event()
    entered = [threading.Event() for _ in range(4)]
    runs = ["a", "a", "a", "b"]
    threads = [
        threading.Thread(target=_enter, args=(turns, run, event, leave))
        for run, event in zip(runs, entered, strict=True)
    ]
    try:
        for thread, event in zip(threads[:2], entered[:2], strict=True):
            thread.start()
            assert event.wait(GET_IN_SECONDS)
        threads[2].start()
        threads[3].start()

        assert entered[3].wait(GET_IN_SECONDS)  # another run: not held back
        assert not entered[2].wait(GET_IN_SECONDS / 4)  # a third claim of run a waits
    finally:
        leave.set()
        for thread in threads:
            thread.join()
    assert entered[2].is_set()
