"""Wall time of a cold ``jetfm ask --dry-run --local``: a new process that imports, loads the embedded
router (from the workspace's cached copy: run it once before) and plans one request.

    python benchmarks/bench_cold_ask.py [--repeats 3] [--label after] [--pythonpath OLD]

``--pythonpath`` runs an older checkout's package instead (a folder holding a ``jetfm`` link to it),
for a before/after pair in the same run. Requests and results: benchmarks/results/cold_ask.json,
accumulated under ``--label``. Measure on an idle machine: the figure is a latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.machine import machine_info  # noqa: E402
from jetfm.backbone.atomic import write_json  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "cold_ask.json"
REQUESTS = (
    "generate 5k top jets",
    "fine-tune jetfm-default on tq5k with 1000 labels and show the ROC curve",
    "find jets that look like a boosted W in run2",
    "plot the soft-drop mass of tq5k split by truth",
    "scan run2 for anomalies",
)


def cold_ask(request: str, pythonpath: str | None) -> tuple[float, str]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    command = [sys.executable, "-m", "jetfm.tools.cli", "ask", "--dry-run", "--local", request]
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"jetfm ask failed for {request!r}:\n{done.stderr[-2000:]}")
    return seconds, done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="cold processes per request")
    parser.add_argument("--label", default="after", help="name of this measurement in the JSON")
    parser.add_argument("--pythonpath", help="folder with a 'jetfm' link to another checkout (the 'before')")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cold_ask(REQUESTS[0], args.pythonpath)  # the workspace's model copy exists before timing starts
    rows = []
    for request in REQUESTS:
        for _ in range(args.repeats):
            seconds, plan = cold_ask(request, args.pythonpath)
            rows.append({"request": request, "seconds": round(seconds, 2), "plan": plan})
            print(f"{seconds:6.2f} s  {request}  ->  {plan}", flush=True)
    times = [r["seconds"] for r in rows]
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result[args.label] = {
        "median_s": statistics.median(times), "max_s": max(times), "min_s": min(times), "runs": rows,
        "pythonpath": args.pythonpath, "machine": machine_info(),
    }
    write_json(args.out, result)
    print(f"{args.label}: median {statistics.median(times):.2f} s, max {max(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
