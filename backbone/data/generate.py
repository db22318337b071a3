"""Jet generation: Pythia 8 events -> FastJet jets -> ROOT shards, in parallel and resumable.

A dataset is a folder of shards, one process per shard (``top-0000.root``, ...). Every shard
has its own Pythia seed derived from (dataset seed, process, shard index), so the output is the
same for the same seed whatever the number of workers or batch jobs, and a rerun only fills the
shards that are missing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetfm.backbone.atomic import write_text
from jetfm.backbone.data.classes import jet_class
from jetfm.backbone.data.errors import DataError, GenerationError
from jetfm.backbone.data.jets import DEFAULT_PT_WINDOW, JetSelection, build_jets, could_be_contained, empty_jets
from jetfm.backbone.data.pythia import (
    MAX_PYTHIA_SEED,
    make_pythia,
    pythia_settings,
    truth_objects,
    visible_final_state,
)
from jetfm.backbone.data.rootio import read_provenance, write_jets
from jetfm.backbone.data.schema import PROCESSES, TREE_NAME, parse_processes

log = logging.getLogger(__name__)

MANIFEST = "dataset.json"
PYTHIA_VERSION = "8.317"
EVENTS_PER_BATCH = 64
# A window is declared unfillable when this many events give no jet at all.
MAX_EVENTS_WITHOUT_JET = 500
# ... or when fewer than one jet in this many events is accepted.
MIN_ACCEPTANCE = 1 / 200


@dataclass(frozen=True)
class GenerationConfig:
    processes: tuple[str, ...]
    n_jets: int
    pt_min: float = DEFAULT_PT_WINDOW[0]
    pt_max: float = DEFAULT_PT_WINDOW[1]
    eta_max: float = 2.0
    seed: int = 1
    ecm: float = 14000.0
    jets_per_shard: int = 2500
    fractions: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "processes", tuple(parse_processes(list(self.processes))))
        if self.n_jets < 1:
            raise DataError(f"n_jets must be at least 1, got {self.n_jets}")
        if not 20 <= self.pt_min < self.pt_max:
            raise DataError(
                f"pT window {self.pt_min:g}-{self.pt_max:g} GeV is invalid: need 20 <= pt_min < pt_max"
            )
        if self.pt_max > 0.45 * self.ecm:
            raise DataError(
                f"pt_max = {self.pt_max:g} GeV is beyond what sqrt(s) = {self.ecm:g} GeV can produce at a "
                f"useful rate; choose pt_max <= {0.45 * self.ecm:g} GeV"
            )
        if self.jets_per_shard < 1:
            raise DataError(f"jets_per_shard must be at least 1, got {self.jets_per_shard}")
        if self.fractions is not None:
            f = tuple(float(x) for x in self.fractions)
            if len(f) != len(self.processes) or any(x < 0 for x in f) or sum(f) <= 0:
                raise DataError(
                    f"fractions {self.fractions} must be one non-negative number per process "
                    f"({', '.join(self.processes)})"
                )
            object.__setattr__(self, "fractions", tuple(x / sum(f) for x in f))

    @property
    def selection(self) -> JetSelection:
        return JetSelection(pt_min=self.pt_min, pt_max=self.pt_max, eta_max=self.eta_max)

    def jets_per_process(self) -> dict[str, int]:
        """The class mix: equal shares unless fractions are given; totals add up to n_jets."""
        fr = self.fractions or tuple(1 / len(self.processes) for _ in self.processes)
        counts = [int(math.floor(self.n_jets * f)) for f in fr]
        for i in np.argsort([-(self.n_jets * f - c) for f, c in zip(fr, counts)])[
            : self.n_jets - sum(counts)
        ]:
            counts[i] += 1
        return dict(zip(self.processes, counts))


@dataclass(frozen=True)
class ShardTask:
    process: str
    index: int
    n_jets: int
    pythia_seed: int
    path: str
    config: GenerationConfig

    def provenance(self) -> dict[str, Any]:
        return {
            "generator": f"Pythia {PYTHIA_VERSION} (pythia8mc) + FastJet anti-kT",
            "process": self.process,
            "shard": self.index,
            "n_jets": self.n_jets,
            "seed": self.config.seed,
            "pythia_seed": self.pythia_seed,
            "pythia_settings": pythia_settings(
                self.process, self.config.pt_min, self.config.pt_max, self.pythia_seed, self.config.ecm
            ),
            "selection": asdict(self.config.selection),
            "truth_rule": "resonance and all its visible decay products within dR < R of the jet axis",
        }


@dataclass
class ShardStats:
    path: str
    process: str
    n_jets: int = 0
    n_events: int = 0
    seconds_pythia: float = 0.0
    seconds_extract: float = 0.0
    seconds_jets: float = 0.0
    seconds_write: float = 0.0
    n_skipped: int = 0  # events ruled out from their truth record, before their particles were read
    skipped: bool = False

    @property
    def seconds(self) -> float:
        return self.seconds_pythia + self.seconds_extract + self.seconds_jets + self.seconds_write


@dataclass
class GenerationSummary:
    out_dir: str
    config: dict[str, Any]
    shards: list[ShardStats] = field(default_factory=list)

    @property
    def n_jets(self) -> int:
        return sum(s.n_jets for s in self.shards)

    def jets_per_process(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.shards:
            out[s.process] = out.get(s.process, 0) + s.n_jets
        return out


def shard_seed(seed: int, process: str, index: int) -> int:
    """A Pythia seed (1..9e8) for one shard, independent across processes and shards."""
    state = np.random.SeedSequence([seed, PROCESSES.index(process), index]).generate_state(1)[0]
    return int(state) % MAX_PYTHIA_SEED + 1


def plan_shards(config: GenerationConfig, out_dir: str | os.PathLike) -> list[ShardTask]:
    tasks = []
    for process, n in config.jets_per_process().items():
        n_shards = math.ceil(n / config.jets_per_shard)
        for k in range(n_shards):
            size = min(config.jets_per_shard, n - k * config.jets_per_shard)
            path = str(Path(out_dir) / f"{process}-{k:04d}.root")
            tasks.append(ShardTask(process, k, size, shard_seed(config.seed, process, k), path, config))
    return tasks


def parse_shard_spec(spec: str | None) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) for batch systems: job i of N (0-based) takes every N-th shard."""
    if spec is None:
        return 0, 1
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise DataError(f"--shard {spec!r} must look like i/N (job i of N, from 0), e.g. 0/10") from None
    if not (n >= 1 and 0 <= i < n):
        raise DataError(f"--shard {spec!r}: job i of N needs N >= 1 and 0 <= i < N, e.g. 0/2 and 1/2")
    return i, n


