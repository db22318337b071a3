"""How close are jets sampled from a next-token (NTP) model to the jets it was trained on?

    .venv/bin/python benchmarks/bench_ntp_sampling.py [DATA] [--model tiny] [--steps 300] [--samples 500]

DATA is a folder of ROOT shards (or any source the readers accept); without it, 2000 QCD + top
jets (550-650 GeV) are generated once into jetfm-workspace/bench/. The benchmark fits the
codebook, trains for `--steps`, samples `--samples` jets at the median training jet pT, and
compares jet mass, tau32 and multiplicity with the training jets (Wasserstein-1 distances beside
those between two halves of the training jets). Numbers go to benchmarks/results/ntp_sampling.json,
the histograms to ntp_sampling.png beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from benchmarks.machine import machine_info  # noqa: E402
from jetfm.backbone.data.cache import open_cache  # noqa: E402
from jetfm.backbone.data.generate import GenerationConfig, generate  # noqa: E402
from jetfm.backbone.data.readers import open_jets  # noqa: E402
from jetfm.backbone.pretrain.ntp import NextTokenObjective  # noqa: E402
from jetfm.backbone.pretrain.sampling import compare_samples, plot_sample_comparison, sample_jets  # noqa: E402
from jetfm.backbone.registry import create_model  # noqa: E402
from jetfm.backbone.train import TrainConfig, Trainer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ntp_sampling.json"
BENCH_DIR = Path(os.environ.get("JETFM_HOME", ROOT / "jetfm-workspace")) / "bench"
DEFAULT_DATA = GenerationConfig(processes=("qcd", "top"), n_jets=2000, seed=1, jets_per_shard=500)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", help="folder of ROOT shards; default: generate 2000 QCD + top jets")
    parser.add_argument("--model", default="tiny", help="registered encoder size")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--num-codes", type=int, default=256)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


def default_data() -> Path:
    """The generated default dataset; generation is resumable, so a second run reuses it."""
    folder = BENCH_DIR / "ntp-qcd-top-2000"
    generate(DEFAULT_DATA, folder, workers=min(2, os.cpu_count() or 1), show_progress=True)
    return folder


def train(args: argparse.Namespace, data: Path) -> tuple[NextTokenObjective, dict[str, Any]]:
    cache = open_cache(data, BENCH_DIR / f"{data.name}-cache")
    torch.manual_seed(args.seed)
    objective = NextTokenObjective(create_model(args.model), num_codes=args.num_codes)
    start = time.perf_counter()
    objective.prepare(cache, seed=args.seed)
    fit_seconds = time.perf_counter() - start
    config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=max(1, args.steps // 20),
        checkpoint_every=args.steps, seed=args.seed, device="auto",
    )
    with tempfile.TemporaryDirectory() as run_dir:  # a fresh run, never a resumed one
        history = Trainer(objective, cache, config, run_dir).fit(show_progress=True)
    last = history[-max(1, len(history) // 10) :]  # the last 10% of steps, less noisy than one step
    summary = {
        "jets": len(cache),
        "codebook_fit_seconds": fit_seconds,
        "train_seconds": history[-1]["seconds"],
        "first_loss": history[0]["loss"],
        **{f"final_{key}": float(np.mean([row[key] for row in last])) for key in ("loss", "accuracy", "perplexity")},
    }
    return objective.eval(), summary


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data) if args.data else default_data()
    reference = open_jets(data)
    objective, training = train(args, data)

    jet_pt = float(np.median(reference["jet_pt"].to_numpy()))
    start = time.perf_counter()
    samples = sample_jets(
        objective, args.samples, jet_pt=jet_pt, temperature=args.temperature, top_k=args.top_k, seed=args.seed
    )
    sample_seconds = time.perf_counter() - start
    comparison = compare_samples(samples, reference, seed=args.seed)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot = plot_sample_comparison(comparison, args.out.with_suffix(".png"))
    numbers = {
        name: {k: v for k, v in obs.items() if k not in ("edges", "samples", "reference", "label")}
        for name, obs in comparison["observables"].items()
    }
    result = {
        "machine": machine_info(),
        "device": str(next(objective.parameters()).device),
        "threads": torch.get_num_threads(),
        "data": str(data),
        "settings": {k: v for k, v in vars(args).items() if k not in ("data", "out")},
        "training": training,
        "sampling": {
            "jets": args.samples,
            "jet_pt": jet_pt,
            "seconds": sample_seconds,
            "jets_per_second": args.samples / sample_seconds,
        },
        "observables": numbers,
        "plot": plot.name,
    }
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("training", "sampling", "observables")}, indent=2))
    print(f"wrote {args.out} and {plot}")


if __name__ == "__main__":
    main()
