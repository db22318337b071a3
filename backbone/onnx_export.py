"""ONNX export of an encoder (-> jet embeddings) or a classifier (-> class probabilities).

Inputs are ``features`` (B, P, F) float32, ``vectors`` (B, P, 4) float32 and ``mask`` (B, P) bool,
with B and P (up to ``max_particles``) dynamic. Two things the eager model does are changed while
tracing, neither of which changes an output:

- packing (`backbone.encoder.pack_particles`) needs a stable sort, which ONNX lacks, and a length
  read from the data; the exported graph keeps every slot instead (``JetEncoder.pack_padding``).
  Padding is masked everywhere, so the outputs are the same, but attention runs over all P slots:
  trim slots that are padding in every jet before calling the ONNX model.
- attention is traced with PyTorch's math kernel: the memory layout of the fused CPU kernel's output
  differs from that of the decomposition the exporter substitutes, and export then fails.

Needs ``pip install jetfm[onnx]`` (onnx, onnxscript for torch's exporter, onnxruntime to check).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from jetfm.backbone.atomic import atomic_path
from jetfm.backbone.encoder import JetEncoder
from jetfm.backbone.finetune import JetClassifier
from jetfm.errors import UsageError

INPUT_NAMES = ("features", "vectors", "mask")
OPSET = 18
_INSTALL_HINT = "ONNX export needs onnx, onnxscript and onnxruntime: pip install jetfm[onnx]"


class _ClassifierProbabilities(nn.Module):
    """(features, vectors, mask) -> class probabilities, the signature the exporter traces."""

    def __init__(self, classifier: JetClassifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, features: Tensor, vectors: Tensor, mask: Tensor) -> Tensor:
        return self.classifier.logits(features, vectors, mask).softmax(-1)


def _require(*modules: str) -> None:
    for name in modules:
        try:
            __import__(name)
        except ImportError as err:
            raise ImportError(f"{name} is not installed. {_INSTALL_HINT}") from err


def _traced_module(model: JetEncoder | JetClassifier) -> tuple[nn.Module, JetEncoder, str]:
    """The module to trace, the encoder inside it, and the name of its output."""
    if isinstance(model, JetClassifier):
        return _ClassifierProbabilities(model), model.encoder, "probabilities"
    if isinstance(model, JetEncoder):
        return model, model, "embedding"
    raise TypeError(f"export_onnx takes a JetEncoder or a JetClassifier, got {type(model).__name__}")


def example_inputs(batch_size: int, particles: int, feature_dim: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Random jets with 1..`particles` front-packed constituents (the first jet full), physical
    four-vectors and zero padding: inputs to trace with or to compare outputs on."""
    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, particles + 1, (batch_size,), generator=gen)
    counts[0] = particles
    mask = torch.arange(particles)[None, :] < counts[:, None]
    pt = 1.0 + 50.0 * torch.rand(batch_size, particles, generator=gen)
    eta, phi = 0.4 * torch.randn(2, batch_size, particles, generator=gen)
    vectors = torch.stack([pt * phi.cos(), pt * phi.sin(), pt * eta.sinh(), pt * eta.cosh()], dim=-1)
    features = torch.randn(batch_size, particles, feature_dim, generator=gen)
    return features * mask[..., None], vectors * mask[..., None], mask


def export_onnx(
    model: JetEncoder | JetClassifier,
    path: str | Path,
    max_particles: int = 128,
    feature_dim: int | None = None,
    opset: int = OPSET,
) -> Path:
    """Writes `model` (in eval mode) to `path` as ONNX with dynamic batch and particle axes.

    `feature_dim` defaults to the encoder's ``input_dim`` (and must equal it); `max_particles`
    is capped by the encoder's own limit. The classes of a classifier, in output order, are in
    the model's metadata under ``classes``.
    """
    _require("onnx", "onnxscript")
    import onnx
    from torch.export import Dim
    from torch.nn.attention import SDPBackend, sdpa_kernel

    traced, encoder, output = _traced_module(model)
    feature_dim = encoder.config.input_dim if feature_dim is None else feature_dim
    if feature_dim != encoder.config.input_dim:
        raise UsageError(f"feature_dim={feature_dim} but the encoder takes {encoder.config.input_dim} features")
    max_particles = min(max_particles, encoder.config.max_particles)
    # sizes 0 and 1 would be specialised by the tracer, so the example has at least 2 of each
    inputs = example_inputs(2, min(max_particles, 16), feature_dim)
    axes = {0: Dim("batch"), 1: Dim("particles", min=2, max=max_particles)}
    path = Path(path)
    was_training = model.training
    traced.eval()
    try:
        encoder.pack_padding = False
        with sdpa_kernel(SDPBackend.MATH), atomic_path(path) as tmp:
            torch.onnx.export(
                traced,
                inputs,
                tmp,
                input_names=list(INPUT_NAMES),
                output_names=[output],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=(axes, axes, axes),
                external_data=False,
                verbose=False,
            )
            proto = onnx.load(tmp)
            metadata = {"producer": "jetfm", "inputs": ", ".join(INPUT_NAMES), "max_particles": str(max_particles)}
            if isinstance(model, JetClassifier):
                metadata["classes"] = ",".join(model.classes)
            onnx.helper.set_model_props(proto, metadata)
            onnx.save(proto, tmp)
    finally:
        encoder.pack_padding = True
        model.train(was_training)
    return path


def check_onnx(model: JetEncoder | JetClassifier, path: str | Path, batch: Mapping[str, Any]) -> float:
    """Largest absolute difference between onnxruntime on `path` and PyTorch on `batch`
    (features, vectors, mask as numpy arrays or tensors), both in eval mode."""
    _require("onnxruntime")
    import onnxruntime

    arrays = {name: _numpy(batch[name]) for name in INPUT_NAMES}
    arrays["mask"] = arrays["mask"].astype(bool)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, arrays)
    traced, _, _ = _traced_module(model)
    was_training = model.training
    traced.eval()
    try:
        with torch.inference_mode():
            device = next(model.parameters()).device
            torch_out = traced(*(torch.from_numpy(arrays[name]).to(device) for name in INPUT_NAMES)).cpu().numpy()
    finally:
        model.train(was_training)
    return float(np.abs(onnx_out - torch_out).max())


def _numpy(values: Any) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