def shard_is_complete(task: ShardTask) -> bool:
    """A finished shard: readable, written with these exact settings, with all its jets."""
    import uproot

    path = Path(task.path)
    if not path.exists():
        return False
    try:
        prov = read_provenance(path)
        with uproot.open(path) as f:
            entries = f[TREE_NAME].num_entries
    except Exception:  # noqa: BLE001 - any unreadable file is simply regenerated
        log.warning("%s is unreadable and will be regenerated", path)
        return False
    if prov != task.provenance():
        raise DataError(
            f"{path} was generated with other settings (seed, window or processes); "
            "choose another --name/--out or delete that folder to regenerate"
        )
    return entries == task.n_jets


def generate_shard(task: ShardTask, progress: Callable[[int], None] | None = None) -> ShardStats:
    """Generate one shard's jets and write them atomically; raise if the window cannot be filled."""
    cfg = task.config
    stats = ShardStats(path=task.path, process=task.process)
    pythia = make_pythia(pythia_settings(task.process, cfg.pt_min, cfg.pt_max, task.pythia_seed, cfg.ecm))
    spec = jet_class(task.process)
    batches: list[ak.Array] = []
    n_have = 0
    while n_have < task.n_jets:
        events, truths = [], []
        for _ in range(EVENTS_PER_BATCH):
            t0 = time.perf_counter()
            ok = pythia.next()
            t1 = time.perf_counter()
            stats.seconds_pythia += t1 - t0
            stats.n_events += 1
            if not ok:
                continue
            found = truth_objects(pythia.event, pythia.process.size(), spec.resonance) if spec.resonance else []
            # A signal event whose decay no jet could contain gives no jet: skip reading its particles.
            if spec.resonance is None or any(could_be_contained(t, cfg.selection, spec.leptons) for t in found):
                events.append(visible_final_state(pythia.event))
                truths.append(found)
            else:
                stats.n_skipped += 1
            stats.seconds_extract += time.perf_counter() - t1
        t2 = time.perf_counter()
        jets = build_jets(events, truths, task.process, cfg.selection)[: task.n_jets - n_have]
        stats.seconds_jets += time.perf_counter() - t2
        if len(jets):
            batches.append(jets)
            n_have += len(jets)
            if progress:
                progress(len(jets))
        _check_acceptance(task, n_have, stats.n_events)
    t3 = time.perf_counter()
    all_jets = ak.concatenate(batches) if batches else empty_jets()
    write_jets(task.path, all_jets, task.provenance())
    stats.seconds_write = time.perf_counter() - t3
    stats.n_jets = n_have
    return stats


