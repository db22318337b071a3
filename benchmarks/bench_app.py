"""Chat-app benchmark, as a physicist meets the app: how long the README's main job (``jetfm demo``)
takes to reach a working app, and how the app answers several people chatting at once.

    python benchmarks/bench_app.py --ready                 # jetfm demo in an empty workspace
    python benchmarks/bench_app.py --load 8                # 8 sessions on the real embedded agent
    python benchmarks/bench_app.py --load 8 --fake-agent   # the app's own overhead (no LLM)
    python benchmarks/bench_app.py --load 8 --workspace ~/jetfm-workspace --dataset demo-1000

``--ready`` runs ``jetfm demo --port P`` as a subprocess with JETFM_HOME in a fresh temporary folder,
times the demo's steps from its printed lines, then polls the page, connects a gradio_client and
times the first chat answer; then stops the demo's process group as Ctrl-C would.

``--load N`` launches the app in-process (the real agent, loaded once before the sessions start, or
``--fake-agent``), then N gradio_client sessions at once each send 2 requests through the ``/chat``
endpoint. Per turn: seconds to the first streamed update and to the full answer; per session:
whether the returned history holds that session's own messages only (no cross-talk).

Results are merged into benchmarks/results/bench_app.json, one section per mode.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gradio_client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_info  # noqa: E402
from jetfm.backbone.atomic import write_json  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_app.json"
REQUESTS = ["list my datasets", "describe {dataset}", "plot the mass of {dataset}", "hello"]
FIRST_REQUEST = "list my datasets"
# Lines `jetfm demo` prints (tools/demo.py, agent/app.py serve), in order: the first line starting
# with each prefix marks the step as done.
MILESTONES = [
    ("sample_generated", "Dataset '"),
    ("mass_plot", "Plotted "),
    ("similarity_search", "Searching the sample in words"),  # printed once the similarity search is done
    ("text_search", "Done:"),
    ("app_listening", "The jetfm chat app is ready"),
]
ERROR_MARKS = ("Something went wrong", "could not start", "does not answer")  # error texts the chat shows


# --- helpers over the /chat endpoint -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def texts(history: list[dict[str, Any]], role: str | None = None) -> list[str]:
    """The text parts of a chat history as gradio_client returns it (content: a list of parts)."""
    out = []
    for m in history:
        if role is not None and m.get("role") != role:
            continue
        parts = m["content"] if isinstance(m["content"], list) else [m["content"]]
        out += [p if isinstance(p, str) else p["text"] for p in parts if isinstance(p, str) or p.get("type") == "text"]
    return out


def chat_turn(client: Client, message: str, history: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    """One message through /chat: seconds to the first streamed update and to the whole answer."""
    start = time.perf_counter()
    job = client.submit(message, history, api_name="/chat")
    first = None
    deadline = start + timeout
    # outputs() grows as the app streams (the first: the user's message echoed). Polled gently, not
    # by iterating the job, which spins at 1 kHz per session.
    while not job.done() and time.perf_counter() < deadline:
        if first is None and job.outputs():
            first = time.perf_counter() - start
        time.sleep(0.02)
    new_history, _ = job.result(timeout=max(0.0, deadline - time.perf_counter()))
    seconds = time.perf_counter() - start
    answer = texts(new_history[len(history) :], "assistant")
    tools = [
        m["metadata"]["title"]
        for m in new_history[len(history) :]
        if (m.get("metadata") or {}).get("title", "").startswith("Tool")
    ]
    shown_error = next((t for t in answer if any(mark in t for mark in ERROR_MARKS)), None)
    return {
        "request": message,
        "first_update_s": round(first if first is not None else seconds, 3),
        "seconds": round(seconds, 3),
        "tools": tools,
        "answer": (answer[-1] if answer else "")[:300],
        "error": shown_error[:300] if shown_error else None,
        "history": new_history,
    }


def stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median_s": None, "p90_s": None, "max_s": None}
    ordered = sorted(values)
    p90 = ordered[math.ceil(0.9 * len(ordered)) - 1]  # nearest rank: a turn that was measured
    return {"median_s": round(statistics.median(ordered), 3), "p90_s": round(p90, 3), "max_s": round(ordered[-1], 3)}


# --- --ready: `jetfm demo` from an empty workspace ----------------------------------------------


def _jetfm() -> str:
    beside = Path(sys.executable).with_name("jetfm")  # the venv's entry point, not another install's
    return str(beside) if beside.exists() else (shutil.which("jetfm") or "jetfm")


def _stop(proc: subprocess.Popen) -> str:
    """Stop the demo's whole process group: Ctrl-C first (Gradio closes its server), then harder."""
    for sig, wait in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return "already exited"
        try:
            proc.wait(wait)
            return signal.Signals(sig).name
        except subprocess.TimeoutExpired:
            continue
    return "did not stop"


