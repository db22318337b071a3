"""The main job on embedded defaults (the README's first command). It grows as capabilities land:
for now it generates a small mixed sample of all five classes, summarises it and plots the jet
mass by class."""

from __future__ import annotations

from backbone.data.schema import PROCESSES
from tools.datasets import describe_dataset, generate_dataset, plot_observable
from tools.result import ToolResult


def run_demo(n_jets: int = 1000, workers: int = 2, seed: int = 1) -> ToolResult:
    name = f"demo-{n_jets}"
    # A rerun finds the shards complete and skips straight to the summary.
    print(f"Generating {n_jets} jets ({', '.join(PROCESSES)}) with Pythia 8 + FastJet on {workers} worker(s)...")
    print(generate_dataset(name, list(PROCESSES), n_jets=n_jets, seed=seed, workers=workers).text)
    summary = describe_dataset(name)
    plot = plot_observable(name, "mass", by_label=True)
    return ToolResult(
        text=f"{summary.text}\n\n{plot.text}", data={"dataset": name, "summary": summary.data}, plots=plot.plots
    )
