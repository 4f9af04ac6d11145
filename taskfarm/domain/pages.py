"""Pages of a run's tasks in one state, in index order, each costing what it holds.

A page ends with the cursor to read on from (`next_after`), or None at the end of the run. A
page may hold fewer tasks than asked for and still have a next one: tasks that no index
finds by state (untouched ones, done ones) are read by scanning a window of indices no longer
than the page, so that no page reads the whole run to find its tasks.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

import attrs

from taskfarm.domain.attempts import Attempt
from taskfarm.domain.limits import MAX_TASKS
from taskfarm.domain.run import Run
from taskfarm.domain.task import Task
from taskfarm.domain.values import whole_number

#: The most tasks one page holds.
MAX_PAGE_SIZE = 1000


def check_page_size(value: object) -> int:
    return whole_number("limit", value, 1, MAX_PAGE_SIZE)


def check_cursor(value: object) -> int:
    """The index a page starts after; -1 starts at the first task."""
    return whole_number("after", value, -1, MAX_TASKS)


@attrs.frozen
class TaskReport:
    """A task and the record of its last attempt, if one is kept."""

    task: Task
    last_attempt: Attempt | None = None


@attrs.frozen
class TaskPage:
    reports: Sequence[TaskReport]
    next_after: int | None

    @classmethod
    def indexed(cls, reports: Sequence[TaskReport], limit: int) -> TaskPage:
        """A page read from an index of the tasks in its state: full until the last one."""
        return cls(reports, reports[-1].task.index if len(reports) == limit else None)

    @property
    def tasks(self) -> list[Task]:
        return [report.task for report in self.reports]


def scan_window(run: Run, after: int, limit: int, start: int = 0) -> range:
    """The indices a scanning page reads: the next `limit` after `after`, from `start` on."""
    first = max(after + 1, start)
    return range(first, max(first, min(first + limit, run.num_tasks)))


def scanned_page(run: Run, window: range, reports: Sequence[TaskReport]) -> TaskPage:
    """The page of the tasks found in `window`, from `scan_window`."""
    return TaskPage(reports, window.stop - 1 if window.stop < run.num_tasks else None)


def waiting_page(
    run: Run,
    after: int,
    limit: int,
    requeued: Sequence[TaskReport],
    stored: Container[int],
) -> TaskPage:
    """The waiting tasks after `after`: the first `limit` stored ones (`requeued`, in index
    order) merged with the untouched ones, which are the indices at or past the frontier that
    are not `stored`, in the window `scan_window(run, after, limit, run.frontier)`."""
    window = scan_window(run, after, limit, run.frontier)
    untouched = [TaskReport(Task.untouched(i)) for i in window if i not in stored]
    # Past a window that stops short of the run's end, untouched tasks were not looked at:
    # the page stops there, and the next one reads on.
    bound = window.stop if window.stop < run.num_tasks else None
    merged = sorted(
        (r for r in [*requeued, *untouched] if bound is None or r.task.index < bound),
        key=lambda report: report.task.index,
    )[:limit]
    if len(merged) == limit:
        return TaskPage(merged, merged[-1].task.index)
    return TaskPage(merged, None if bound is None else bound - 1)
