#!/usr/bin/env python3
"""Sums oneDNN's per-primitive times of the last timed steps of bench/step-worker.ts (or bench/torch_step.py).

Usage: ONEDNN_VERBOSE=1 DPTRAIN_NATIVE_THREADS=1 npx tsx bench/step-worker.ts --mode features --precision bf16 --steps 3 \
         | python3 bench/onednn-verbose.py --steps 3
Prints ms per step and calls per step of each (primitive, implementation, pass, shape, layouts), largest first. The last
`--steps` steps are found by their forward convolutions: `--layers` per step (default 3, VGG16's block5) whose problem
string contains `--shape` (default the block5 convolution's, 512 -> 512 at 9x9).
"""
import argparse
import sys
from collections import defaultdict

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=3)
p.add_argument("--layers", type=int, default=3)
p.add_argument("--shape", default="ic512oc512_ih9")
a = p.parse_args()

lines = [l.strip().split(",") for l in sys.stdin if l.startswith(("onednn_verbose,exec", "dnnl_verbose,exec"))]
forwards = [i for i, l in enumerate(lines) if l[3] == "convolution" and l[5].startswith("forward") and a.shape in l[-2]]
if len(forwards) < a.layers * a.steps:
    sys.exit(f"found {len(forwards)} forward convolutions with {a.shape}, fewer than {a.layers} x {a.steps}")
start = forwards[-a.layers * a.steps]
while start > 0 and lines[start - 1][3] == "reorder":  # the first layer's reorders run just before its forward
    start -= 1
timed = lines[start:]
totals = defaultdict(lambda: [0, 0.0])
for l in timed:
    key = f"{l[3]} {l[4]} {l[5]} {l[-2]} {l[6]}"
    totals[key][0] += 1
    totals[key][1] += float(l[-1])
print(f"oneDNN total {sum(t for _, t in totals.values()) / a.steps:.1f} ms per step")
for key, (calls, ms) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
    print(f"{ms / a.steps:8.2f} ms {calls / a.steps:5.1f} calls  {key}")
