#!/usr/bin/env python3
"""The same weights in rarts and in PyTorch, network-wide.

Builds DARTS' evaluation network (quark0/darts `cnn/model.py` NetworkCIFAR,
ops from `cnn/operations.py`, the same module names) in PyTorch and checks
it against rarts on the 20 real CIFAR-10 test images of
tests/data/cifar10_test_first20.bin:

1. rarts -> PyTorch: a network trained a few steps by `rarts train`, written
   by `rarts export`, loaded with `load_state_dict(strict=True)`; the logits
   of both in evaluation mode.
2. PyTorch -> rarts: a network trained a few steps in PyTorch, saved with
   `safetensors.torch.save_file`, scored by `rarts eval --genotype`; the
   logits of both.

Prints the largest logit difference over the largest logit of each and
exits 1 when one exceeds 1e-4.

Usage: scripts/crosscheck-torch.py [--rarts target/release/rarts] [--work DIR]
Needs torch and safetensors (pip install torch safetensors; the CPU wheels).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN = [0.49139968, 0.48215827, 0.44653124]
STD = [0.24703233, 0.24348505, 0.26158768]

# DARTS V2 (quark0/darts genotypes.py).
DARTS_V2 = dict(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)


# --- cnn/operations.py -----------------------------------------------------
class ReLUConvBN(nn.Module):
    def __init__(self, c_in, c_out, k, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, k, stride, padding, bias=False),
                                nn.BatchNorm2d(c_out, affine=affine))

    def forward(self, x):
        return self.op(x)


class DilConv(nn.Module):
    def __init__(self, c_in, c_out, k, stride, padding, dilation, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, k, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=affine))

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    def __init__(self, c_in, c_out, k, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False), nn.Conv2d(c_in, c_in, k, stride, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, bias=False), nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False), nn.Conv2d(c_in, c_in, k, 1, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=affine))

    def forward(self, x):
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x):
        return x


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out, affine=True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


OPS = {
    "avg_pool_3x3": lambda c, s, a: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda c, s, a: nn.MaxPool2d(3, stride=s, padding=1),
    "skip_connect": lambda c, s, a: Identity() if s == 1 else FactorizedReduce(c, c, affine=a),
    "sep_conv_3x3": lambda c, s, a: SepConv(c, c, 3, s, 1, affine=a),
    "sep_conv_5x5": lambda c, s, a: SepConv(c, c, 5, s, 2, affine=a),
    "dil_conv_3x3": lambda c, s, a: DilConv(c, c, 3, s, 2, 2, affine=a),
    "dil_conv_5x5": lambda c, s, a: DilConv(c, c, 5, s, 4, 2, affine=a),
}


# --- cnn/model.py ------------------------------------------------------------
class Cell(nn.Module):
    def __init__(self, genotype, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        ops, concat = (genotype["reduce"], genotype["reduce_concat"]) if reduction else \
            (genotype["normal"], genotype["normal_concat"])
        self._steps = len(ops) // 2
        self._concat = concat
        self.multiplier = len(concat)
        self._ops = nn.ModuleList()
        self._indices = []
        for name, index in ops:
            stride = 2 if reduction and index < 2 else 1
            self._ops.append(OPS[name](c, stride, True))
            self._indices.append(index)

    def forward(self, s0, s1):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self._steps):
            h1 = self._ops[2 * i](states[self._indices[2 * i]])
            h2 = self._ops[2 * i + 1](states[self._indices[2 * i + 1]])
            states.append(h1 + h2)
        return torch.cat([states[i] for i in self._concat], dim=1)


class NetworkCIFAR(nn.Module):
    def __init__(self, c, num_classes, layers, genotype, in_channels=3):
        super().__init__()
        stem_multiplier = 3
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in [layers // 3, 2 * layers // 3]
            if reduction:
                c_curr *= 2
            cell = Cell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            c_pp, c_p = c_p, cell.multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).view(x.size(0), -1))


# -----------------------------------------------------------------------------
def images():
    raw = np.fromfile(os.path.join(ROOT, "tests/data/cifar10_test_first20.bin"), dtype=np.uint8).reshape(20, 3073)
    labels = raw[:, 0].astype(np.int64)
    x = raw[:, 1:].reshape(20, 3, 32, 32).astype(np.float32) / 255.0
    x = (x - np.array(MEAN, np.float32)[None, :, None, None]) / np.array(STD, np.float32)[None, :, None, None]
    return torch.from_numpy(x), torch.from_numpy(labels)


def cifar_dir(work):
    """The 20 images as a CIFAR-10 folder rarts reads (every batch file the same)."""
    d = os.path.join(work, "cifar20")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(ROOT, "tests/data/cifar10_test_first20.bin")
    for f in ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]:
        shutil.copy(src, os.path.join(d, f))
    return d


def rarts_logits(rarts, model, data, work, genotype=None):
    out = os.path.join(work, "logits.jsonl")
    cmd = [rarts, "--device", "cpu", "eval", "--model", model, "--data", "cifar10:" + data, "--batch", "20",
           "--logits", out]
    if genotype:
        cmd += ["--genotype", genotype]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return torch.tensor([json.loads(line) for line in open(out)], dtype=torch.float64)


def report(what, ours, theirs):
    diff = (ours - theirs).abs().max().item()
    scale = max(ours.abs().max().item(), theirs.abs().max().item())
    rel = diff / scale
    print(f"{what}: largest |logit difference| {diff:.3e}, largest |logit| {scale:.3e}, ratio {rel:.3e}")
    return rel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rarts", default=os.path.join(ROOT, "target/release/rarts"))
    ap.add_argument("--work", default=os.path.join(ROOT, "runs/crosscheck"))
    ap.add_argument("--c", type=int, default=8)
    ap.add_argument("--layers", type=int, default=8)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.manual_seed(0)
    data = cifar_dir(args.work)
    x, y = images()
    worst = 0.0

    # 1. rarts -> PyTorch.
    train_dir = os.path.join(args.work, "rarts-train")
    subprocess.run([args.rarts, "--device", "cpu", "train", "--genotype", "DARTS_V2", "--c", str(args.c),
                    "--layers", str(args.layers), "--batch", "10", "--epochs", "2", "--steps-per-epoch", "2",
                    "--data", "cifar10:" + data, "--eval-images", "20", "--quiet", "--force", "--out", train_dir],
                   check=True, stdout=subprocess.DEVNULL)
    exported = os.path.join(args.work, "rarts-export.safetensors")
    subprocess.run([args.rarts, "export", "--model", train_dir, "--out", exported], check=True,
                   stdout=subprocess.DEVNULL)
    from safetensors.torch import load_file
    net = NetworkCIFAR(args.c, 10, args.layers, DARTS_V2)
    net.load_state_dict(load_file(exported), strict=True)
    net.eval()
    with torch.no_grad():
        theirs = net(x).double()
    ours = rarts_logits(args.rarts, train_dir, data, args.work)
    worst = max(worst, report("rarts-trained, exported, run by PyTorch (eval mode)", ours, theirs))

    # 2. PyTorch -> rarts.
    net = NetworkCIFAR(args.c, 10, args.layers, DARTS_V2)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    saved = os.path.join(args.work, "torch-trained.safetensors")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, saved)
    with torch.no_grad():
        theirs = net(x).double()
    ours = rarts_logits(args.rarts, saved, data, args.work, genotype="DARTS_V2")
    worst = max(worst, report("PyTorch-trained, read by rarts eval --genotype", ours, theirs))

    print(f"largest ratio {worst:.3e} (limit 1e-4): {'OK' if worst <= 1e-4 else 'FAILED'}")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