def _check_acceptance(task: ShardTask, n_have: int, n_events: int) -> None:
    cfg = task.config
    window = f"{cfg.pt_min:g}-{cfg.pt_max:g} GeV"
    if n_have == 0 and n_events >= MAX_EVENTS_WITHOUT_JET:
        raise GenerationError(
            f"process {task.process!r}, jet pT window {window}: no jet passed after {n_events} events. "
            "Pythia cannot fill this window in reasonable time; widen it or move it closer to 550-650 GeV."
        )
    if n_events >= 20 * MAX_EVENTS_WITHOUT_JET and n_have < MIN_ACCEPTANCE * n_events:
        raise GenerationError(
            f"process {task.process!r}, jet pT window {window}: only {n_have} jets in {n_events} events; "
            f"{task.n_jets} jets would take too long. Widen the window or ask for fewer jets."
        )


def _worker_init() -> None:
    # One generator per worker; keep BLAS/torch threads from oversubscribing the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _run_in_worker(task: ShardTask, queue) -> ShardStats:
    return generate_shard(task, progress=queue.put if queue is not None else None)


def generate(
    config: GenerationConfig,
    out_dir: str | os.PathLike,
    workers: int = 1,
    shard: str | None = None,
    show_progress: bool = True,
) -> GenerationSummary:
    """Generate the dataset described by ``config`` into ``out_dir`` (missing shards only)."""
    from tqdm.auto import tqdm

    job, n_jobs = parse_shard_spec(shard)  # before the folder is made: a refused start leaves none
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [t for i, t in enumerate(plan_shards(config, out)) if i % n_jobs == job]
    _write_manifest(out, config)
    summary = GenerationSummary(out_dir=str(out), config=asdict(config))
    todo = []
    for t in tasks:
        if shard_is_complete(t):
            summary.shards.append(ShardStats(path=t.path, process=t.process, n_jets=t.n_jets, skipped=True))
        else:
            todo.append(t)
    total = sum(t.n_jets for t in todo)
    bar = tqdm(total=total, unit="jet", desc=f"generating {out.name}", disable=not show_progress or not todo)
    try:
        if workers <= 1 or len(todo) <= 1:
            for t in todo:
                summary.shards.append(generate_shard(t, progress=bar.update))
        else:
            summary.shards.extend(_generate_parallel(todo, workers, bar))
    finally:
        bar.close()
    return summary


def _generate_parallel(todo: list[ShardTask], workers: int, bar) -> list[ShardStats]:
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        q = manager.Queue()
        results: list[ShardStats] = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(_run_in_worker, t, q) for t in todo]
            pending = set(futures)
            try:
                while pending:
                    with contextlib.suppress(queue_mod.Empty):
                        bar.update(q.get(timeout=0.2))
                    done = {f for f in pending if f.done()}
                    for f in done:
                        results.append(f.result())  # re-raises a worker's error here
                    pending -= done
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            for f in as_completed(futures):
                f.result()
        while not q.empty():
            bar.update(q.get())
    return sorted(results, key=lambda s: s.path)


def _write_manifest(out: Path, config: GenerationConfig) -> None:
    """dataset.json: the settings every shard in the folder was generated with."""
    path = out / MANIFEST
    # JSON round trip so tuples compare equal to the lists read back from disk.
    manifest = json.loads(
        json.dumps({"format": "jetfm-dataset", "tree": TREE_NAME, "config": asdict(config)})
    )
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("config") != manifest["config"]:
            raise DataError(
                f"{out} already holds a dataset generated with other settings ({old.get('config')}); "
                "choose another --name/--out or delete that folder"
            )
        return
    write_text(path, json.dumps(manifest, indent=2))


def dataset_shards(out_dir: str | os.PathLike) -> list[Path]:
    """The shard files of a generated dataset folder, in a stable order."""
    return sorted(Path(out_dir).glob("*.root"))
