"""Run the in-process benchmarks: stellate vs Starlette vs a raw ASGI app, side by side.

    python benchmarks/run.py [--only GROUP]... [--quick] [--rounds N] [--clock cpu|wall]

Prints the machine, one row per case and backend, then the geometric mean of the
stellate/Starlette ratios, the worst case, and the routing and dispatch targets.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cases import ALL
from frameworks import has_starlette
from harness import CLOCKS, HEADER, Settings, run, summarize


def machine() -> str:
    """nproc, the CPU model and the Python version, for the figures' record."""
    model = platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", choices=list(ALL), help="case groups to run")
    parser.add_argument("--match", help="only cases whose name contains this text")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run: 3 short rounds")
    parser.add_argument("--rounds", type=int, help="timed batches per app (default 15)")
    parser.add_argument("--target", type=float, help="seconds per batch (default 0.02)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = parser.parse_args()
    if not has_starlette():
        sys.exit(
            "Starlette is not installed: run scripts/bench, or pip install -r "
            "benchmarks/requirements.txt into the venv"
        )
    settings = Settings(clock=args.clock)
    if args.quick:
        settings.rounds, settings.target = 3, 0.004
    if args.rounds:
        settings.rounds = args.rounds
    if args.target:
        settings.target = args.target
    import starlette

    import stellate

    print(f"{machine()}; stellate {stellate.__version__}, Starlette {starlette.__version__}")
    print(
        f"{settings.rounds} rounds of ~{settings.target * 1000:g} ms batches per app, "
        f"{settings.clock} time; median time per request (WebSocket: per session)"
    )
    print(HEADER)
    started = time.perf_counter()
    cases = []
    for group in args.only or ALL:
        for case in ALL[group]():
            case.group = group
            cases.append(case)
    if args.match:
        cases = [case for case in cases if args.match in case.name]
    results = run(cases, settings)
    print(summarize(results))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
