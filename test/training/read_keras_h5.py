#!/usr/bin/env python3
"""Reads a Keras HDF5 model file with h5py the way Keras' legacy loader does (model_config, then model_weights'
layer_names and each layer's weight_names) and prints JSON: attributes, the model config, and for every layer its
weights' names, shapes and the SHA-256 of their float32 little-endian bytes. Usage: read_keras_h5.py FILE"""
import hashlib
import json
import sys

import h5py
import numpy as np


def names(attr):
    return [n.decode("utf8") if hasattr(n, "decode") else str(n) for n in attr]


def text(attr):
    return attr.decode("utf8") if hasattr(attr, "decode") else str(attr)


with h5py.File(sys.argv[1], "r") as f:
    weights = f["model_weights"]
    layers = []
    for layer in names(weights.attrs["layer_names"]):
        g = weights[layer]
        entries = []
        for w in names(g.attrs["weight_names"]):
            values = np.asarray(g[w], dtype="<f4")
            entries.append({"name": w, "shape": list(values.shape), "sha256": hashlib.sha256(values.tobytes()).hexdigest()})
        layers.append({"name": layer, "weights": entries})
    print(json.dumps({
        "kerasVersion": text(f.attrs["keras_version"]),
        "backend": text(f.attrs["backend"]),
        "modelConfig": json.loads(text(f.attrs["model_config"])),
        "layers": layers,
    }))
