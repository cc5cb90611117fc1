#!/usr/bin/env python3
"""Full-size torchvision classification models, scripted and traced, for tests/bench/torchvision.sh.

`python3 tests/bench/torchvision_models.py OUT_DIR [model ...]` with Debian's python3-torch and
python3-torchvision (0.14). Each model (10 classes, random seeded weights, input [N, 3, 32, 32])
is saved as OUT_DIR/<model>_scripted.pt and <model>_traced.pt; OUT_DIR/reference.txt gets one line
per model, `<model> <macs> <params>`, counted with forward hooks on the eager model exactly as the
committed small twins' reference (tests/fixtures/torchvision/families/make_fixtures.py).
Too large for the repository: the bench makes them on the fly.
"""
import os
import sys

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = os.path.join(os.path.dirname(HERE), "fixtures", "torchvision", "families")
sys.path.insert(0, FAMILIES)
sys.path.insert(0, os.path.dirname(os.path.dirname(FAMILIES)))
from make_fixtures import randomize_bn, reference_macs  # noqa: E402
from torchscript_fixture import save_without_debug_info  # noqa: E402

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5",
          "regnet_x_400mf", "densenet121", "efficientnet_b0"]


def main():
    out_dir = sys.argv[1]
    models = sys.argv[2:] or MODELS
    os.makedirs(out_dir, exist_ok=True)
    lines = []
    for i, name in enumerate(models):
        torch.manual_seed(6000 + i)
        net = getattr(torchvision.models, name)(num_classes=10)
        randomize_bn(net)
        net.eval()
        example = torch.randn(2, 3, 32, 32)
        forms = {"scripted": torch.jit.script(net)}
        with torch.no_grad():
            forms["traced"] = torch.jit.trace(net, example)
        for form, module in forms.items():
            save_without_debug_info(module, os.path.join(out_dir, f"{name}_{form}.pt"))
        params = sum(p.numel() for p in net.parameters())
        lines.append(f"{name} {reference_macs(net, example)} {params}")
        print(lines[-1], flush=True)
    with open(os.path.join(out_dir, "reference.txt"), "w") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