def bench_ready(port: int, n_jets: int | None, timeout: float) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="jetfm-bench-app-"))
    home = root / "workspace"  # empty: the demo starts from nothing
    command = [_jetfm(), "demo", "--port", str(port)] + ([] if n_jets is None else ["--n-jets", str(n_jets)])
    env = {**os.environ, "JETFM_HOME": str(home), "PYTHONUNBUFFERED": "1"}  # lines arrive as printed
    env = {k: v for k, v in env.items() if not k.startswith("JETFM_LLM_")}  # the embedded LLM, as in the README
    lines: list[tuple[float, str]] = []
    stderr = (root / "demo.stderr").open("w")  # progress bars and logs; a full pipe would block the demo
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, start_new_session=True)

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append((time.perf_counter() - start, line.rstrip()))

    threading.Thread(target=read, daemon=True).start()
    url = f"http://127.0.0.1:{port}/"
    result: dict[str, Any] = {"command": " ".join(["jetfm", *command[1:]]), "steps_s": {}}
    try:
        seen = 0
        while True:  # follow the printed steps until the page answers
            for t, line in lines[seen:]:
                for step, prefix in MILESTONES:
                    if line.startswith(prefix) and step not in result["steps_s"]:
                        result["steps_s"][step] = round(t, 1)
                        print(f"  {t:7.1f} s  {step}", flush=True)
            seen = len(lines)
            if proc.poll() is not None:
                raise RuntimeError(f"jetfm demo exited with {proc.returncode} before the app answered")
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"the app did not answer within {timeout:.0f} s")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(1)
        result["steps_s"]["page_answers"] = round(time.perf_counter() - start, 1)
        client = Client(url, verbose=False)
        result["steps_s"]["client_connected"] = round(time.perf_counter() - start, 1)
        turn = chat_turn(client, FIRST_REQUEST, [], timeout)  # waits for the LLM if it is still loading
        result["steps_s"]["first_answer"] = round(time.perf_counter() - start, 1)
        result["first_turn"] = {k: v for k, v in turn.items() if k != "history"}
        result["ok"] = turn["error"] is None
    except Exception as err:
        result.update(ok=False, error=f"{type(err).__name__}: {err}")
    finally:
        result["stopped_by"] = _stop(proc)
        stderr.close()
        if not result.get("ok"):
            result["stderr_tail"] = (root / "demo.stderr").read_text(errors="replace")[-3000:]
            result["stdout_tail"] = [line for _, line in lines[-30:]]
        shutil.rmtree(root, ignore_errors=True)
    return result


# --- --load: N sessions at once ------------------------------------------------------------------


def echo_answer(message: str, earlier: list[str]) -> str:
    return f"echo {message!r}; turn {len(earlier) + 1} of this thread; earlier: {earlier}"


class EchoAgent:
    """--fake-agent: answers at once from its memory of the thread (no LLM, no tools), so the timings
    are the app's own overhead, and a thread mixed up with another shows in the answer."""

    def __init__(self) -> None:
        self.memory: dict[str, list[str]] = defaultdict(list)
        self.lock = threading.Lock()  # the app calls stream from several worker threads

    def stream(self, message: str, thread_id: str) -> Iterator[Any]:
        from jetfm.agent.events import Answer

        with self.lock:
            earlier = list(self.memory[thread_id])
            self.memory[thread_id].append(message)
        yield Answer(echo_answer(message, earlier))


def _ensure_dataset(dataset: str, n_jets: int) -> str:
    from jetfm.backbone.data.schema import PROCESSES
    from jetfm.tools.catalog import Catalog
    from jetfm.tools.datasets import generate_dataset

    if Catalog().find(dataset) is None:
        print(f"Generating {dataset} ({n_jets} jets) for the load test...", flush=True)
        generate_dataset(dataset, list(PROCESSES), n_jets=n_jets, workers=1)  # the demo's mix
    return dataset


