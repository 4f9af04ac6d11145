"""What every benchmark shares: where things are, how results are written, small statistics."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
#: The virtual environment running the benchmarks, which has taskfarm installed.
VENV_BIN = Path(sys.executable).parent
#: The old server's own virtual environment: its pinned Flask stack cannot share ours.
OLD_VENV_BIN = BENCH / ".venv-old" / "bin"

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: A database number nobody else uses on the local Redis: it is emptied before and after use.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")

USER = "bench"
PASSWORD = "bench-password-not-secret"

#: Every target, as (name, ratio, bound, "min" or "max"), collected for the summary.
Target = tuple[str, float | None, float, str]


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table; `None` (not measured) as n/a."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def verdict(value: float | None, bound: float, kind: str) -> str:
    """Whether a ratio meets its bound: `kind` "min" wants value ≥ bound, "max" value ≤ bound."""
    if value is None:
        return "not measured"
    met = value >= bound if kind == "min" else value <= bound
    return "met" if met else "NOT met"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; cells already formatted, or formatted with `str`."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile by nearest rank; the values need not be sorted."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    """A line saying where and when the numbers were measured."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Measured {when} on {os.cpu_count()} cores ({platform.machine()}, "
        f"Python {platform.python_version()}); load average {load} (1, 5, 15 min) when written."
    )


def write_result(name: str, title: str, body: str) -> Path:
    """Writes `bench/results/{name}.md` and prints it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    text = f"# {title}\n\n{machine()}\n\n{body.strip()}\n"
    path.write_text(text)
    print(text, flush=True)
    return path
