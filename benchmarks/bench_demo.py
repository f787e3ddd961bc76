"""Issue 7, figure 4: time to answer: the wall time of ``make demo`` on an installed setup.

    .venv/bin/python benchmarks/bench_demo.py               # 3 runs
    .venv/bin/python benchmarks/bench_demo.py --repeat 1

``make demo`` is what a newcomer runs first; whatever it grows into (today it executes the
walk-through notebooks against the embedded server and writes the report), it must answer
within a minute. Each run goes to a fresh temporary output directory
(``DEMO_ARGS=--out …``), so ``data/`` is left alone and no run reuses another's files.
The environment must already be installed: the install is not part of the figure, so the
script runs ``make setup`` first when ``make`` says it is out of date, untimed.

- baseline: the 60 s budget (and, for scale, the time ``python -m netra_ws --help`` takes
  to import the kit);
- measured: the median wall time of ``make demo`` and its ratio to the budget, with the
  demo's own progress lines timed, to show where the time goes.

Exits 1 when the median is over budget or the demo fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 60.0
ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"


def installed() -> bool:
    """True when ``make demo`` will not run pip (``make -q`` on the install stamp)."""
    question = subprocess.run(
        ["make", "-q", ".venv/.installed-run"], cwd=ROOT, capture_output=True, timeout=60
    )
    return question.returncode == 0


def timed_demo(out: Path) -> tuple[float, int, list[str]]:
    """Run ``make demo`` once; return its wall time, exit code and timed output lines."""
    started = time.perf_counter()
    process = subprocess.Popen(
        ["make", "demo", f"DEMO_ARGS=--out {out}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # the demo prints a line per finished step
        lines.append(f"{time.perf_counter() - started:6.1f} s  {line.rstrip()}")
    code = process.wait(timeout=BUDGET_S * 10)
    return time.perf_counter() - started, code, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    if not installed():
        print("the environment is not installed (or out of date): make setup, untimed …")
        subprocess.run(["make", "setup"], cwd=ROOT, check=True, timeout=1800)
    started = time.perf_counter()
    subprocess.run([PYTHON, "-m", "netra_ws", "--help"], cwd=ROOT, check=True, capture_output=True)
    import_s = time.perf_counter() - started
    print(
        f"baseline: budget {BUDGET_S:.0f} s; importing the kit (netra_ws --help): {import_s:.1f} s"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    times = []
    failures = 0
    for round_ in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
            seconds, code, lines = timed_demo(Path(tmp))
        times.append(seconds)
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"  round {round_}: make demo {seconds:.1f} s, {status}", flush=True)
        if code != 0 or round_ == 1:
            print("\n".join(f"      {line}" for line in lines[-25:]))
        failures += code != 0
    print(f"load average after: {os.getloadavg()[0]:.2f}")

    median = statistics.median(times)
    print()
    print(f"make demo: median {median:.1f} s of {args.repeat} run(s) = {median / BUDGET_S:.2f} of "
          f"the {BUDGET_S:.0f} s budget")  # fmt: skip
    if failures:
        print(f"TARGET MISSED: the demo failed in {failures} run(s)")
        return 1
    if median >= BUDGET_S:
        print(f"TARGET MISSED: {median:.1f} s >= {BUDGET_S:.0f} s")
        return 1
    print("target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
