"""Hyperparameter sweep behind the default grids (bench/RESULTS.md, "Choosing the grids").

Run on the lent GPU machine (torch + transformers + peft there; no pydantic, datasets or
Prefect), so it mirrors the project's recipe instead of importing it: the Trainer, dynamic
padding, length-grouped batches, LoRA via PEFT, bf16 autocast, seed 42, validation and test
accuracy after every epoch. Its inputs are prepared here and carried in a git-ignored folder:
``data/`` holds the project's prepared splits (``prepare_sst2``: train/validation/test parquet,
plus ``train_mw0``/``validation_mw0`` with ``min_words=0``) and ``model/`` the embedded
all-MiniLM-L6-v2 with its weights stored as fp16 (``model.fp16.safetensors``, cast back to fp32
before use) to fit the 64 MiB transfer limit.

    python3 grid_sweep.py all [NAME ...]   # every config (or the named ones) in parallel

One process per config share the GPU; the results land in ``$OUT/sweep.json``
(bench/grid_sweep_results.json holds the two sweeps of 2026-11-26).
"""

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# the folder holding data/ and model/ (default: this file's folder, as when carried with them)
HERE = Path(os.environ.get("SWEEP_INPUTS", Path(__file__).resolve().parent))
RES = Path(os.environ.get("SWEEP_RES", "/tmp/sweep-res"))
ALL = "query,key,value,dense"
ATT = "query,key,value,attention.output.dense"
CONFIGS = {
    # name: (train file, train rows, val rows, targets, r, alpha, lr, epochs, batch, full FT, seed?)
    # full profile data (47,462 rows after min_words=3; train_mw0: 57,246 rows, min_words=0)
    "full-qv-r8-lr1e-3-e2": ("train", None, None, "query,value", 8, 32, 1e-3, 2, 32, False),
    "full-all-r16-lr1e-3-e3": ("train", None, None, ALL, 16, 32, 1e-3, 3, 32, False),
    "full-all-r16-lr5e-4-e3": ("train", None, None, ALL, 16, 32, 5e-4, 3, 32, False),
    "full-all-r16-lr2e-3-e3": ("train", None, None, ALL, 16, 32, 2e-3, 3, 32, False),
    "full-all-r32-lr1e-3-e3-bs16": ("train", None, None, ALL, 32, 64, 1e-3, 3, 16, False),
    "full-att-r16-lr1e-3-e3": ("train", None, None, ATT, 16, 32, 1e-3, 3, 32, False),
    "full-ft-lr5e-5-e3": ("train", None, None, "", 0, 0, 5e-5, 3, 32, True),
    "mw0-all-r16-lr1e-3-e3": ("train_mw0", None, None, ALL, 16, 32, 1e-3, 3, 32, False),
    # quick profile candidates (stratified subsets, 1,000 validation rows)
    "q6k-att-r16-lr1e-3-e2": ("train", 6000, 1000, ATT, 16, 32, 1e-3, 2, 16, False),
    "q6k-all-r16-lr1e-3-e2": ("train", 6000, 1000, ALL, 16, 32, 1e-3, 2, 16, False),
    "q6k-all-r16-lr2e-3-e1": ("train", 6000, 1000, ALL, 16, 32, 2e-3, 1, 16, False),
    "q12k-all-r16-lr1e-3-e1": ("train", 12000, 1000, ALL, 16, 32, 1e-3, 1, 16, False),
    "q12k-all-r16-lr1e-3-e1-s1": ("train", 12000, 1000, ALL, 16, 32, 1e-3, 1, 16, False, 1),
    "q12k-all-r16-lr1e-3-e1-s2": ("train", 12000, 1000, ALL, 16, 32, 1e-3, 1, 16, False, 2),
    "q12k-all-r16-lr5e-4-e1": ("train", 12000, 1000, ALL, 16, 32, 5e-4, 1, 16, False),
    "q12k-all-r16-lr2e-3-e1-bs32": ("train", 12000, 1000, ALL, 16, 32, 2e-3, 1, 32, False),
    "q12k-all-r8-lr1e-3-e1": ("train", 12000, 1000, ALL, 8, 16, 1e-3, 1, 16, False),
    "q12k-att-r16-lr1e-3-e1": ("train", 12000, 1000, ATT, 16, 32, 1e-3, 1, 16, False),
    "q12k-qv-r8-lr1e-3-e1": ("train", 12000, 1000, "query,value", 8, 32, 1e-3, 1, 16, False),
    "q12k-qv-r8-lr2e-3-e1": ("train", 12000, 1000, "query,value", 8, 32, 2e-3, 1, 16, False),
    "q16k-all-r16-lr1e-3-e1": ("train", 16000, 1000, ALL, 16, 32, 1e-3, 1, 16, False),
    "q16k-all-r16-lr1e-3-e1-s1": ("train", 16000, 1000, ALL, 16, 32, 1e-3, 1, 16, False, 1),
    "q16k-att-r16-lr1e-3-e1": ("train", 16000, 1000, ATT, 16, 32, 1e-3, 1, 16, False),
    "q20k-all-r16-lr1e-3-e1": ("train", 20000, 1000, ALL, 16, 32, 1e-3, 1, 16, False),
}


