"""Model-ready tensors from jets in schema form, weaver-style.

The data configuration (:class:`FeatureConfig`: which features, how many particles) lives here,
apart from the network code, so the encoder only ever sees ``cfg.num_features`` channels.
Per particle, pT-ordered and padded with exact zeros to ``max_particles``:

- ParT's kinematic features: log pT, log E, log pT/pT_jet, log E/E_jet, dR, deta, dphi
  (jet pT and energy are the stored ``jet_pt``/``jet_energy``, i.e. of all constituents, not
  only the ``max_particles`` kept);
- optionally charge and the five particle-ID flags (zero where a file has none);
- the four-vector (px, py, pz, E) alongside, for pairwise features.

Everything is vectorised over the flat particle arrays; there is no Python loop over jets.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import awkward as ak
import numpy as np

from jetfm.backbone.data.errors import DataError
from jetfm.backbone.data.kinematics import transverse_momentum
from jetfm.backbone.data.readers import ReadReport, Source, flat_particles, iterate_located_jets
from jetfm.backbone.data.schema import PARTICLE_KINEMATICS, PID_FLAGS, label_indices
from jetfm.errors import UsageError

KINEMATIC_FEATURES = (
    "part_pt_log",
    "part_e_log",
    "part_logptrel",
    "part_logerel",
    "part_deltaR",
    "part_deta",
    "part_dphi",
)
CHARGE_PID_FEATURES = ("part_charge", *PID_FLAGS)
# Floor for the logs: a zero-momentum particle would otherwise give -inf and poison the model.
_LOG_FLOOR = np.float32(1e-8)


# The per-jet arrays a model reads (the batch dict of backbone.train).
MODEL_INPUTS = ("features", "mask", "vectors", "labels")


@dataclass(frozen=True)
class FeatureConfig:
    """Which particle features the model sees and how many particles per jet."""

    max_particles: int = 128
    include_charge_pid: bool = False

    def __post_init__(self) -> None:
        if self.max_particles <= 0:
            raise DataError(f"max_particles must be positive, got {self.max_particles}")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return KINEMATIC_FEATURES + (CHARGE_PID_FEATURES if self.include_charge_pid else ())

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        return cls(**data)


@dataclass
class JetTensors:
    """Padded per-particle arrays plus jet-level arrays, all numpy, first axis = jets."""

    features: np.ndarray  # (N, P, F) float32, zero on padding
    mask: np.ndarray  # (N, P) bool, True on real particles
    vectors: np.ndarray  # (N, P, 4) float32 (px, py, pz, E), zero on padding
    labels: np.ndarray  # (N,) int64, index into schema.PROCESSES, -1 if unknown
    pt: np.ndarray  # (N,) float32, jet-level from here on
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    sdmass: np.ndarray  # NaN where the source had no soft-drop mass
    nparticles: np.ndarray  # (N,) int32, constituents before truncation
    tau21: np.ndarray  # NaN where the source had no N-subjettiness
    tau32: np.ndarray
    tau43: np.ndarray  # four- vs three-prong: what H -> WW* -> 4q jets have and others lack
    # Provenance, None when the jets did not come through a reader (e.g. generated in memory):
    file_index: np.ndarray | None = None  # (N,) int32, index into the source's resolved files
    entry: np.ndarray | None = None  # (N,) int64, the jet's stored entry in that file (counted before drops)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Any) -> JetTensors:
        return JetTensors(**{name: values[index] for name, values in self.arrays().items()})

    def batch(self, indices: Any) -> dict[str, np.ndarray]:
        """The model inputs of some jets: the ``BatchSource`` interface of ``backbone.train``."""
        return {name: getattr(self, name)[indices] for name in MODEL_INPUTS}

    def arrays(self) -> dict[str, np.ndarray]:
        """Field name -> array, in declaration order; provenance fields only when known."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def concat(cls, parts: Sequence[JetTensors]) -> JetTensors:
        names = parts[0].arrays()
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})


def make_tensors(
    jets: ak.Array,
    cfg: FeatureConfig | None = None,
    file_index: int | None = None,
    entries: np.ndarray | None = None,
) -> JetTensors:
    """Model-ready tensors for ``jets`` (schema fields, as the readers deliver them).

    ``file_index`` and ``entries`` (from :class:`~backbone.data.readers.LocatedJets`) record where
    the jets came from; without them the provenance fields stay None.
    """
    if (file_index is None) != (entries is None):
        raise UsageError("give both file_index and entries (where the jets came from), or neither")
    cfg = FeatureConfig() if cfg is None else cfg
    n, size = len(jets), cfg.max_particles
    names = (*PARTICLE_KINEMATICS, "part_deta", "part_dphi")
    if cfg.include_charge_pid:
        names += CHARGE_PID_FEATURES
    offsets, part = flat_particles(jets, names)
    jet_index = np.repeat(np.arange(n), np.diff(offsets))
    px, py, pz, energy = (part[b].astype(np.float32, copy=False) for b in PARTICLE_KINEMATICS)
    pt = transverse_momentum(px, py)

    # Sorted particles stay grouped by jet, so a particle's slot is its rank inside its jet.
    order = _pt_order(pt, jet_index)
    slot = np.arange(len(order)) - offsets[jet_index]
    kept = slot < size
    src, owner = order[kept], jet_index[kept]
    rows = owner * size + slot[kept]

    jet_pt = _jet_column(jets, "jet_pt", np.float32)
    jet_energy = _jet_column(jets, "jet_energy", np.float32)
    columns = _particle_features(part, pt[src], energy[src], src, jet_pt[owner], jet_energy[owner], cfg)
    vectors = np.stack([px[src], py[src], pz[src], energy[src]], axis=1)
    return JetTensors(
        features=_scatter(columns, rows, n, size),
        mask=np.arange(size) < np.diff(offsets)[:, None],
        vectors=_scatter(vectors, rows, n, size),
        labels=label_indices(jets),
        pt=jet_pt,
        eta=_jet_column(jets, "jet_eta", np.float32),
        phi=_jet_column(jets, "jet_phi", np.float32),
        mass=_jet_column(jets, "jet_mass", np.float32),
        sdmass=_jet_column(jets, "jet_sdmass", np.float32),
        nparticles=np.diff(offsets).astype(np.int32),
        tau21=_ratio(jets, "jet_tau2", "jet_tau1"),
        tau32=_ratio(jets, "jet_tau3", "jet_tau2"),
        tau43=_ratio(jets, "jet_tau4", "jet_tau3"),
        file_index=None if file_index is None else np.full(n, file_index, np.int32),
        entry=None if entries is None else np.asarray(entries, np.int64),
    )


