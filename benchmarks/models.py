"""Real models through ONNX: torchvision's classifiers and a 2-layer TransformerEncoder (random
weights) exported by torch's ONNX exporter, each checked by `graphc onnx check` in a new
process with an empty compile cache: does it import, the largest difference from onnxruntime
relative to the output's scale, the first call (compile + run) and the warm time of graphc and
of onnxruntime.

    python benchmarks/models.py                      # the whole list
    python benchmarks/models.py resnet18 vgg11       # some
    python benchmarks/models.py --timeout 600

Needs torch, torchvision and onnxruntime (pip install torch torchvision onnxruntime); they are
not graphc's extras (torch is gigabytes). Speed belongs to the performance work; this reports it.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from busy import busy_processes  # noqa: E402

MODELS = ["resnet18", "resnet50", "vgg11", "alexnet", "googlenet", "inception_v3", "densenet121", "squeezenet1_1",
          "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5", "mnasnet0_5", "efficientnet_b0",
          "regnet_y_400mf", "convnext_tiny", "vit_b_16", "transformer_encoder"]
QUICK = ["resnet18", "mobilenet_v2", "efficientnet_b0"]


def _transformer_encoder():
    """torch.nn.TransformerEncoder, 2 layers of d_model 256, 4 heads, feed-forward 1024; one
    sequence of 128 tokens."""
    import torch

    layer = torch.nn.TransformerEncoderLayer(d_model=256, nhead=4, dim_feedforward=1024, dropout=0.0, batch_first=True)
    return torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval(), (1, 128, 256)


def export(name: str, folder: Path) -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    if name == "transformer_encoder":
        model, shape = _transformer_encoder()
    else:
        model = getattr(torchvision.models, name)(weights=None).eval()
        size = 299 if name == "inception_v3" else 224
        shape = (1, 3, size, size)
    with torch.no_grad():   # some heads start at zero (vit's): random values, so the logits say something
        for p in model.parameters():
            if not torch.any(p):
                p.normal_(0.0, 0.02)
    path = folder / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(*shape),), str(path), input_names=["x"],
                          output_names=["logits"], opset_version=17, dynamo=False)
    return path


def check(path: Path, timeout: float) -> dict[str, str]:
    env = dict(os.environ, GRAPHC_CACHE_DIR=tempfile.mkdtemp(prefix="graphc-cache-"))
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "graphc.cli", "onnx", "check", str(path)], capture_output=True,
                              text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"status": f"first call over {timeout:g} s"}
    text = done.stdout + done.stderr
    out = {"status": "runs" if "every operator imports" in text else text.strip().splitlines()[-1][:80],
           "wall_s": f"{time.perf_counter() - started:.1f}"}
    diff = re.search(r"largest difference from onnxruntime [0-9.e+-]+ \(([0-9.e+-]+) of the output's scale\)", text)
    graphc_t = re.search(r"graphc: first call ([0-9.]+) ms .*warm ([0-9.]+) ms", text)
    ort_t = re.search(r"onnxruntime: first call ([0-9.]+) ms .*warm ([0-9.]+) ms", text)
    if diff:
        out["max_diff"] = diff.group(1)
    if graphc_t and ort_t:
        out["first_s"] = f"{float(graphc_t.group(1)) / 1e3:.1f}"
        out["warm_ratio"] = f"{float(graphc_t.group(2)) / float(ort_t.group(2)):.1f}"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for one model's check")
    parser.add_argument("--quick", action="store_true", help="only " + ", ".join(QUICK))
    parser.add_argument("--busy", type=int, default=0, help="spinning processes to run while measuring")
    args = parser.parse_args(argv)
    if args.quick and args.models == MODELS:
        args.models = QUICK
    folder = Path(tempfile.mkdtemp(prefix="graphc-models-"))
    print("| model | imports and runs | largest difference / output scale | graphc first call (s) | "
          "warm graphc / onnxruntime |")
    print("|---|---|---|---|---|")
    for name in args.models:
        try:
            path = export(name, folder)
            with busy_processes(args.busy):
                row = check(path, args.timeout)
        except Exception as err:   # noqa: BLE001 - an export failure is a row, not the end of the table
            row = {"status": f"torch export failed: {type(err).__name__}"}
        print(f"| {name} | {row['status']} | {row.get('max_diff', '-')} | {row.get('first_s', '-')} | "
              f"{row.get('warm_ratio', '-')} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
