"""Generation speed: jets/s per core for each process, against Pythia's bare event rate.

For every process, in the same run: (1) Pythia alone (``pythia.next()`` in a loop, same
settings) and (2) the full pipeline (Pythia + particle extraction + FastJet clustering, truth
matching, substructure + ROOT writing). The overhead is bare event rate / pipeline event rate - 1.
Then the wall time of one sample with 1 and with 2 worker processes.

    python benchmarks/bench_generation.py [--jets 300] [--scaling-jets 800]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_info  # noqa: E402
from jetfm.backbone.data.generate import GenerationConfig, ShardTask, generate, generate_shard, shard_seed  # noqa: E402
from jetfm.backbone.data.pythia import make_pythia, pythia_settings  # noqa: E402
from jetfm.backbone.data.schema import PROCESSES  # noqa: E402


def bare_pythia_rate(process: str, n_events: int, seed: int) -> float:
    pythia = make_pythia(pythia_settings(process, 550.0, 650.0, seed, 14000.0))
    t0 = time.perf_counter()
    for _ in range(n_events):
        pythia.next()
    return n_events / (time.perf_counter() - t0)


def pipeline(process: str, n_jets: int, out: Path) -> dict:
    config = GenerationConfig(processes=(process,), n_jets=n_jets, seed=7)
    task = ShardTask(process, 0, n_jets, shard_seed(7, process, 0), str(out / f"{process}.root"), config)
    t0 = time.perf_counter()
    stats = generate_shard(task)
    wall = time.perf_counter() - t0
    return {
        "jets": stats.n_jets,
        "events": stats.n_events,
        "wall_s": wall,
        "jets_per_s": stats.n_jets / wall,
        "events_per_s": stats.n_events / wall,
        "share": {
            "pythia": stats.seconds_pythia / wall,
            "extract": stats.seconds_extract / wall,
            "fastjet_and_truth": stats.seconds_jets / wall,
            "write": stats.seconds_write / wall,
        },
    }


def scaling(n_jets: int, out: Path) -> dict:
    result = {}
    for workers in (1, 2):
        config = GenerationConfig(processes=("qcd", "top"), n_jets=n_jets, seed=3, jets_per_shard=n_jets // 4)
        t0 = time.perf_counter()
        generate(config, out / f"w{workers}", workers=workers, show_progress=False)
        result[f"wall_s_{workers}_workers"] = time.perf_counter() - t0
    result["speedup"] = result["wall_s_1_workers"] / result["wall_s_2_workers"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=300, help="jets per process for the per-core figures")
    parser.add_argument("--scaling-jets", type=int, default=800, help="jets in the 1-vs-2 worker sample")
    parser.add_argument("--out", default="benchmarks/results/generation.json")
    args = parser.parse_args()

    results: dict = {"machine": machine_info(), "command": " ".join(sys.argv), "processes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for process in PROCESSES:
            full = pipeline(process, args.jets, Path(tmp))
            bare = bare_pythia_rate(process, full["events"], seed=8)
            full["bare_pythia_events_per_s"] = bare
            full["overhead_vs_bare_pythia"] = bare / full["events_per_s"] - 1
            results["processes"][process] = full
            print(
                f"{process:4s} {full['jets_per_s']:6.1f} jets/s/core  {full['events_per_s']:6.1f} ev/s "
                f"(bare Pythia {bare:6.1f} ev/s, overhead {100 * full['overhead_vs_bare_pythia']:.0f}%)  "
                f"shares {', '.join(f'{k} {100 * v:.0f}%' for k, v in full['share'].items())}",
                flush=True,
            )
        results["scaling"] = scaling(args.scaling_jets, Path(tmp))
        print(f"scaling 1 -> 2 workers: {results['scaling']['speedup']:.2f}x", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
