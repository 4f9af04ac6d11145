"""What `taskfarm work` makes of its command line and of what its commands print."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskfarm.client.api import Claim
from taskfarm.client.commands import CommandTemplate
from taskfarm.client.progress import parse_progress
from taskfarm.entrypoints.cli.options import parse_duration
from taskfarm.entrypoints.cli.runs import parse_task_list


def test_placeholders_become_the_task_index_wherever_they_are() -> None:
    command = CommandTemplate(("./simulate", "--seed", "{}", "--out=results/{task}-{#}.h5", "-v"))
    assert command.arguments(Claim(17)) == [
        "./simulate",
        "--seed",
        "17",
        "--out=results/17-17.h5",
        "-v",
    ]


def test_a_command_without_placeholders_finds_its_task_in_the_environment() -> None:
    command = CommandTemplate(("./step",))
    assert command.arguments(Claim(3)) == ["./step"]
    assert command.environment(Claim(3), "abc", {"HOME": "/home/ada", "TASKFARM_TASK": "old"}) == {
        "HOME": "/home/ada",
        "TASKFARM_TASK": "3",
        "TASKFARM_RUN": "abc",
    }


def with_input(value: object, task: int = 4) -> Claim:
    return Claim(task, input=value, has_input=True)


def test_the_input_of_a_task_takes_the_place_of_its_index_and_is_in_the_environment() -> None:
    command = CommandTemplate(("convert", "{}", "{.}.png", "{/}", "{//}", "{/.}", "#{#}"))
    claim = with_input("scans/2026/plate 7.tif")
    assert command.arguments(claim) == [
        "convert",
        "scans/2026/plate 7.tif",
        "scans/2026/plate 7.png",
        "plate 7.tif",
        "scans/2026",
        "plate 7",
        "#4",
    ]
    assert command.environment(claim, "r", {})["TASKFARM_INPUT"] == "scans/2026/plate 7.tif"
    assert CommandTemplate(("{//}",)).arguments(with_input("file")) == ["."]


def test_a_sweep_gives_each_axis_by_name_and_leaves_other_braces_alone() -> None:
    claim = with_input({"seed": 3, "model": "big", "rate": 0.5})
    command = CommandTemplate(("run", "--seed={seed}", "{model}", "{}", "awk '{print}' {x}"))
    assert command.arguments(claim) == [
        "run",
        "--seed=3",
        "big",
        '{"seed":3,"model":"big","rate":0.5}',
        "awk '{print}' {x}",
    ]
    environment = command.environment(claim, "r", {})
    assert (environment["TASKFARM_SEED"], environment["TASKFARM_MODEL"]) == ("3", "big")
    assert environment["TASKFARM_RATE"] == "0.5"


@given(st.text())
def test_an_input_is_put_in_as_it_is_in_one_argument_whatever_it_holds(text: str) -> None:
    command = CommandTemplate(("echo", "{}", "[{}]"))
    assert command.arguments(with_input(text)) == ["echo", text, f"[{text}]"]


def test_a_command_needs_a_program() -> None:
    with pytest.raises(ValueError, match="argv"):
        CommandTemplate(())


@pytest.mark.parametrize(
    ("line", "percent"),
    [
        (b"TASKFARM_PROGRESS 42\n", 42.0),
        (b"TASKFARM_PROGRESS 42.5%\r\n", 42.5),
        (b"  TASKFARM_PROGRESS\t0", 0.0),
        (b"TASKFARM_PROGRESS 100.0", 100.0),
        (b"TASKFARM_PROGRESS .5", 0.5),
        (b"TASKFARM_PROGRESS 100.5", None),
        (b"TASKFARM_PROGRESS -1", None),
        (b"TASKFARM_PROGRESS half", None),
        (b"TASKFARM_PROGRESS 42 of 100", None),
        (b"step 3: TASKFARM_PROGRESS 42", None),
        (b"TASKFARM_PROGRESS", None),
        (b"hello\n", None),
    ],
)
def test_only_whole_progress_lines_report_progress(line: bytes, percent: float | None) -> None:
    assert parse_progress(line) == percent


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("1.5", 1.5), ("90s", 90.0), ("15m", 900.0), ("23h", 82800.0), ("2d", 172800.0)],
)
def test_durations_are_seconds_or_carry_a_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-5", "1h30m", "ten", "5 weeks"])
def test_other_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="90m, 23h"):
        parse_duration(text)


# The task lists of `taskfarm runs retry --tasks`


@pytest.mark.parametrize(
    ("text", "indices"),
    [("3", [3]), ("3,8,10-12", [3, 8, 10, 11, 12]), (" 5 , 2-3,3 ", [2, 3, 5]), ("0-0", [0])],
)
def test_a_task_list_names_indices_and_ranges(text: str, indices: list[int]) -> None:
    assert parse_task_list(text) == indices


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is not a task index or a range"),
        ("a", "is not a task index or a range"),
        ("3-", "is not a task index or a range"),
        ("5-2", "is not a range of task indices"),
        ("-1", "is not a task index or a range"),
        ("0-2000000", "more than 1000000 tasks"),
    ],
)
def test_a_bad_task_list_says_how_to_write_one(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_task_list(text)
