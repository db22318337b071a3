"""Batches that waste little work on padding: length buckets, slot fitting, random trimming, and the
Trainer paths that use them (bucketed batches, trimming, torch.compile on bucketed shapes)."""

from __future__ import annotations

import numpy as np
import torch
from test_finetune import SyntheticJets

from jetfm.backbone.data.batching import (
    LengthBuckets,
    fit_slots,
    inference_batches,
    particle_counts,
    random_trim,
)
from jetfm.backbone.finetune import build_classifier
from jetfm.backbone.registry import create_model
from jetfm.backbone.train import TrainConfig, Trainer


def _jets(counts: list[int], slots: int = 16) -> dict[str, np.ndarray]:
    mask = np.arange(slots)[None, :] < np.asarray(counts)[:, None]
    values = np.arange(len(counts) * slots, dtype=np.float32).reshape(len(counts), slots) + 1
    return {
        "features": np.stack([values, -values], -1) * mask[..., None],
        "mask": mask,
        "labels": np.arange(len(counts)),
    }


def test_length_buckets_cover_each_epoch_once_and_pad_less():
    rng = np.random.default_rng(0)
    counts = rng.integers(5, 120, 4000)
    buckets = LengthBuckets(counts, batch_size=100, seed=3, window=8)
    epoch = np.concatenate([buckets.global_batch(step) for step in range(40)])
    assert sorted(epoch) == list(range(4000))  # 40 batches of 100: every jet once
    assert not np.array_equal(buckets.global_batch(40), buckets.global_batch(0))  # a new epoch, a new order
    again = LengthBuckets(counts, batch_size=100, seed=3, window=8)  # a resumed run draws the same batches
    assert np.array_equal(again.global_batch(57), buckets.global_batch(57))
    padded = np.mean([counts[buckets.global_batch(s)].max() for s in range(40)])
    random = np.mean([counts[rng.permutation(4000)[:100]].max() for _ in range(40)])
    assert padded < 0.75 * random
    assert len(LengthBuckets(counts[:30], batch_size=100, seed=0).global_batch(0)) == 100  # tiny data cycles


def test_fit_slots_keeps_every_real_particle_in_a_multiple_of_eight():
    arrays = _jets([3, 11, 5])
    fitted = fit_slots(arrays, 8)
    assert fitted["mask"].shape == (3, 16) and fitted["features"].shape == (3, 16, 2)  # 11 -> 16: nothing cut
    fitted = fit_slots(_jets([3, 7, 5]), 8)
    assert fitted["mask"].shape == (3, 8) and fitted["labels"].shape == (3,)
    assert fitted["mask"].sum() == 15 and np.array_equal(fitted["features"], _jets([3, 7, 5])["features"][:, :8])
    scattered = _jets([2, 2])
    scattered["mask"][1] = False
    scattered["mask"][1, 9] = True  # not front-packed: slot 9 is real
    assert fit_slots(scattered, 8)["mask"].sum() == 3
    narrow = {k: v[:, :5] if v.ndim > 1 else v for k, v in _jets([3, 5]).items()}
    padded = fit_slots(narrow, 8, capacity=16)
    assert padded["mask"].shape == (2, 8) and not padded["mask"][:, 5:].any() and not padded["features"][:, 5:].any()


def test_random_trim_drops_random_particles_of_the_longest_jets_only():
    arrays = _jets([4, 16, 10, 6])
    assert random_trim(arrays, np.random.default_rng(0), (1.0, 1.2)) is arrays  # q = 1: unchanged
    trimmed = random_trim(arrays, np.random.default_rng(0), (0.5, 0.5))
    keep = int(np.quantile([4, 16, 10, 6], 0.5))
    assert trimmed["mask"].shape == (4, keep) and trimmed["mask"].sum(1).tolist() == [4, keep, keep, 6]
    for jet in range(4):
        kept = trimmed["features"][jet, trimmed["mask"][jet], 0]
        original = arrays["features"][jet, arrays["mask"][jet], 0]
        assert set(kept) <= set(original) and list(kept) == sorted(kept)  # a subset, in the original order
    assert np.array_equal(trimmed["features"][0, :4], arrays["features"][0, :4])  # short jets untouched
    other = random_trim(arrays, np.random.default_rng(1), (0.5, 0.5))
    assert not np.array_equal(other["features"], trimmed["features"])
    assert np.array_equal(trimmed["features"][..., 1], -trimmed["features"][..., 0])  # fields stay aligned


def test_inference_batches_visit_every_jet_once_sorted_by_multiplicity():
    data = SyntheticJets(50, seed=4)
    seen, widths = [], []
    for positions, arrays in inference_batches(data, 16):
        seen.extend(positions)
        widths.append(arrays["mask"].shape[1])
        assert np.array_equal(arrays["labels"], data.labels[positions])
    assert sorted(seen) == list(range(50)) and widths == sorted(widths) and all(w % 8 == 0 for w in widths)
    assert np.array_equal(particle_counts(data), data.mask.sum(1))


class _Recorder(torch.nn.Module):
    """Wraps a classifier and records the slot count and the longest jet of every training batch."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.widths, self.longest = inner, [], []

    def forward(self, batch):
        self.widths.append(batch["mask"].shape[1])
        self.longest.append(int(batch["mask"].sum(1).max()))
        return self.inner(batch)


def _record(tmp_path, **settings) -> _Recorder:
    torch.manual_seed(0)
    model = _Recorder(build_classifier(create_model("tiny"), ("qcd", "top"), mode="scratch"))
    config = TrainConfig(steps=12, batch_size=16, warmup_steps=1, checkpoint_every=100, **settings)
    Trainer(model, SyntheticJets(192, seed=1), config, tmp_path / str(settings)).fit(show_progress=False)
    return model


def test_trainer_buckets_batches_by_multiplicity(tmp_path):
    plain, bucketed = _record(tmp_path), _record(tmp_path, bucket=True)
    assert plain.widths == bucketed.widths == [16] * 12  # the slots stay: the encoder drops unused ones
    assert np.mean(bucketed.longest) < np.mean(plain.longest) - 2  # what the encoder runs


def test_trimmed_training_batches_come_in_multiples_of_eight(tmp_path):
    trimmed = _record(tmp_path, bucket=True, trim=True)
    assert set(trimmed.widths) <= {8, 16} and 8 in trimmed.widths  # the short (qcd-like) jets run in 8 slots
    assert all(longest <= width for longest, width in zip(trimmed.longest, trimmed.widths))


def test_compiled_training_runs_on_bucketed_shapes(tmp_path, monkeypatch):
    """The GPU path (torch.compile without packing) on CPU, with dynamo's eager backend: the code
    path, not the kernels."""
    monkeypatch.setattr(Trainer, "compile_backend", "eager")
    torch.manual_seed(0)
    classifier = build_classifier(create_model("tiny"), ("qcd", "top"), mode="scratch")
    config = TrainConfig(steps=4, batch_size=16, warmup_steps=1, checkpoint_every=100, bucket=True, compile=True)
    trainer = Trainer(classifier, SyntheticJets(64, seed=1), config, tmp_path)
    history = trainer.fit(show_progress=False)
    assert len(history) == 4 and all(np.isfinite(r["loss"]) for r in history)
    assert not classifier.encoder.pack_padding  # compiled models take the fitted slots as they are
    assert trainer.wrapped is not trainer.model
