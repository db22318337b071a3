"""The main job on embedded defaults (the README's first command). It grows as capabilities land:
a small mixed sample of every jet class (Pythia 8 + FastJet), its summary and jet-mass plot, then
the shipped backbone embeds it, a FAISS index finds the jets most like a top jet, and the shipped
jet-text alignment finds jets from a description in words. ``jetfm demo`` (agent/cli.py) then opens
the chat app on the same workspace; ``--no-serve`` stops after the searches."""

from __future__ import annotations

from jetfm.backbone.data.schema import PROCESSES
from jetfm.tools.datasets import describe_dataset, generate_dataset, plot_observable
from jetfm.tools.models import DEFAULT_MODEL
from jetfm.tools.result import ToolResult
from jetfm.tools.search import build_index, embeddings_for, search_similar
from jetfm.tools.text_search import search_text


def run_demo(n_jets: int = 1000, workers: int = 2, seed: int = 1) -> ToolResult:
    name = f"demo-{n_jets}"
    # A rerun finds the shards complete and skips straight to the summary.
    print(f"Generating {n_jets} jets ({', '.join(PROCESSES)}) with Pythia 8 + FastJet on {workers} worker(s)...")
    print(generate_dataset(name, list(PROCESSES), n_jets=n_jets, seed=seed, workers=workers).text)
    summary = describe_dataset(name)
    print(summary.text)
    plot = plot_observable(name, "mass", by_label=True)
    print(plot.text)

    print(f"\nEmbedding the sample with the shipped backbone {DEFAULT_MODEL!r} and indexing it...")
    index = build_index(name, DEFAULT_MODEL)
    labels = embeddings_for(DEFAULT_MODEL, name).metadata["label"].to_numpy()
    query = int((labels == PROCESSES.index("top")).nonzero()[0][0])
    similar = search_similar(name, index.data["name"], entry=query, k=10)
    same = sum(r["label"] == PROCESSES.index("top") for r in similar.data["results"])
    chance = 10 / len(PROCESSES)
    text = f"{similar.text}\n{same} of the 10 nearest jets are top jets (a random pick would give ~{chance:.0f})."
    print(text)

    query = "three-pronged boosted top quark jets"
    print(f"\nSearching the sample in words with the shipped jet-text alignment: {query!r}")
    found = search_text(query, k=10, dataset=name)
    print(found.text)
    return ToolResult(
        text="Done: the sample, its summary, the mass plot, a similarity search and a text search above.",
        data={"dataset": name, "summary": summary.data, "similar": similar.data, "text_search": found.data},
        plots=plot.plots,
    )
