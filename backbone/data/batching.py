"""Batches of padded jets that waste little work on padding.

A jet holds from a few to ``max_particles`` real particles, and every batch runs as many slots as
its longest jet: a random batch of 128 jets with ~50 particles on average is padded to ~100 slots.
Two things cut that waste without changing what a model computes for any jet:

- `LengthBuckets`: the batch order of a training run in which each batch holds jets of similar
  multiplicity (a "sortish" sampler: each epoch is shuffled, cut into windows of a few dozen
  batches, each window sorted by multiplicity and cut into batches, and the batches shuffled);
- `fit_slots`: a batch is cut to the slots some jet uses, rounded up to a multiple of
  `PAD_MULTIPLE` (8), so that there are at most ``max_particles / 8`` distinct shapes (what
  ``torch.compile`` likes). The encoder drops slots that are padding in every jet by itself, so
  eager training gains little from it, and augmentations that split particles use the padding:
  the Trainer cuts batches only when it compiles or trims them.

`random_trim` is a training augmentation after weaver-core's ``SequenceTrimmer``: the jets above a
random quantile of the batch's multiplicities keep a random subset of their particles. It changes
the inputs, so it is off unless asked for. `inference_batches` gives a whole dataset in
multiplicity order for evaluation, where batch composition does not matter.

Every function takes and returns the ``dict[str, np.ndarray]`` batches of ``backbone.train``; the
arrays with a particle axis are those whose first two dimensions are the mask's (B, P).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from jetfm.errors import UsageError

PAD_MULTIPLE = 8
BUCKET_WINDOW = 32  # batches sorted together; larger windows pad less but make batches more alike
TRIM_RANGE = (0.9, 1.02)  # weaver-core's quantile range; q is drawn in it and capped at 1
_COUNT_CHUNK = 65_536


def particle_counts(data: Any) -> np.ndarray:
    """(len(data),) number of real particles of every jet: ``data.particle_counts()`` where the
    source has it (a cache computes it from its mask once), otherwise from the masks of its batches."""
    if hasattr(data, "particle_counts"):
        return np.asarray(data.particle_counts())
    n = len(data)
    starts = range(0, n, _COUNT_CHUNK)
    chunks = [data.batch(np.arange(start, min(start + _COUNT_CHUNK, n)))["mask"].sum(1) for start in starts]
    return np.concatenate(chunks).astype(np.int32) if chunks else np.empty(0, np.int32)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class LengthBuckets:
    """The global batch of every training step, drawn so that each batch holds jets of similar
    multiplicity; like ``backbone.train.batch_indices`` a pure function of the step (exact resume)
    and of `seed`, with every jet once per epoch of ``len(counts) // batch_size`` batches.

    Bucketing makes the jets of a batch alike, and multiplicity is correlated with the class (top
    jets have more particles than QCD jets) and with the per-particle features: batch statistics
    (the input batch norms) and per-batch class balance are less representative than in random
    batches. `window` bounds that: only `window` batches' worth of jets are sorted together.
    """

    def __init__(self, counts: np.ndarray, batch_size: int, seed: int, window: int = BUCKET_WINDOW) -> None:
        if batch_size < 1 or window < 1:
            raise UsageError(f"LengthBuckets needs batch_size >= 1 and window >= 1, got {batch_size} and {window}")
        self.counts = np.asarray(counts)
        self.batch_size = batch_size
        self.seed = seed
        self.window = window
        self._epoch: tuple[int, np.ndarray] | None = None  # (epoch, its batches), built once per epoch

    @property
    def batches_per_epoch(self) -> int:
        return max(1, len(self.counts) // self.batch_size)

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """(batches_per_epoch, batch_size) jet indices of one epoch, in the order they are used."""
        if self._epoch is not None and self._epoch[0] == epoch:
            return self._epoch[1]
        n, size = len(self.counts), self.batch_size
        order = np.random.default_rng([self.seed, epoch]).permutation(n)
        if n < size:  # tiny datasets: cycle through the permutation
            order = np.resize(order, size)
        span = size * self.window
        for start in range(0, len(order), span):
            part = order[start : start + span]
            order[start : start + span] = part[np.argsort(self.counts[part], kind="stable")]
        batches = order[: self.batches_per_epoch * size].reshape(self.batches_per_epoch, size)
        batches = batches[np.random.default_rng([self.seed, epoch, 1]).permutation(len(batches))]
        self._epoch = (epoch, batches)
        return batches

    def global_batch(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.batches_per_epoch)
        return self.epoch_batches(epoch)[k]


def _slot_arrays(arrays: dict[str, np.ndarray]) -> list[str]:
    shape = arrays["mask"].shape
    return [name for name, values in arrays.items() if values.ndim >= 2 and values.shape[:2] == shape]


def fit_slots(
    arrays: dict[str, np.ndarray], multiple: int = PAD_MULTIPLE, capacity: int | None = None
) -> dict[str, np.ndarray]:
    """The batch cut to the slots that some jet uses, rounded up to a multiple of `multiple`; a batch
    already narrower than that (after `random_trim`) is padded with zeros up to it, but never beyond
    `capacity` (default: its current width). Only slots that are padding in every jet are removed."""
    mask = arrays["mask"]
    width = mask.shape[1]
    used = np.flatnonzero(mask.any(0))
    needed = int(used[-1]) + 1 if used.size else 1
    target = min(round_up(needed, multiple), max(width, capacity or width))
    if target == width:
        return arrays
    out = dict(arrays)
    for name in _slot_arrays(arrays):
        values = arrays[name]
        if target < width:
            out[name] = values[:, :target]
        else:
            pad = [(0, 0), (0, target - width)] + [(0, 0)] * (values.ndim - 2)
            out[name] = np.pad(values, pad)
    return out


def random_trim(
    arrays: dict[str, np.ndarray], rng: np.random.Generator, quantiles: tuple[float, float] = TRIM_RANGE
) -> dict[str, np.ndarray]:
    """weaver-core's training-time trimming: q ~ U(*quantiles), capped at 1; jets with more real
    particles than the q-quantile L of the batch's multiplicities keep L of them, chosen at random
    (in their original order); the batch is then L slots wide. With q = 1 nothing changes."""
    mask = arrays["mask"]
    counts = mask.sum(1)
    q = min(float(rng.uniform(*quantiles)), 1.0)
    keep = max(int(np.quantile(counts, q)), 1)
    if keep >= counts.max():
        return arrays
    slots = np.arange(mask.shape[1])
    long = counts > keep
    # order of the slots of each jet: its real particles first (at random in long jets), padding last
    key = np.where(mask, np.where(long[:, None], rng.random(mask.shape), slots[None, :]), np.inf)
    picked = np.sort(np.argsort(key, axis=1, kind="stable")[:, :keep], axis=1)
    out = dict(arrays)
    for name in _slot_arrays(arrays):
        values = arrays[name]
        index = picked.reshape(picked.shape + (1,) * (values.ndim - 2))
        out[name] = np.take_along_axis(values, index, axis=1)
    return out


def inference_batches(
    data: Any, batch_size: int, multiple: int = PAD_MULTIPLE
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """(positions, batch) over every jet of `data` in order of multiplicity, each batch cut by
    `fit_slots`; write results to ``out[positions]``. For models in eval mode, whose output for a
    jet does not depend on the other jets of its batch."""
    order = np.argsort(particle_counts(data), kind="stable")
    for start in range(0, len(order), batch_size):
        positions = np.sort(order[start : start + batch_size])
        yield positions, fit_slots(data.batch(positions), multiple)
