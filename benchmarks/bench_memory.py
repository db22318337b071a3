"""Resident memory of long training runs: a tiny MPM pretraining, then a full finetune of it.

    .venv/bin/python benchmarks/bench_memory.py --data DATA [--label after] [--pretrain-steps 2000]
        [--finetune-steps 500] [--batch-size 128] [--n-labels 400]

DATA is a folder of ROOT shards holding (at least) top and QCD jets. Each phase runs in a fresh
process (so that one phase's heap does not carry into the other) and samples its resident memory
every 10 steps from /proc/self/status: VmRSS (all of it), RssAnon (the heap and the process's own
mappings: what grows when memory is kept) and RssFile (pages of mapped files, e.g. the
memory-mapped cache, which the kernel can drop). Reported per phase: peak (VmHWM) and end RSS,
RSS after the first 50 steps, and the growth from there to the end.

The phases use only the training loop (`backbone.train.Trainer`), so the same script measures an
older checkout: run it with PYTHONPATH pointing at that checkout's package and ``--label before``.
A checkout from before the ``jetfm`` namespace (top-level ``backbone`` package, e.g. 85018fd, the
landed main the memory issue was measured on) is given with ``--old-root``: its training modules
stand in for ``jetfm.backbone``'s (the memory sampler stays this checkout's).
Results accumulate in benchmarks/results/memory.json under their label.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.machine import machine_info  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"
SAMPLE_EVERY = 10
SETTLED_STEP = 50  # growth is measured from here: the first steps fill caches and the optimizer state
PHASES = ("pretrain", "finetune")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of ROOT shards with top and QCD jets")
    parser.add_argument("--label", default="after", help="name of this measurement in the JSON (before/after)")
    parser.add_argument("--pretrain-steps", type=int, default=2000)
    parser.add_argument("--finetune-steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-labels", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each phase")
    parser.add_argument("--work", type=Path, default=Path("jetfm-workspace/bench_memory"), help="cache, runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES)
    parser.add_argument("--pretrained", type=Path, help="encoder the finetune starts from (default: the pretraining's)")
    parser.add_argument("--old-root", type=Path, help="checkout with a top-level 'backbone' package (pre-namespace)")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    return parser.parse_args()


def run_phase(args: argparse.Namespace) -> dict:
    """One phase in this process; returns its memory samples and summary."""
    import shutil

    import torch

    from jetfm.backbone.memory import resident_memory
    if args.old_root:
        _use_old_modules(args.old_root)
    from jetfm.backbone.data.cache import open_cache
    from jetfm.backbone.finetune import LabelSubset, build_classifier
    from jetfm.backbone.pretrain.base import create_objective
    from jetfm.backbone.registry import create_model
    from jetfm.backbone.train import TrainConfig, Trainer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = open_cache(args.data, args.work / "cache")
    pretrained = args.pretrained or args.work / "pretrained"
    if args.phase == "pretrain":
        steps = args.pretrain_steps
        model = create_objective("mpm", create_model("tiny"))
        model.prepare(data, seed=0)
        source, groups = data, None
    else:
        steps = args.finetune_steps
        from jetfm.backbone.checkpoint import from_pretrained

        source = LabelSubset(data, args.n_labels, ("qcd", "top"), seed=0)
        model = build_classifier(from_pretrained(pretrained), ("qcd", "top"), mode="full")
        groups = model.param_groups()
    samples: list[dict] = []
    start = time.perf_counter()

    progress = args.work / f"progress-{args.phase}.jsonl"  # to follow a long run
    progress.unlink(missing_ok=True)

    def on_step(step: int, row: dict) -> None:
        if step % SAMPLE_EVERY == 0 or step == 1:
            samples.append({"step": step, "seconds": round(time.perf_counter() - start, 1), **resident_memory()})
            with progress.open("a") as f:
                f.write(json.dumps(samples[-1]) + "\n")

    run_dir = args.work / f"run-{args.phase}"
    shutil.rmtree(run_dir, ignore_errors=True)
    config = TrainConfig(
        steps=steps, batch_size=args.batch_size, lr=5e-4, warmup_steps=min(200, steps // 10),
        checkpoint_every=max(50, min(500, steps // 5)), log_every=50,
    )
    Trainer(model, source, config, run_dir, param_groups=groups, on_step=on_step).fit(show_progress=False)
    if args.phase == "pretrain":
        model.save_pretrained(args.work / "pretrained")
    end = resident_memory()
    settled = next(s for s in samples if s["step"] >= min(SETTLED_STEP, steps))
    return {
        "phase": args.phase,
        "steps": steps,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "jets": len(source),
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mb": round(end["peak"], 1),
        "end_rss_mb": round(end["rss"], 1),
        "end_anon_mb": round(end["anon"], 1),
        "end_file_mb": round(end["file"], 1),
        f"rss_at_step_{settled['step']}_mb": round(settled["rss"], 1),
        "growth_after_settling_mb": round(end["rss"] - settled["rss"], 1),
        "anon_growth_after_settling_mb": round(end["anon"] - settled["anon"], 1),
        "samples": samples,
    }


def _use_old_modules(root: Path) -> None:
    """``jetfm.backbone.X`` is the old checkout's ``backbone.X`` for the modules a phase imports."""
    import importlib

    sys.path.insert(0, str(root.resolve()))
    for name in ("data.cache", "finetune", "pretrain.base", "registry", "train", "checkpoint"):
        sys.modules[f"jetfm.backbone.{name}"] = importlib.import_module(f"backbone.{name}")


def main() -> None:
    args = parse_args()
    if args.phase:
        print(json.dumps(run_phase(args)))
        return
    import jetfm

    code = str(args.old_root.resolve() if args.old_root else Path(jetfm.__file__).resolve().parent)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    phases = results.get(args.label, {}).get("phases", {})  # a phase run on its own joins the others
    for phase in args.phases:
        command = [sys.executable, __file__, *sys.argv[1:], "--phase", phase]
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{phase} failed:\n{out.stderr[-3000:]}")
        phases[phase] = json.loads(out.stdout.strip().splitlines()[-1])
        summary = {k: v for k, v in phases[phase].items() if k != "samples"}
        print(json.dumps(summary), flush=True)
    results[args.label] = {**machine_info(), "jetfm_code": code, "data": str(args.data), "phases": phases}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} [{args.label}]")


if __name__ == "__main__":
    main()