def _pt_order(pt: np.ndarray, jet_index: np.ndarray) -> np.ndarray:
    """Flat permutation sorting particles by jet, then by descending pT.

    For non-negative float32 the bit pattern orders like the value, so (jet << 32) - bits is an
    exact integer sort key; the stable sort is near-linear when inputs are already pT-ordered.
    """
    bits = np.ascontiguousarray(pt, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.argsort((jet_index.astype(np.int64) << 32) - bits, kind="stable")


def _particle_features(
    part: dict[str, np.ndarray],
    pt: np.ndarray,
    energy: np.ndarray,
    src: np.ndarray,
    jet_pt: np.ndarray,
    jet_energy: np.ndarray,
    cfg: FeatureConfig,
) -> np.ndarray:
    """(kept particles, F) float32 in the order of ``cfg.feature_names``."""
    out = np.empty((len(src), cfg.num_features), np.float32)
    log_pt = np.log(np.maximum(pt, _LOG_FLOOR))
    log_e = np.log(np.maximum(energy, _LOG_FLOOR))
    deta = part["part_deta"][src]
    dphi = part["part_dphi"][src]
    out[:, 0] = log_pt
    out[:, 1] = log_e
    out[:, 2] = log_pt - np.log(np.maximum(jet_pt, _LOG_FLOOR))
    out[:, 3] = log_e - np.log(np.maximum(jet_energy, _LOG_FLOOR))
    out[:, 4] = np.hypot(deta, dphi)
    out[:, 5] = deta
    out[:, 6] = dphi
    if cfg.include_charge_pid:
        for k, name in enumerate(CHARGE_PID_FEATURES, start=len(KINEMATIC_FEATURES)):
            out[:, k] = part[name][src]
    return out


def _scatter(values: np.ndarray, rows: np.ndarray, n: int, size: int) -> np.ndarray:
    """(kept, C) rows into a zero (n, size, C) array at flat slots ``rows``."""
    width = values.shape[1]
    out = np.zeros((n * size, width), values.dtype)
    # Moving whole rows as opaque records is faster than 2-d fancy assignment.
    record = np.dtype((np.void, width * values.dtype.itemsize))
    out.view(record)[rows, 0] = np.ascontiguousarray(values).view(record)[:, 0]
    return out.reshape(n, size, width)


def _jet_column(jets: ak.Array, name: str, dtype: type) -> np.ndarray:
    return np.asarray(ak.to_numpy(jets[name]), dtype=dtype)


def _ratio(jets: ak.Array, num: str, den: str) -> np.ndarray:
    top, bottom = _jet_column(jets, num, np.float32), _jet_column(jets, den, np.float32)
    out = np.full(len(top), np.nan, np.float32)
    np.divide(top, bottom, out=out, where=bottom > 0)
    return out


def iterate_tensors(
    source: Source,
    cfg: FeatureConfig | None = None,
    step_size: int = 50_000,
    report: ReadReport | None = None,
    prefetch: bool = True,
) -> Iterator[JetTensors]:
    """Stream ``make_tensors`` over ``source`` in chunks of at most ``step_size`` jets, with each
    jet's provenance (``file_index`` into ``resolve_paths(source)``, ``entry``) filled in.

    With ``prefetch`` the next chunk is read in a background thread while this one is turned
    into tensors: decompression and numpy both release the GIL, so two cores both work.
    """
    chunks = iterate_located_jets(source, step_size=step_size, report=report)
    for jets, file_index, entries in _prefetched(chunks) if prefetch else chunks:
        yield make_tensors(jets, cfg, file_index, entries)


_DONE = object()


def _prefetched(items: Iterator[Any]) -> Iterator[Any]:
    """``items``, produced one step ahead in a daemon thread; its exceptions re-raise here."""
    slots: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    return
            offer((_DONE, None))
        except BaseException as err:  # handed to the consumer, which re-raises it
            offer((_DONE, err))

    worker = threading.Thread(target=produce, daemon=True, name="jetfm-prefetch")
    worker.start()
    try:
        while True:
            item, err = slots.get()
            if err is not None:
                raise err
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
