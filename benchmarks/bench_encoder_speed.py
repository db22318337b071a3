"""CPU throughput (jets/s) and peak memory of the jet encoder, beside weaver-core's ParticleTransformer.

    .venv/bin/python benchmarks/bench_encoder_speed.py [--models tiny small] [--warmup 1] [--iters 3]

Batches of 256 jets in 128 particle slots with ~50 real particles each (front-packed, as the data
pipeline pads pT-ordered constituents). The CPU may be shared with other work, so the two
implementations are timed in one process, alternating batch by batch, and the fastest batch is the
headline (the one least disturbed by other processes); medians are kept too. Peak memory comes from
one warm-up batch in a fresh subprocess per implementation. weaver-core is optional: without it only
jetfm is measured. Results go to benchmarks/results/encoder_speed.json.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from backbone.config import EncoderConfig  # noqa: E402
from backbone.registry import create_model, model_config  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.peers import weaver_part  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "encoder_speed.json"
BATCH, SLOTS, MEAN_REAL, SPREAD_REAL = 256, 128, 50, 15
MODES = ("inference", "training")


def make_batch(input_dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    counts = (MEAN_REAL + SPREAD_REAL * torch.randn(BATCH, generator=gen)).round().clamp(5, SLOTS)
    mask = torch.arange(SLOTS)[None, :] < counts[:, None]
    pt = 1.0 + 50.0 * torch.rand(BATCH, SLOTS, generator=gen)
    eta, phi = 0.4 * torch.randn(2, BATCH, SLOTS, generator=gen)
    vectors = torch.stack([pt * phi.cos(), pt * phi.sin(), pt * eta.sinh(), pt * eta.cosh()], dim=-1)
    features = torch.randn(BATCH, SLOTS, input_dim, generator=gen)
    return features * mask[..., None], vectors * mask[..., None], mask


def weaver_model(config: EncoderConfig) -> torch.nn.Module:
    """weaver-core's ParT at the same sizes, returning the (B, D) class-token embedding (no classifier)."""
    model = weaver_part(config)
    # its SequenceTrimmer drops padding only after 5 warm-up calls; start in that steady state
    model.trimmer._counter.fill_(model.trimmer.warmup_steps)
    return model


def make_step(implementation: str, name: str, mode: str) -> tuple[Callable[[], None], int]:
    """A function running one batch (a full AdamW step in training) and the model's parameter count."""
    torch.manual_seed(0)
    config = model_config(name)
    features, vectors, mask = make_batch(config.input_dim)
    if implementation == "jetfm":
        model = create_model(name)
        inputs = (features, vectors, mask)
    else:  # weaver takes channels-first inputs and a float (B, 1, P) mask
        model = weaver_model(config)
        inputs = (features.transpose(1, 2), vectors.transpose(1, 2), mask[:, None].float())
    model.train(mode == "training")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        if mode == "inference":
            with torch.inference_mode():
                model(*inputs)
            return
        optimizer.zero_grad(set_to_none=True)
        model(*inputs).square().mean().backward()
        optimizer.step()

    return step, sum(p.numel() for p in model.parameters())


def peak_memory(implementation: str, name: str, mode: str) -> dict:
    """Resident memory of one batch (activations, gradients, optimizer state) in this fresh process."""
    step, _ = make_step(implementation, name, mode)
    before = _status_mb("VmRSS")
    step()
    peak = _status_mb("VmHWM")
    return {"peak_rss_mb": round(peak, 1), "peak_rss_over_model_mb": round(peak - before, 1)}


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory_in_subprocess(implementation: str, name: str, mode: str) -> dict:
    command = [sys.executable, __file__, "--memory-of", implementation, name, mode]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_interleaved(implementations: list[str], name: str, mode: str, warmup: int, iters: int) -> list[dict]:
    steps = {impl: make_step(impl, name, mode) for impl in implementations}
    times: dict[str, list[float]] = {impl: [] for impl in implementations}
    for i in range(warmup + iters):
        for impl, (step, _) in steps.items():
            start = time.perf_counter()
            step()
            if i >= warmup:
                times[impl].append(time.perf_counter() - start)
    return [
        {
            "implementation": impl,
            "model": name,
            "mode": mode,
            "num_parameters": steps[impl][1],
            "jets_per_s": round(BATCH / min(times[impl]), 1),
            "jets_per_s_median": round(BATCH / statistics.median(times[impl]), 1),
            "seconds_per_batch": [round(t, 3) for t in times[impl]],
            **peak_memory_in_subprocess(impl, name, mode),
        }
        for impl in implementations
    ]


def weaver_version() -> str | None:
    try:
        import weaver.nn.model.ParticleTransformer  # noqa: F401
    except ImportError:
        return None
    return importlib.metadata.version("weaver-core")


def ratios(results: list[dict], key: str) -> dict[str, float]:
    """jetfm / weaver throughput per (model, mode): > 1 means jetfm is faster."""
    speed = {(r["implementation"], r["model"], r["mode"]): r[key] for r in results}
    return {
        f"{name}/{mode}": round(value / speed[("weaver", name, mode)], 2)
        for (implementation, name, mode), value in speed.items()
        if implementation == "jetfm" and ("weaver", name, mode) in speed
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "small"])
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--memory-of", nargs=3, metavar=("IMPL", "MODEL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        print(json.dumps(peak_memory(*args.memory_of)))
        return

    load_average = os.getloadavg()  # a loaded CPU makes every timing pessimistic
    version = weaver_version()
    implementations = ["jetfm", "weaver"] if version else ["jetfm"]
    results = []
    for name in args.models:
        for mode in MODES:
            for row in time_interleaved(implementations, name, mode, args.warmup, args.iters):
                results.append(row)
                print(json.dumps(row), flush=True)
    report = {
        **machine_info(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load_average,
        "weaver_core_version": version or "not installed: only jetfm measured",
        "batch_size": BATCH,
        "particle_slots": SLOTS,
        "real_particles": f"normal(mean={MEAN_REAL}, sd={SPREAD_REAL}) clipped to [5, {SLOTS}], front-packed",
        "warmup_batches": args.warmup,
        "timed_batches": args.iters,
        "training_step": "AdamW step on the mean squared jet embedding (no head), dropout 0.1 as in ParT",
        "jets_per_s": "from the fastest timed batch; jets_per_s_median from the median one",
        "results": results,
        "jetfm_over_weaver_throughput": ratios(results, "jets_per_s"),
        "jetfm_over_weaver_throughput_median": ratios(results, "jets_per_s_median"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
