"""Reading throughput: ROOT -> tensors (cold) and cache -> batches, in jets per second.

    python benchmarks/bench_reading.py                 # writes a synthetic 200k-jet ROOT file
    python benchmarks/bench_reading.py --input DIR_OR_FILE

Results are printed and written to benchmarks/results/reading.json with the CPU model, the
command line, the date and the load average (other work on the machine skews the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import awkward as ak
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_info  # noqa: E402
from jetfm.backbone.data.cache import JetTorchDataset, open_cache  # noqa: E402
from jetfm.backbone.data.features import FeatureConfig, iterate_tensors  # noqa: E402
from jetfm.backbone.data.readers import count_jets, resolve_paths  # noqa: E402
from jetfm.backbone.data.rootio import write_jets  # noqa: E402
from jetfm.backbone.data.schema import LABEL_BRANCHES, PID_FLAGS, PROCESSES  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "reading.json"


def synthetic_jets(n: int, mean_particles: float, seed: int = 0) -> ak.Array:
    """Jets with boosted-jet-like kinematics: a hard axis, exponential pT shares, narrow spread."""
    rng = np.random.default_rng(seed)
    counts = np.maximum(rng.poisson(mean_particles, n), 1)
    owner = np.repeat(np.arange(n), counts)
    jet_pt, jet_eta, jet_phi = rng.uniform(500, 1000, n), rng.uniform(-2, 2, n), rng.uniform(-np.pi, np.pi, n)
    share = rng.exponential(1.0, len(owner))
    pt = share / np.bincount(owner, share)[owner] * jet_pt[owner]
    deta, dphi = rng.normal(0, 0.15, len(owner)), rng.normal(0, 0.15, len(owner))
    eta, phi = jet_eta[owner] + deta, jet_phi[owner] + dphi
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2)
    kind = rng.integers(0, len(PID_FLAGS), len(owner))
    particles = {
        "part_px": px,
        "part_py": py,
        "part_pz": pz,
        "part_energy": energy,
        "part_deta": deta,
        "part_dphi": dphi,
        "part_charge": np.where(kind == 0, rng.choice([-1.0, 1.0], len(owner)), 0.0),
        **{flag: (kind == k).astype(float) for k, flag in enumerate(PID_FLAGS)},
    }
    label = rng.integers(0, len(PROCESSES), n)
    fields = {name: ak.unflatten(values.astype(np.float32), counts) for name, values in particles.items()}
    fields.update(
        jet_pt=jet_pt,
        jet_eta=jet_eta,
        jet_phi=jet_phi,
        jet_energy=np.bincount(owner, energy, n),
        jet_mass=rng.uniform(20, 250, n),
        jet_sdmass=rng.uniform(10, 200, n),
        jet_nparticles=counts,
        **{f"jet_tau{k}": rng.uniform(0.05, 0.5, n) / k for k in range(1, 5)},
        **{LABEL_BRANCHES[p]: (label == k).astype(np.int32) for k, p in enumerate(PROCESSES)},
    )
    return ak.zip(fields, depth_limit=1)


def evict_from_page_cache(paths: Iterable[Path]) -> None:
    """Ask the kernel to drop these files' cached pages, so the first read is really cold."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def rate(run: Callable[[], int]) -> dict[str, float]:
    start = time.perf_counter()
    jets = run()
    seconds = time.perf_counter() - start
    return {"jets": jets, "seconds": round(seconds, 3), "jets_per_s": round(jets / seconds)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", help="jets to read (file, directory or glob); default: synthetic")
    parser.add_argument("--jets", type=int, default=200_000, help="synthetic jets to write")
    parser.add_argument("--mean-particles", type=float, default=50.0)
    parser.add_argument("--workdir", help="where the synthetic file and the cache go (default: a temp dir)")
    parser.add_argument("--step-size", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--charge-pid", action="store_true", help="include charge and PID features")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        work = Path(scratch)
        source = args.input or str(work / "synthetic.root")
        if args.input is None:
            start = time.perf_counter()
            write_jets(source, synthetic_jets(args.jets, args.mean_particles), {"benchmark": True})
            print(f"wrote {args.jets} synthetic jets in {time.perf_counter() - start:.1f} s")
        cfg = FeatureConfig(include_charge_pid=args.charge_pid)
        paths = resolve_paths(source)
        load_before = os.getloadavg()

        def to_tensors(prefetch: bool) -> int:
            evict_from_page_cache(paths)
            stream = iterate_tensors(source, cfg, args.step_size, prefetch=prefetch)
            return sum(len(t) for t in stream)

        results = {
            "root_to_tensors_cold": rate(lambda: to_tensors(prefetch=False)),
            "root_to_tensors_cold_prefetch": rate(lambda: to_tensors(prefetch=True)),
        }
        evict_from_page_cache(paths)
        results["cache_build"] = rate(lambda: len(open_cache(source, work / "cache", cfg, args.step_size)))
        cache = open_cache(source, work / "cache", cfg)

        def read_batches(shuffle: bool) -> int:
            total = 0
            for batch in cache.batches(args.batch_size, shuffle=shuffle, seed=0):
                # np.array copies out of the memory map, as handing a batch to a model does.
                arrays = [np.array(batch.features), np.array(batch.mask), np.array(batch.vectors)]
                total += len(arrays[0])
            return total

        def torch_batches() -> int:
            loader = JetTorchDataset(cache).loader(args.batch_size, shuffle=True)
            return sum(len(batch["labels"]) for batch in loader)

        results["cache_batches_sequential"] = rate(lambda: read_batches(shuffle=False))
        results["cache_batches_shuffled"] = rate(lambda: read_batches(shuffle=True))
        results["cache_torch_loader_shuffled"] = rate(torch_batches)

    record = {
        "results": results,
        "source": "synthetic" if args.input is None else args.input,
        "jets_in_source": args.jets if args.input is None else count_jets(args.input),
        "feature_config": cfg.to_dict(),
        "step_size": args.step_size,
        "batch_size": args.batch_size,
        "load_average_before": [round(x, 2) for x in load_before],
        "numpy": np.__version__,
        "awkward": ak.__version__,
        **machine_info(),
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2) + "\n")
    for name, result in results.items():
        print(f"{name:32s} {result['jets_per_s']:>10,d} jets/s  ({result['jets']} jets, {result['seconds']} s)")
    print(f"wrote {output}")
    return record


if __name__ == "__main__":
    main()
