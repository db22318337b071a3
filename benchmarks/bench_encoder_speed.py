"""CPU throughput (jets/s) and peak memory of the jet encoder, beside weaver-core's ParticleTransformer,
at equal size and equal work.

    .venv/bin/python benchmarks/bench_encoder_speed.py [--models tiny small] [--warmup 1] [--iters 3]

Batches of 256 jets in 128 particle slots with ~50 real particles each (front-packed, as the data
pipeline pads pT-ordered constituents). Both models drop the slots that are padding in every jet, so
each attends over as many slots as the batch's longest jet. In training, weaver's SequenceTrimmer
also drops random particles of the longest jets (it cuts the batch to a random quantile q in
[0.9, 1] of its multiplicities), so at its defaults it does less work per jet. The benchmark
therefore fixes the work and reports it: every row states the slots each side attends over and
the real particles per jet it keeps. Settings:

- ``inference``: eval mode, both at the longest jet (weaver trims only padding in eval);
- ``training``: an AdamW step (the fused kernel for both), both at the longest jet (weaver's
  trimming quantile fixed at 1);
- ``training_trim0.9``: the same with the batch cut to its 0.9-quantile multiplicity on both sides
  (weaver's trimmer at q = 0.9; jetfm through ``backbone.data.batching.random_trim``, which the
  Trainer applies with ``TrainConfig(trim=True)``);
- ``inference_dataset``: a dataset of 8 such batches (2,048 jets) embedded the way each pipeline
  does it: jetfm through ``inference_batches`` (``embed``, ``predict`` and the scans order a
  dataset by multiplicity and cut each batch to the slots it uses), weaver batch by batch in file
  order (its trimmer drops the padding of each batch). The same jets and real particles; the slots
  each side attends over per jet are reported.

The CPU may be shared with other work, so the two implementations are timed in one process,
alternating batch by batch, and the fastest batch is the headline (the one least disturbed by other
processes); medians are kept too. Peak memory comes from one warm-up batch in a fresh subprocess per
implementation. weaver-core is optional: without it only jetfm is measured. Results go to
benchmarks/results/encoder_speed.json.
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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.peers import weaver_part  # noqa: E402
from jetfm.backbone.config import EncoderConfig  # noqa: E402
from jetfm.backbone.data.batching import inference_batches, random_trim  # noqa: E402
from jetfm.backbone.registry import create_model, model_config  # noqa: E402
from jetfm.backbone.train import adamw  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "encoder_speed.json"
BATCH, SLOTS, MEAN_REAL, SPREAD_REAL = 256, 128, 50, 15
MODES = {"inference": 1.0, "training": 1.0, "training_trim0.9": 0.9, "inference_dataset": 1.0}  # -> trim quantile
DATASET_BATCHES = 8  # inference_dataset: batches of BATCH jets in the dataset


class _ArrayJets:
    """An in-memory dataset with the interface ``inference_batches`` reads."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays["mask"])

    def particle_counts(self) -> np.ndarray:
        return self.arrays["mask"].sum(1)

    def batch(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[positions] for k, v in self.arrays.items()}


def dataset_step(implementation: str, model: torch.nn.Module, input_dim: int) -> tuple[Callable[[], None], dict]:
    """One pass over a dataset of DATASET_BATCHES batches, batched as each pipeline batches it."""
    batches = [make_batch(input_dim, seed) for seed in range(DATASET_BATCHES)]
    mask = torch.cat([b[2] for b in batches])
    if implementation == "jetfm":
        names = ("features", "vectors", "mask")
        data = _ArrayJets({k: torch.cat([b[i] for b in batches]).numpy() for i, k in enumerate(names)})
        runs = [tuple(torch.from_numpy(np.ascontiguousarray(arrays[k])) for k in names)
                for _, arrays in inference_batches(data, BATCH)]
        slots = [int(r[2].shape[1]) for r in runs]
    else:
        runs = [(f.transpose(1, 2), v.transpose(1, 2), m[:, None].float()) for f, v, m in batches]
        slots = [int(m.sum(1).max()) for _, _, m in batches]

    def step() -> None:
        with torch.inference_mode():
            for inputs in runs:
                model(*inputs)

    work = {"slots_per_jet": round(sum(slots) / len(slots), 1),
            "real_particles_per_jet": round(float(mask.sum(1).float().mean()), 1),
            "jets_per_step": len(mask)}
    return step, work