def bench_load(sessions: int, fake: bool, dataset: str, n_jets: int, timeout: float) -> dict[str, Any]:
    from jetfm.agent.app import build_app, launch_app
    from jetfm.agent.app_chat import AgentPool, default_agent_factory
    from jetfm.agent.backends import BackendConfig

    if not fake:  # the echo agent calls no tools: no dataset needed
        _ensure_dataset(dataset, n_jets)
    backend = BackendConfig()  # the embedded LLM
    pool = AgentPool((lambda _: EchoAgent()) if fake else default_agent_factory)
    t0 = time.perf_counter()
    pool.get(backend)  # the model loads once, before the sessions: turns time answering, not loading
    agent_load_s = time.perf_counter() - t0
    app = build_app(pool=pool, default_backend=backend)
    url = launch_app(app, port=None, block=False)
    requests = [r.format(dataset=dataset) for r in REQUESTS]
    try:
        # download_files=False: the history goes back to the app as it came, files as file references
        clients = [Client(url, verbose=False, download_files=False) for _ in range(sessions)]  # one per session

        def converse(i: int) -> dict[str, Any]:
            sent = [requests[(2 * i) % len(requests)], requests[(2 * i + 1) % len(requests)]]
            history: list[dict[str, Any]] = []
            turns = []
            for k, message in enumerate(sent):
                try:
                    turn = chat_turn(clients[i], message, history, timeout)
                except Exception as err:
                    turns.append({"request": message, "error": f"{type(err).__name__}: {err}"[:300]})
                    break
                history = turn.pop("history")
                if fake and turn["answer"] != echo_answer(message, sent[:k]):
                    turn["error"] = f"answered from another thread: {turn['answer']}"
                turns.append(turn)
            own = texts(history, "user") == sent  # the session's own messages, in order, nothing else
            return {"session": i, "own_messages_only": own, "turns": turns}

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(sessions) as workers:
            results = list(workers.map(converse, range(sessions)))
        wall_s = time.perf_counter() - start
    finally:
        app.close()
    turns = [t for r in results for t in r["turns"]]
    done = [t for t in turns if "seconds" in t]
    by_request = {
        r: {"n": len(ts), **stats([t["seconds"] for t in ts])}
        for r in requests
        if (ts := [t for t in done if t["request"] == r])
    }
    return {
        "sessions": sessions,
        "turns_per_session": 2,
        "agent": "fake (echo, no LLM, no tools)" if fake else f"real ChatAgent, {backend.describe()}",
        "dataset": None if fake else dataset,
        "agent_load_s": round(agent_load_s, 2),
        "wall_s": round(wall_s, 2),
        "turn_latency": {"n": len(done), **stats([t["seconds"] for t in done])},
        "first_update_latency": stats([t["first_update_s"] for t in done]),
        "by_request": by_request,
        "sessions_with_own_messages_only": sum(r["own_messages_only"] for r in results),
        "errors": [f"session {r['session']}: {t['error']}" for r in results for t in r["turns"] if t.get("error")],
        "per_session": results,
    }


# --- output --------------------------------------------------------------------------------------


def print_ready(r: dict[str, Any]) -> None:
    print(f"\nready ({r['command']}): {'ok' if r.get('ok') else 'FAILED ' + str(r.get('error', ''))}")
    for step, t in r["steps_s"].items():
        print(f"  {step:<20} {t:8.1f} s")
    if "first_turn" in r:
        ft = r["first_turn"]
        print(f"  first chat turn: {ft['seconds']:.1f} s, tools {ft['tools']}, answer: {ft['answer'][:100]!r}")


def print_load(r: dict[str, Any]) -> None:
    print(f"\nload: {r['sessions']} sessions x 2 turns, {r['agent']}; agent load {r['agent_load_s']} s")
    print(f"  {'request':<32} {'n':>3} {'median_s':>9} {'p90_s':>8} {'max_s':>8}")
    for name, s in [*r["by_request"].items(), ("all turns", r["turn_latency"])]:
        print(f"  {name:<32} {s['n']:>3} {s['median_s']:>9} {s['p90_s']:>8} {s['max_s']:>8}")
    f = r["first_update_latency"]
    print(f"  first streamed update: median {f['median_s']} s, p90 {f['p90_s']} s, max {f['max_s']} s")
    print(f"  wall {r['wall_s']} s; sessions with only their own messages: ", end="")
    print(f"{r['sessions_with_own_messages_only']}/{r['sessions']}; errors: {len(r['errors'])}")
    for e in r["errors"][:5]:
        print(f"    {e}")


def save(out: Path, section: str, body: dict[str, Any], machine: dict[str, Any]) -> None:
    """Merge one mode's section into the results file, so --ready and --load can run apart."""
    try:
        results = json.loads(out.read_text())
    except (OSError, ValueError):
        results = {}
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results[section] = {"machine": machine, **body}
    write_json(out, results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready", action="store_true", help="time `jetfm demo` from an empty workspace")
    parser.add_argument("--load", type=int, nargs="?", const=8, metavar="N", help="N concurrent sessions (8)")
    parser.add_argument("--fake-agent", action="store_true", help="--load with an echo agent: the app's overhead")
    parser.add_argument("--workspace", type=Path, help="--load: an existing workspace (default: a fresh one)")
    parser.add_argument("--dataset", default=None, help="--load: the dataset the requests name (demo-1000)")
    parser.add_argument("--n-jets", type=int, default=None, help="--ready: passed to jetfm demo; --load: jets made")
    parser.add_argument("--port", type=int, default=None, help="--ready: the demo's port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds: the demo to answer, or one turn")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.ready and args.load is None:
        parser.error("choose --ready and/or --load [N]")

    if args.ready:
        machine = machine_info()
        result = bench_ready(args.port or free_port(), args.n_jets, args.timeout)
        save(args.out, "ready", result, machine)
        print_ready(result)
    if args.load is not None:
        machine = machine_info()
        scratch = None
        if args.workspace is None:
            scratch = Path(tempfile.mkdtemp(prefix="jetfm-bench-app-"))
        os.environ["JETFM_HOME"] = str(args.workspace or scratch)  # read by the tools at each call
        n_jets = args.n_jets or 200  # small: generation is not what is measured here
        dataset = args.dataset or ("demo-1000" if args.workspace else f"demo-{n_jets}")
        try:
            result = bench_load(args.load, args.fake_agent, dataset, n_jets, args.timeout)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        save(args.out, "load_fake_agent" if args.fake_agent else "load", result, machine)
        print_load(result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
