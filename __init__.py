"""jetfm: a foundation model for jets, and an assistant that drives it.

The Python API is small on purpose; everything else is reached through the typed tools, exactly
as the CLI and the agent reach it::

    import jetfm

    encoder = jetfm.load_model("jetfm-default")            # a JetEncoder (torch.nn.Module)
    emb = jetfm.embed("jetfm-default", "tq")                # EmbeddingSet: vectors + per-jet metadata
    result = jetfm.run_tool("describe_dataset", {"dataset": "tq"})
    print(result.text)                                      # result.data: JSON-able, result.plots: PNGs
    jetfm.list_tools()                                      # the tool names; tool_schemas() for LLMs

Datasets, models and indexes are named artifacts of the workspace (``$JETFM_HOME``, default
``./jetfm-workspace``). The layers under the namespace: ``jetfm.backbone`` (data and model),
``jetfm.retrieval`` (jet-text alignment, FAISS), ``jetfm.tools`` (the operations, the catalog,
the CLI), ``jetfm.agent`` (LLM backends, the agent, the chat app).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jetfm.errors import JetfmError

if TYPE_CHECKING:
    from jetfm.backbone.embed import EmbeddingSet
    from jetfm.backbone.encoder import JetEncoder
    from jetfm.tools.result import ToolResult

__version__ = "0.1.0"
__all__ = ["JetfmError", "embed", "list_tools", "load_model", "run_tool", "tool_schemas"]


def load_model(model: str, device: str = "cpu") -> JetEncoder:
    """A backbone by catalog name, shipped name (``jetfm-default``) or model folder path."""
    from jetfm.backbone.checkpoint import from_pretrained
    from jetfm.tools.models import model_folder

    return from_pretrained(model_folder(model), device=device)


def embed(model: str, dataset: str) -> EmbeddingSet:
    """The jet embeddings of a catalog dataset under a backbone (computed once, then read back)."""
    from jetfm.tools.search import embeddings_for

    return embeddings_for(model, dataset, show_progress=False)


def run_tool(name: str, args: dict[str, Any] | None = None, wait: bool = True) -> ToolResult:
    """Run a typed tool by name, as the agent does; long tools run here unless ``wait=False``
    (then they start as a background job and the result carries its id)."""
    from jetfm.tools.run import run_tool as run

    return run(name, args, wait=wait)


def list_tools() -> list[str]:
    from jetfm.tools.registry import TOOLS

    return list(TOOLS)


def tool_schemas() -> list[dict[str, Any]]:
    """The tools in the OpenAI function-calling format."""
    from jetfm.tools.registry import tool_schemas as schemas

    return schemas()