def make_batch(input_dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    counts = (MEAN_REAL + SPREAD_REAL * torch.randn(BATCH, generator=gen)).round().clamp(5, SLOTS)
    mask = torch.arange(SLOTS)[None, :] < counts[:, None]
    pt = 1.0 + 50.0 * torch.rand(BATCH, SLOTS, generator=gen)
    eta, phi = 0.4 * torch.randn(2, BATCH, SLOTS, generator=gen)
    vectors = torch.stack([pt * phi.cos(), pt * phi.sin(), pt * eta.sinh(), pt * eta.cosh()], dim=-1)
    features = torch.randn(BATCH, SLOTS, input_dim, generator=gen)
    return features * mask[..., None], vectors * mask[..., None], mask


def weaver_model(config: EncoderConfig, quantile: float) -> torch.nn.Module:
    """weaver-core's ParT at the same sizes, returning the (B, D) class-token embedding (no classifier),
    its training-time trimming fixed at `quantile` of the batch's multiplicities."""
    model = weaver_part(config)
    # its SequenceTrimmer drops padding only after 5 warm-up calls; start in that steady state
    model.trimmer._counter.fill_(model.trimmer.warmup_steps)
    model.trimmer.target = (quantile, quantile)
    return model


def jetfm_inputs(features: torch.Tensor, vectors: torch.Tensor, mask: torch.Tensor, quantile: float):
    """The batch as jetfm's Trainer would give it with ``trim``: cut to `quantile` of its multiplicities."""
    if quantile >= 1.0:
        return features, vectors, mask
    arrays = {"features": features.numpy(), "vectors": vectors.numpy(), "mask": mask.numpy()}
    trimmed = random_trim(arrays, np.random.default_rng(0), (quantile, quantile))
    return tuple(torch.from_numpy(np.ascontiguousarray(trimmed[k])) for k in ("features", "vectors", "mask"))


def effective_work(mask: torch.Tensor, implementation: str, quantile: float) -> dict[str, float]:
    """Slots attended per jet and real particles kept per jet, as each implementation trims."""
    counts = mask.sum(1)
    if implementation == "jetfm":
        slots = int(counts.max())
    else:  # SequenceTrimmer: torch.quantile of the multiplicities at q, truncated to an integer
        slots = int(torch.quantile(counts.float(), quantile).long()) if quantile < 1.0 else int(counts.max())
    return {"slots_per_jet": slots, "real_particles_per_jet": round(float(counts.clamp(max=slots).float().mean()), 1)}


def make_step(implementation: str, name: str, mode: str) -> tuple[Callable[[], None], int, dict[str, float]]:
    """A function running one batch (a full AdamW step in training), the model's parameter count and
    the work it does per jet."""
    torch.manual_seed(0)
    config = model_config(name)
    quantile = MODES[mode]
    features, vectors, mask = make_batch(config.input_dim)
    if implementation == "jetfm":
        model = create_model(name)
        inputs = jetfm_inputs(features, vectors, mask, quantile)
        work = effective_work(inputs[2], "jetfm", 1.0)
    else:  # weaver takes channels-first inputs and a float (B, 1, P) mask
        model = weaver_model(config, quantile)
        inputs = (features.transpose(1, 2), vectors.transpose(1, 2), mask[:, None].float())
        work = effective_work(mask, "weaver", quantile)
    training = mode.startswith("training")
    model.train(training)
    if mode == "inference_dataset":
        step, work = dataset_step(implementation, model, config.input_dim)
        return step, sum(p.numel() for p in model.parameters()), work
    optimizer = adamw([{"params": list(model.parameters())}], 1e-4, torch.device("cpu"))

    def step() -> None:
        if not training:
            with torch.inference_mode():
                model(*inputs)
            return
        optimizer.zero_grad(set_to_none=True)
        model(*inputs).square().mean().backward()
        optimizer.step()

    return step, sum(p.numel() for p in model.parameters()), work


def peak_memory(implementation: str, name: str, mode: str) -> dict:
    """Resident memory of one batch (activations, gradients, optimizer state) in this fresh process."""
    step, _, _ = make_step(implementation, name, mode)
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
        for impl, (step, _, _) in steps.items():
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
            **steps[impl][2],
            "jets_per_s": round(steps[impl][2].get("jets_per_step", BATCH) / min(times[impl]), 1),
            "jets_per_s_median": round(steps[impl][2].get("jets_per_step", BATCH) / statistics.median(times[impl]), 1),
            "seconds_per_batch": [round(t, 3) for t in times[impl]],
            **peak_memory_in_subprocess(impl, name, mode),
        }
        for impl in implementations
    ]


def encoder_state() -> dict[str, str]:
    """Which encoder was measured: the hash of backbone/encoder.py and its regularisation."""
    import hashlib

    from jetfm.backbone import encoder

    source = Path(encoder.__file__).read_bytes()
    return {
        "encoder_py_sha1": hashlib.sha1(source).hexdigest()[:12],
        "drop_path": str(b"def drop_path" in source),
        "attention_dropout": str(b"dropout_p=" in source),
    }


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
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
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
        for mode in args.modes:
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
        "training_step": "fused AdamW step on the mean squared jet embedding (no head), each model's own "
        "regularisation in training mode (weaver: dropout 0.1; jetfm: its config's)",
        "modes": {m: f"trimming quantile {q}" for m, q in MODES.items() if m in args.modes},
        "dataset_jets": BATCH * DATASET_BATCHES,
        "encoder": encoder_state(),
        "jets_per_s": "from the fastest timed batch; jets_per_s_median from the median one",
        "results": results,
        "jetfm_over_weaver_throughput": ratios(results, "jets_per_s"),
        "jetfm_over_weaver_throughput_median": ratios(results, "jets_per_s_median"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
