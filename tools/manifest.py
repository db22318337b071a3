"""What a registered dataset holds: its files, each with its size and jet count, recorded in the
catalog when the dataset is registered (``meta["manifest"]``) and checked on every read. A dataset is
what its manifest says: a file that went missing or changed size is refused by name, with how to get
it back, and never silently read around (half a dataset would make half an embedding).

Datasets registered before manifests existed are checked as far as they can be: a generated folder
against the shards its ``dataset.json`` plans, an imported one against its file count.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jetfm.backbone.data.errors import DataError
from jetfm.backbone.data.generate import MANIFEST as GENERATION_MANIFEST
from jetfm.backbone.data.generate import GenerationConfig, dataset_shards, plan_shards
from jetfm.backbone.data.readers import CheckedFile, resolve_paths
from jetfm.tools.catalog import Artifact
from jetfm.tools.workspace import artifact_dir

MANIFEST_KEY = "manifest"


def file_manifest(files: Iterable[CheckedFile]) -> list[dict[str, Any]]:
    """The catalog's record of a dataset's files: absolute path, size in bytes, stored jets."""
    return [{"path": str(Path(f.path).resolve()), "size": int(f.size), "n_jets": int(f.n_jets)} for f in files]


def generated_files(config: GenerationConfig, out_dir: Path) -> tuple[list[tuple[str, CheckedFile]], bool]:
    """(process, file) for each planned shard of a generated dataset that exists in ``out_dir``
    (every batch job's, not only this run's: they fill one folder), with the jets it was generated
    with, and whether every planned shard is there. Shards are written atomically: one that exists
    is whole."""
    planned = plan_shards(config, out_dir)
    present = [t for t in planned if Path(t.path).is_file()]
    files = [(t.process, CheckedFile(Path(t.path), t.n_jets, Path(t.path).stat().st_size)) for t in present]
    return files, len(present) == len(planned)


def manifest_problems(art: Artifact) -> list[str]:
    """One line per way the dataset's files differ from its manifest; empty when they agree."""
    path = Path(art.path)
    entries = art.meta.get(MANIFEST_KEY)
    if entries is None:
        return _legacy_problems(art)
    problems = []
    for entry in entries:
        file = Path(entry["path"])
        if not file.is_file():
            problems.append(f"{file} ({entry['n_jets']} jets) is missing")
        elif file.stat().st_size != entry["size"]:
            problems.append(
                f"{file} is {file.stat().st_size} bytes, registered with {entry['size']} (changed or cut short)"
            )
    if entries and len(problems) == len(entries) and not path.exists():  # (a glob's files exist without it)
        return [f"{path} does not exist (deleted or moved?)"]
    return problems


def _legacy_problems(art: Artifact) -> list[str]:
    path = Path(art.path)
    if not path.exists():
        return [f"{path} does not exist (deleted or moved?)"]
    config = _generation_config(path)
    if config is not None and art.meta.get("complete", True):
        missing = [t for t in plan_shards(config, path) if not Path(t.path).is_file()]
        return [f"{t.path} ({t.n_jets} jets) is missing" for t in missing]
    registered = art.meta.get("files")
    if isinstance(registered, int) and path.is_dir():
        try:
            found = len(resolve_paths(path))
        except DataError:  # the folder holds no data files at all
            found = 0
        if found < registered:
            return [f"{path} holds {found} data file(s), registered with {registered}"]
    return []


def _generation_config(folder: Path) -> GenerationConfig | None:
    """The settings of a generated dataset folder (its ``dataset.json``), or None if it has none."""
    try:
        config = json.loads((folder / GENERATION_MANIFEST).read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        return GenerationConfig(**config)
    except (TypeError, DataError):  # written by another jetfm version: no plan to check against
        return None


def registered_files(art: Artifact) -> list[Path]:
    """The files of a registered dataset, in manifest order, once they agree with its manifest; a
    DataError names every missing or changed file and says how to restore it."""
    problems = manifest_problems(art)
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DataError(f"dataset {art.name!r} is not what it was registered as: {shown}. {restore_hint(art)}")
    entries = art.meta.get(MANIFEST_KEY)
    if entries is not None:
        return [Path(e["path"]) for e in entries]
    path = Path(art.path)
    files = dataset_shards(path) if path.is_dir() else resolve_paths(path)
    if not files:
        raise DataError(f"dataset {art.name!r}: no data files in {path}. {restore_hint(art)}")
    return files


def restore_hint(art: Artifact) -> str:
    """How to get a dataset's files back, by where they came from."""
    source = art.meta.get("source")
    forget = f"or forget the dataset with `jetfm remove {art.name}`"
    if source == "generated" and art.meta.get("config"):
        return (
            f"Nothing was read. Restore the files from where they were moved, or regenerate the missing shards "
            f"(they are seeded, so the same jets come back) with `{generate_command(art)}`, {forget}."
        )
    if source == "imported":
        return (
            f"Nothing was read. Put the files back where they were imported from, {forget} and import them "
            "again under a new name."
        )
    return f"Nothing was read. Put the files back where they were, {forget}."


def generate_command(art: Artifact) -> str:
    """The ``jetfm generate`` command that (re)makes a generated dataset's shards."""
    config = art.meta["config"]
    words = ["jetfm", "generate", "--name", art.name, "--processes", ",".join(config["processes"])]
    words += ["--n-jets", str(config["n_jets"]), "--pt-min", f"{config['pt_min']:g}"]
    words += ["--pt-max", f"{config['pt_max']:g}", "--seed", str(config["seed"])]
    if config.get("fractions"):
        words += ["--fractions", ",".join(repr(float(x)) for x in config["fractions"])]
    if Path(art.path) != artifact_dir("dataset", art.name).resolve():
        words += ["--out", art.path]
    return shlex.join(words)


def artifact_problems(arts: Iterable[Artifact]) -> dict[str, str]:
    """Artifact name -> why it cannot be used as the catalog lists it, for those that cannot: a
    dataset whose files are gone or changed, an artifact whose folder or file is gone, an embedding
    or index made from a dataset that no longer is what it was."""
    arts = list(arts)
    out: dict[str, str] = {}
    for art in arts:
        if art.kind == "dataset":
            problems = manifest_problems(art)
            if problems and not Path(art.path).exists():
                out[art.name] = f"MISSING: {art.path} does not exist"
            elif problems:
                more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
                out[art.name] = f"INCOMPLETE: {problems[0]}{more}"
        elif not Path(art.path).exists():
            out[art.name] = f"MISSING: {art.path} does not exist"
    for art in arts:
        if art.name not in out and art.kind in ("embedding", "index"):
            broken = [p for p in art.parents if p in out]
            if broken:
                state = out[broken[0]].split(":")[0].lower()
                out[art.name] = f"STALE: made from dataset {broken[0]!r}, which is {state}"
    return out
