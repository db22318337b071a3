"""The assistant's last message of a turn, written from the tool results: in one or two sentences per
tool, what was done and the figure that matters (jets generated, AUC, the best match), so a person
reads an answer, not a table. The embedded model cannot write this reliably; the results hold every
number, so the sentences are templated from them. Plots and tables stay where the faces show them.
"""

from __future__ import annotations

from typing import Any

from jetfm.agent.callformat import human_count

_LONG_WHAT = {
    "generate_dataset": "simulating {n_jets} {processes} jets into dataset {name}",
    "pretrain": "{objective} pretraining of a {size} backbone on {dataset} (model {name})",
    "finetune": "fine-tuning {model} on {dataset} ({mode}) into classifier {name}",
    "embed": "embedding {dataset} with {model}",
    "build_index": "building a similarity index over {dataset}",
    "anomaly_scan": "scoring {dataset} for anomalies ({method})",
}
_DEFAULTS = {"n_jets": 1000, "processes": ["top", "qcd"], "objective": "mpm", "size": "tiny", "mode": "full",
             "model": "jetfm-default", "method": "knn", "name": "(automatic name)"}


def _num(x: Any, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _list(items: list[str]) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _jet(r: dict[str, Any]) -> str:
    from jetfm.tools.search import label_name

    label = r.get("label")
    parts = [f"jet #{r.get('id')}"]
    if "similarity" in r:
        parts.append(f"similarity {r['similarity']:.2f}")
    if "mass" in r:
        parts.append(f"mass {r['mass']:.0f} GeV")
    if label is not None:
        parts.append(label_name(label) if isinstance(label, int) else str(label))
    return parts[0] + " (" + ", ".join(parts[1:]) + ")" if len(parts) > 1 else parts[0]


def _started(tool: str, args: dict[str, Any], data: dict[str, Any]) -> str:
    values = {**_DEFAULTS, **args}
    values["processes"] = _list(values["processes"]) if isinstance(values["processes"], list) else values["processes"]
    values["n_jets"] = human_count(int(values["n_jets"])) if str(values["n_jets"]).isdigit() else values["n_jets"]
    values.setdefault("dataset", "the dataset")
    what = _LONG_WHAT[tool].format_map(_Missing(values))
    return (f"Started {what} as background job {data['job_id']}; ask \"how is that job doing?\" to follow it"
            + (", the held-out AUC comes with its result." if tool == "finetune" else "."))


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def _evaluation(data: dict[str, Any], who: str) -> str:
    if "auc" in data:
        text = f"{who}: AUC {data['auc']:.3f}, accuracy {data['accuracy']:.3f}"
        rejection = data.get("background_rejection") or {k.split("@")[1]: v for k, v in data.items()
                                                         if k.startswith("rejection@")}
        for eff, value in list(rejection.items())[:1]:
            shown = _num(value) if value is not None else "infinite"
            text += f", background rejection {shown} at {eff} signal efficiency"
        return text + "."
    if "macro_auc" in data:
        return f"{who}: macro-averaged AUC {data['macro_auc']:.3f}, accuracy {data['accuracy']:.3f}."
    return ""


def sentence(tool: str, args: dict[str, Any], data: dict[str, Any], text: str) -> str:
    """What one successful tool call did, in words, with its key figure."""
    if "job_id" in data and data.get("state") == "queued" and tool in _LONG_WHAT:
        return _started(tool, args, data)
    if tool == "list_artifacts":
        arts, jobs = data.get("artifacts", []), data.get("jobs", [])
        if not arts and not jobs:
            return f"There are no {args['kind']}s yet." if args.get("kind") else "The workspace is empty."
        kinds: dict[str, list[str]] = {}
        for a in arts:
            kinds.setdefault(a["kind"], []).append(a["name"])
        parts = [f"{len(v)} {k}{'s' if len(v) > 1 else ''} ({_list(v[:4])}{', ...' if len(v) > 4 else ''})"
                 for k, v in kinds.items()]
        if jobs:
            running = [j["id"] for j in jobs if j.get("state") in ("queued", "running")]
            parts.append(f"{len(jobs)} job{'s' if len(jobs) > 1 else ''}"
                         + (f", {len(running)} running" if running else ""))
        return "The workspace holds " + _list(parts) + "."
    if tool == "generate_dataset":
        mix = ", ".join(f"{n} {p}" for p, n in (data.get("jets_per_process") or {}).items())
        return f"Generated {data.get('n_jets')} jets ({mix}) into dataset {data.get('name')}."
    if tool == "import_dataset":
        return f"Registered {args.get('path')} as dataset {data.get('name')}: {data.get('n_jets')} jets."
    if tool == "describe_dataset":
        counts = data.get("counts") or {}
        mass = (data.get("observables") or {}).get("mass", {}).get("mean")
        top = ", ".join(f"{n} {c}" for c, n in list(counts.items())[:6])
        return (f"{args.get('dataset')} holds {data.get('num_jets')} jets ({top})"
                + (f"; mean jet mass {mass:.0f} GeV." if isinstance(mass, (int, float)) else "."))
    if tool == "plot_observable":
        split = "one curve per class" if args.get("by_label", True) else "all jets together"
        n = sum((data.get("counts") or {}).values())
        return f"Plotted the {args.get('observable', 'mass')} of {args.get('dataset')} ({n} jets, {split})."
    if tool == "show_jet":
        return (f"Jet {data.get('index')} of {args.get('dataset')} is a {data.get('label')} jet with pT "
                f"{data.get('pt', 0):.0f} GeV, mass {data.get('mass', 0):.0f} GeV and {data.get('n_constituents')} "
                "constituents.")
    if tool in ("evaluate",):
        return _evaluation(data, f"{args.get('model')} on {args.get('dataset')}") or text
    if tool in ("search_text", "search_similar"):
        results = data.get("results") or []
        if not results:
            return "No jet matched." if tool == "search_text" else "No similar jet passed the filters."
        where = data.get("dataset") or args.get("dataset") or "the dataset"
        what = f"for '{args.get('query')}'" if tool == "search_text" else f"like jet {args.get('entry', 0)}"
        return f"Found {len(results)} jets in {where} {what}; the top match is {_jet(results[0])}."
    if tool == "zero_shot_classify":
        predicted = data.get("predicted") or {}
        total = sum(predicted.values())
        return (f"Classified {total} jets of {args.get('dataset')} without training: "
                + ", ".join(f"{n} as '{label}'" for label, n in predicted.items()) + ".")
    if tool == "anomaly_scan":
        return (f"Scored {data.get('n_jets')} jets of {args.get('dataset')} for anomalies; "
                f"the ranking is in {data.get('ranked')}.")
    if tool == "embed":
        return f"Embedded {data.get('n_jets')} jets of {args.get('dataset')} ({data.get('dim')} dimensions)."
    if tool == "build_index":
        return f"Built the {data.get('kind')} index {data.get('name')} over {data.get('n_jets')} jets."
    if tool == "pretrain":
        return f"Pretrained backbone {data.get('name')} on {args.get('dataset')}."
    if tool == "finetune":
        return _evaluation(data, f"Trained classifier {data.get('name')}; on held-out jets") or text
    if tool == "job_status":
        state, job_tool = data.get("state"), data.get("tool")
        if state == "done" and data.get("result"):
            inner = data["result"]
            return f"Job {data.get('id')} ({job_tool}) is done. " + sentence(
                job_tool, data.get("args") or {}, inner.get("data") or {}, inner.get("text", ""))
        if state == "running":
            return f"Job {data.get('id')} ({job_tool}) is running: {data.get('progress', 0):.0%} done."
        if state == "failed":
            return f"Job {data.get('id')} ({job_tool}) failed: {data.get('error')}"
        return f"Job {data.get('id')} ({job_tool}) is {state}."
    if tool == "cancel_job":
        return text.split("\n")[0]
    return text.split("\n")[0]


def answer(outcomes: list[tuple[str, dict[str, Any], bool, dict[str, Any], str]]) -> str:
    """The turn's answer from ``(tool, args, ok, data, text)`` per call, in order; a failed call says
    what went wrong and stops the story there (later calls did not run)."""
    lines = []
    for tool, args, ok, data, text in outcomes:
        if not ok:
            lines.append(f"{tool} could not run: {text}")
            break
        try:
            lines.append(sentence(tool, args, data, text))
        except (KeyError, TypeError, ValueError, AttributeError):  # a result of another shape: its own words
            lines.append(text.split("\n")[0])
    return " ".join(line.strip() for line in lines if line.strip())
