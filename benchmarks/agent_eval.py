"""Agent evaluation: how well each planner backend turns the held-out requests of
tests/data/agent_requests.jsonl into tool calls: tool-choice and argument accuracy, correct refusals
(chit-chat, out-of-scope and adversarial requests), false refusals, per category, and the latency of
one routing decision.

    python -m benchmarks.agent_eval --backend embedded
    python -m benchmarks.agent_eval --backend embedded --backend embedded-untuned --limit 40
    python -m benchmarks.agent_eval --backend openai --base-url http://localhost:8000/v1 --model NAME
    python -m benchmarks.agent_eval --backend hf:/path/to/folder

Scoring rules are in benchmarks/agent_scoring.py. ``--limit N`` takes N cases spread evenly over the
suite (which is ordered by category), so a short run still sees every category. Results (summary and
every case, per backend) go to benchmarks/results/agent_eval.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.agent_scoring import score_case, summarize  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "data" / "agent_requests.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "agent_eval.json"


def load_suite(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def spread(cases: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """``limit`` cases evenly spaced over the suite (all of them without a limit)."""
    if not limit or limit >= len(cases):
        return cases
    return [cases[i * len(cases) // limit] for i in range(limit)]


def backend_label(backend: str, model: str | None) -> str:
    return f"openai:{model}" if backend == "openai" and model else backend


def make(backend: str, args: argparse.Namespace) -> Any:
    # Imported here: the planner pulls in the model stack, which scoring and --help do not need.
    from agent.planner import make_planner

    if backend == "openai":
        return make_planner("openai", base_url=args.base_url, model=args.model, api_key=args.api_key)
    return make_planner(backend)


def run_backend(label: str, planner: Any, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plan every case; one record per case with the score, the produced calls and the timings."""
    from agent.planner import PlanContext

    records = []
    for case in tqdm(cases, desc=label, unit="req", dynamic_ncols=True):
        ctx = case.get("context") or {}
        context = PlanContext(
            datasets=list(ctx.get("datasets", [])),
            models=list(ctx.get("models", [])),
            indexes=list(ctx.get("indexes", [])),
        )
        calls: list[dict[str, Any]] = []
        error = None
        start = time.perf_counter()
        try:
            calls = list(planner.plan(case["request"], context=context) or [])
        except Exception as err:  # one crashing request must not end the run; it is scored as a failure
            error = f"{type(err).__name__}: {err}"
        seconds = time.perf_counter() - start
        score = score_case(case, calls, error=error)
        score["decision_seconds"] = [float(t) for t in (getattr(planner, "decision_seconds", None) or [])]
        records.append(
            {
                **score,
                "request": case["request"],
                "expected": case["expected"],
                "produced": calls,
                "seconds": round(seconds, 4),
            }
        )
    return records


def _pct(x: float | None) -> str:
    return "   -" if x is None else f"{100 * x:5.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{1000 * x:.0f} ms"


def print_table(summaries: dict[str, dict[str, Any]]) -> None:
    categories = sorted({c for s in summaries.values() for c in s["per_category"]}, key=_category_order)
    head = ["backend", "tools", "args", "refusal", "false ref.", *[f"{c} (args)" for c in categories], "median", "p90"]
    rows = []
    for label, s in summaries.items():
        per = s["per_category"]
        rows.append(
            [
                label,
                _pct(s["tool_accuracy"]),
                _pct(s["argument_accuracy"]),
                _pct(s["correct_refusal_rate"]),
                str(s["false_refusals"]),
                *[_pct(per[c]["argument_accuracy"]) if c in per else "-" for c in categories],
                _ms(s["latency"]["median_s"]),
                _ms(s["latency"]["p90_s"]),
            ]
        )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths))))


def _category_order(category: str) -> tuple[int, str]:
    order = ["single", "multi", "none", "adversarial"]
    return (order.index(category) if category in order else len(order), category)


def print_failures(label: str, records: list[dict[str, Any]]) -> None:
    failed = [r for r in records if not r["args_ok"]]
    print(f"\n{label}: {len(failed)} failed case(s)")
    for r in failed:
        print(f"- [{r['id']}] {r['request']}")
        print(f"    expected: {json.dumps(r['expected'])}")
        print(f"    produced: {json.dumps(r['produced'], default=str)}")
        print(f"    reason:   {r['reason']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backend",
        action="append",
        help="planner backend, repeatable: embedded, embedded-untuned, openai, hf:/path/to/folder (default embedded)",
    )
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (backend openai)")
    parser.add_argument("--model", help="model name at that endpoint (backend openai)")
    parser.add_argument("--api-key", help="API key for that endpoint (backend openai; else the planner's default)")
    parser.add_argument("--limit", type=int, help="evaluate only N cases, spread evenly over the suite")
    parser.add_argument("--suite", type=Path, default=SUITE, help="request suite (JSONL)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    args = parser.parse_args()
    backends = args.backend or ["embedded"]
    if "openai" in backends and not (args.base_url and args.model):
        parser.error("--backend openai needs --base-url and --model")

    cases = spread(load_suite(args.suite), args.limit)
    summaries: dict[str, dict[str, Any]] = {}
    results: dict[str, Any] = {}
    for backend in backends:
        label = backend_label(backend, args.model)
        planner = make(backend, args)
        records = run_backend(label, planner, cases)
        summaries[label] = summarize(records)
        results[label] = {"summary": summaries[label], "cases": records}
        print_failures(label, records)

    print()
    print_table(summaries)
    machine = machine_info()
    report = {
        "benchmark": "agent_eval",
        "date": machine["date"],
        "machine": machine,
        "suite": str(args.suite),
        "n_cases": len(cases),
        "limit": args.limit,
        "backends": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