def prepare_model(dst: Path) -> None:
    from safetensors.torch import load_file, save_file

    if (dst / "model.safetensors").exists():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for f in (HERE / "model").iterdir():
        if f.name != "model.fp16.safetensors":
            (dst / f.name).write_bytes(f.read_bytes())
    sd = load_file(str(HERE / "model" / "model.fp16.safetensors"))
    save_file({k: v.float().contiguous() for k, v in sd.items()}, str(dst / "model.safetensors"))


def run(name: str, model_dir: str) -> None:
    import numpy as np
    import pandas as pd
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from sklearn.model_selection import train_test_split
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    tf, ntr, nval, targets, r, alpha, lr, epochs, bs, full_ft, *rest = CONFIGS[name]
    seed = rest[0] if rest else 42
    set_seed(seed)
    train = pd.read_parquet(HERE / "data" / f"{tf}.parquet")
    val = pd.read_parquet(
        HERE / "data" / ("validation_mw0.parquet" if tf == "train_mw0" else "validation.parquet")
    )
    test = pd.read_parquet(HERE / "data" / "test.parquet")
    if ntr:
        train, _ = train_test_split(train, train_size=ntr, random_state=42, stratify=train["label"])
    if nval:
        val, _ = train_test_split(val, train_size=nval, random_state=42, stratify=val["label"])
    tok = AutoTokenizer.from_pretrained(model_dir)

    def enc(df):
        e = tok(df["sentence"].tolist(), truncation=True, max_length=128)
        return [
            {"input_ids": i, "attention_mask": a, "labels": int(y)}
            for i, a, y in zip(e["input_ids"], e["attention_mask"], df["label"], strict=True)
        ]

    dtr, dval, dte = enc(train), enc(val), enc(test)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    if not full_ft:
        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.SEQ_CLS,
                r=r,
                lora_alpha=alpha,
                lora_dropout=0.1,
                target_modules=targets.split(","),
            ),
        )
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    kw = dict(
        output_dir=f"/tmp/sw-{name}",
        per_device_train_batch_size=bs,
        per_device_eval_batch_size=256,
        num_train_epochs=epochs,
        learning_rate=lr,
        weight_decay=0.01,
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="no",
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=True,
        bf16=torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    if "train_sampling_strategy" in fields:
        kw["train_sampling_strategy"] = "group_by_length"
    else:
        kw["group_by_length"] = True
    if "warmup_ratio" in fields:
        kw["warmup_ratio"] = 0.06
    else:
        kw["warmup_steps"] = 0.06
    if not torch.cuda.is_available():
        kw["use_cpu"] = True

    def metrics(p):
        return {"accuracy": float((np.asarray(p.predictions).argmax(1) == p.label_ids).mean())}

    trainer = Trainer(
        model=model,
        args=TrainingArguments(**kw),
        train_dataset=dtr,
        eval_dataset={"val": dval, "test": dte},
        data_collator=DataCollatorWithPadding(tok),
        compute_metrics=metrics,
    )
    t = time.time()
    trainer.train()
    secs = time.time() - t
    hist = [
        {k: v for k, v in h.items() if k.endswith("accuracy") or k == "epoch"}
        for h in trainer.state.log_history
        if any(k.endswith("accuracy") for k in h)
    ]
    out = {"name": name, "train_rows": len(dtr), "seconds": round(secs, 1), "history": hist}
    RES.mkdir(parents=True, exist_ok=True)
    (RES / f"{name}.json").write_text(json.dumps(out))
    print("DONE", json.dumps(out), flush=True)


if __name__ == "__main__":
    model_dir = "/tmp/sweep-model"
    if len(sys.argv) > 1 and sys.argv[1] != "all":
        run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else model_dir)
        sys.exit()
    prepare_model(Path(model_dir))
    names = sys.argv[2:] or list(CONFIGS)
    procs = {
        n: subprocess.Popen(
            [sys.executable, __file__, n, model_dir],
            stdout=open(f"/tmp/sw-{n}.log", "w"),
            stderr=subprocess.STDOUT,
        )
        for n in names
    }
    deadline = time.time() + float(os.environ.get("SWEEP_BUDGET", "420"))
    while any(p.poll() is None for p in procs.values()) and time.time() < deadline:
        time.sleep(5)
    summary = {}
    for n, p in procs.items():
        f = RES / f"{n}.json"
        summary[n] = (
            json.loads(f.read_text())
            if f.exists()
            else {"name": n, "rc": p.poll(), "log_tail": open(f"/tmp/sw-{n}.log").read()[-1500:]}
        )
        if p.poll() is None:
            p.kill()
    out = Path(os.environ.get("OUT", "/tmp"))
    (out / "sweep.json").write_text(json.dumps(summary, indent=1))
    for n, s in summary.items():
        h = s.get("history")
        print(
            n,
            s.get("seconds"),
            [
                (
                    round(x.get("epoch", 0), 1),
                    round(x.get("eval_val_accuracy", 0), 4),
                    round(x.get("eval_test_accuracy", 0), 4),
                )
                for x in h
            ]
            if h
            else s.get("log_tail", "")[-600:],
        )
