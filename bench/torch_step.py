#!/usr/bin/env python3
"""PyTorch reference for bench/run.ts: the same VGG16 fine-tune step (block5 + head trainable, 150 px, Adam).

Frozen block1-4 run under no_grad (mode 'images'), or the step starts from block4_pool features (mode 'features').
Head: global average pooling -> Dense(256, relu) -> Dropout(0.5) -> Dense(6), softmax cross-entropy (dptrain's default).
With --precision bf16 the forward passes (frozen and trainable, and the loss) run under
torch.autocast("cpu", dtype=torch.bfloat16), as a PyTorch user turns mixed precision on; weights and Adam stay fp32.
Prints one JSON line {"result": {...}}. Usage: python3 torch_step.py --mode images|features --batch 8 --steps 6 --threads 1
[--precision fp32|bf16] [--profile]
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--mode", default="features", choices=["images", "features"])
p.add_argument("--batch", type=int, default=8)
p.add_argument("--steps", type=int, default=6)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
p.add_argument("--barrier", action="store_true")
p.add_argument("--profile", action="store_true", help="print torch.profiler's table of one step (ops by self CPU time) to stderr")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


def block(cin, cout, n):
    layers = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU(inplace=True)]
    layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


frozen = nn.Sequential(block(3, 64, 2), block(64, 128, 2), block(128, 256, 3), block(256, 512, 3)).eval()
for q in frozen.parameters():
    q.requires_grad_(False)
trainable = nn.Sequential(
    block(512, 512, 3),
    nn.AdaptiveAvgPool2d(1),
    nn.Flatten(),
    nn.Linear(512, 256),
    nn.ReLU(inplace=True),
    nn.Dropout(0.5),
    nn.Linear(256, 6),
)
opt = torch.optim.Adam(trainable.parameters(), lr=1e-5)
loss_fn = nn.CrossEntropyLoss()
images = torch.rand(a.batch, 3, 150, 150) * 255 - 120
labels = torch.arange(a.batch) % 6
autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16")
with torch.no_grad(), autocast:
    cached = frozen(images)  # block4_pool: [B, 512, 9, 9] (bf16 under autocast: what a bf16 user would cache)


def step():
    with autocast:
        if a.mode == "images":
            with torch.no_grad():
                x = frozen(images)
        else:
            x = cached
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(trainable(x), labels)
    loss.backward()
    opt.step()


for _ in range(a.warmup):
    step()
if a.barrier:  # parallel processes: wait for the parent's go, so they time the same window
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()
if a.profile:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), file=sys.stderr)
t0 = time.perf_counter()
c0 = time.process_time()
each = []
for _ in range(a.steps):
    s0 = time.perf_counter()
    step()
    each.append((time.perf_counter() - s0) * 1000)
mean_ms = (time.perf_counter() - t0) / a.steps * 1000
ms = sorted(each)[len(each) // 2]  # median step: robust to the odd slow step on a shared VM
if os.environ.get("DPTRAIN_BENCH_EACH"): print(json.dumps([round(e) for e in each]), file=sys.stderr)
cpu_ms = (time.process_time() - c0) / a.steps * 1000
print(json.dumps({"result": {
    "backend": "pytorch",
    "precision": a.precision,
    "device": f"cpu (PyTorch {torch.__version__}, {torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''})",
    "mode": a.mode,
    "batch": a.batch,
    "steps": a.steps,
    "step_ms": round(ms, 1),
    "mean_step_ms": round(mean_ms, 1),
    "img_per_s": round(a.batch / (ms / 1000), 2),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    "params": sum(q.numel() for q in trainable.parameters()),
    "cpu_ms": round(cpu_ms),
}}))
