"""`make bench`: every benchmark in turn, then bench/results/README.md with each target's
ratio, whether it is met, and how long each part took. A benchmark that fails is reported
as such; the others still run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

from bench import (
    end_to_end,
    http_claims,
    inputs,
    logins,
    paper,
    profile_claims,
    scale,
    store_claims,
)
from bench.common import OLD_VENV_BIN, Target, fmt, table, verdict, write_result

BENCHMARKS: tuple[tuple[str, str, Callable[[], list[Target]]], ...] = (
    ("store_claims", "Store claims per second, in process", store_claims.run),
    (
        "http_claims",
        "HTTP claim capacity against the old server and bare Starlette",
        http_claims.run,
    ),
    ("profile", "Profile of the claim path", profile_claims.run),
    ("scale", "Scale: runs of 10**9 tasks", scale.run),
    ("inputs", "Runs over inputs", inputs.run),
    ("logins", "Claims under a flood of wrong passwords", logins.run),
    ("end_to_end", "End to end: taskfarm work, GNU parallel and xargs", end_to_end.run),
    ("paper", "The paper's protocol with the published client", paper.run),
)


def _version(command: list[str]) -> str:
    """The first line a command prints (wrk prints its version with a usage, and fails)."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=30, cwd=tempfile.gettempdir()
        )
    except OSError:
        return "not installed"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"


def main() -> int:
    started = time.monotonic()
    targets: list[Target] = []
    timings: list[list[object]] = []
    failed = 0
    for name, title, run in BENCHMARKS:
        print(f"== {title}", flush=True)
        start = time.monotonic()
        try:
            targets += run()
            outcome = "done"
        except Exception:
            traceback.print_exc()
            outcome = "FAILED (see the output of make bench)"
            failed += 1
        seconds = time.monotonic() - start
        print(f"== {title}: {seconds:.0f} s", flush=True)
        timings.append([f"[{title}]({name}.md)", f"{seconds:.0f}", outcome])
    total = time.monotonic() - started
    old_python = str(OLD_VENV_BIN / "python")
    versions = [
        [
            "taskfarm (ours)",
            _version([sys.executable, "-c", "import taskfarm; print(taskfarm.__version__)"]),
        ],
        [
            "taskfarm (old)",
            _version([old_python, "-c", "import taskfarm; print(taskfarm.__version__)"]),
        ],
        ["wrk", _version(["wrk", "--version"])],
    ]
    rows = [
        [
            name,
            fmt(value, 2),
            f"{'≥' if kind == 'min' else '≤'} {fmt(bound)}",
            verdict(value, bound, kind),
        ]
        for name, value, bound, kind in targets
    ]
    met = sum(verdict(v, b, k) == "met" for _, v, b, k in targets)
    body = "\n\n".join(
        [
            f"`make bench` took {total / 60:.1f} minutes. Other work on the machine "
            "shares its cores, so absolute numbers vary from run to run; every target is a "
            "ratio of two numbers measured in the same run.",
            f"**Targets: {met} of {len(targets)} met.**",
            table(["target", "ratio", "bound", ""], rows),
            table(["benchmark", "seconds", ""], timings),
            table(["software", "version"], versions),
        ]
    )
    write_result("README", "Benchmark results", body)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
