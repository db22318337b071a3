"""Command-line options generated from a tool's pydantic schema, so each argument is declared once.

A tool's schema (tools/registry.py) holds every argument's type, default, bounds and help; the CLI
reads them from there. An option the user does not give is left out, so the schema's default
applies, and what the user gives is validated by the same ``validate_args`` the agent goes through:
``jetfm generate --workers 1000`` fails exactly as the tool call does, naming ``--workers``.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic.fields import FieldInfo

from jetfm.tools.registry import ToolArgs, get_tool, validate_args


@dataclass(frozen=True)
class CliSpec:
    """How one tool appears on the command line: which fields are positional, which options are
    spelt differently from the field name (``{"index": "entry"}`` gives ``--entry``)."""

    tool: str
    positional: Sequence[str] = ()
    renames: dict[str, str] = field(default_factory=dict)
    # Required by the schema but not on the command line, because the command fills them in.
    filled: Sequence[str] = ()

    def flag(self, name: str) -> str:
        if name in self.positional:
            return name
        spelt = self.renames.get(name, name).replace("_", "-")
        return f"-{spelt}" if len(spelt) == 1 else f"--{spelt}"

    def dest(self, name: str) -> str:
        return f"tool__{name}"


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type inside ``X | None`` and ``Annotated[X, ...]``, whether None is allowed)."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            annotation = args[0] if len(args) == 1 else str
        else:
            return annotation, optional


def _choices(annotation: Any) -> list[str] | None:
    return [str(c) for c in typing.get_args(annotation)] if typing.get_origin(annotation) is Literal else None


def _help(info: FieldInfo, choices: list[str] | None) -> str:
    text = info.description or ""
    if choices and not any(c in text for c in choices[:2]):
        text += f" ({', '.join(choices)})"
    if not info.is_required() and info.default is not None:
        default = ",".join(map(str, info.default)) if isinstance(info.default, (list, tuple)) else info.default
        text += f" [default: {default}]"
    return text


def add_tool_arguments(parser: argparse.ArgumentParser, spec: CliSpec) -> None:
    """One option (or positional) per field of the tool's schema."""
    args: type[ToolArgs] = get_tool(spec.tool).args
    for name, info in args.model_fields.items():
        inner, _ = _unwrap(info.annotation)
        is_list = typing.get_origin(inner) is list
        element = _unwrap(typing.get_args(inner)[0])[0] if is_list else inner
        choices = _choices(element)
        kwargs: dict[str, Any] = {"dest": spec.dest(name), "default": argparse.SUPPRESS}
        if element is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = "A,B,..." if is_list else ("|".join(choices) if choices else name.upper())
        kwargs["help"] = _help(info, choices if not is_list else choices)
        if name in spec.positional:
            kwargs.pop("dest")
            parser.add_argument(spec.dest(name), **kwargs, nargs=None if info.is_required() else "?")
            continue
        if info.is_required() and name not in spec.filled:
            kwargs["required"] = True
        parser.add_argument(spec.flag(name), **kwargs)


def tool_arguments(namespace: argparse.Namespace, spec: CliSpec) -> dict[str, Any]:
    """The options the user gave, as raw tool arguments (comma lists split; pydantic converts)."""
    args: type[ToolArgs] = get_tool(spec.tool).args
    out: dict[str, Any] = {}
    for name, info in args.model_fields.items():
        if not hasattr(namespace, spec.dest(name)):
            continue
        value = getattr(namespace, spec.dest(name))
        inner, _ = _unwrap(info.annotation)
        if typing.get_origin(inner) is list and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        out[name] = value
    return out


def validated(namespace: argparse.Namespace, spec: CliSpec) -> dict[str, Any]:
    """The user's options checked against the tool's schema, with its defaults filled in; a
    ToolError names the options (``--seed``), not the fields."""
    return validate_args(spec.tool, tool_arguments(namespace, spec), spell=spec.flag, allow_paths=True).model_dump()
