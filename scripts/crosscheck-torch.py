#!/usr/bin/env python3
"""The same weights in rarts and in PyTorch, network-wide.

Builds DARTS' evaluation network (quark0/darts `cnn/model.py` NetworkCIFAR,
ops from `cnn/operations.py`, the same module names) and its search network
(`cnn/model_search.py` Network) in PyTorch and checks them against rarts on
the 20 real CIFAR-10 test images of tests/data/cifar10_test_first20.bin:

1. rarts -> PyTorch: a network with DARTS' auxiliary head trained a few
   steps by `rarts train --auxiliary`, written by `rarts export`, loaded
   with `load_state_dict(strict=True)` (the head's names and shapes
   included); the logits of both in evaluation mode.
2. PyTorch -> rarts: a network with the auxiliary head trained a few steps
   in PyTorch (loss + 0.4 × the head's), saved with
   `safetensors.torch.save_file`, scored by `rarts eval --genotype`; the
   logits of both.
3. A RARTS search run a few steps by `rarts search`, both its networks (w
   and y) written by `rarts export [--net y]` with alphas_normal and
   alphas_reduce, loaded with `strict=True`: in training mode on the 20
   images, the loss (limit 1e-5 relative), the gradient of both α matrices
   and of every weight (each limit 1e-3 of the largest element of its
   tensor), against `rarts eval --grads`.

Prints the largest difference of each over its scale and exits 1 when one
exceeds its limit.

Usage: scripts/crosscheck-torch.py [--rarts target/release/rarts] [--work DIR] [--parts 123]
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


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x.mul(0.0) if self.stride == 1 else x[:, :, ::self.stride, ::self.stride].mul(0.0)


PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
              "dil_conv_3x3", "dil_conv_5x5"]

OPS = {
    "none": lambda c, s, a: Zero(s),
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


def build_body(net, c, num_classes, layers, in_channels, make_cell, multiplier=4, stem_multiplier=3):
    """The stem, the cells (reductions at layers/3 and 2·layers/3, the
    channels doubling there) and the classifier, as both of quark0/darts'
    networks build them; `make_cell(c_pp, c_p, c, reduction, reduction_prev)`."""
    c_curr = stem_multiplier * c
    net.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
    c_pp, c_p, c_curr = c_curr, c_curr, c
    net.cells = nn.ModuleList()
    reduction_prev = False
    for i in range(layers):
        reduction = i in [layers // 3, 2 * layers // 3]
        if reduction:
            c_curr *= 2
        net.cells.append(make_cell(c_pp, c_p, c_curr, reduction, reduction_prev))
        reduction_prev = reduction
        c_pp, c_p = c_p, multiplier * c_curr
    net.global_pooling = nn.AdaptiveAvgPool2d(1)
    net.classifier = nn.Linear(c_p, num_classes)


class AuxiliaryHeadCIFAR(nn.Module):
    """On the 8×8 output of cell 2·layers/3 (32×32 inputs)."""

    def __init__(self, c, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).view(x.size(0), -1))


class NetworkCIFAR(nn.Module):
    """Returns the logits, and in training mode with the auxiliary head also
    the head's logits."""

    def __init__(self, c, num_classes, layers, genotype, in_channels=3, auxiliary=False):
        super().__init__()
        multiplier = len(genotype["normal_concat"])
        build_body(self, c, num_classes, layers, in_channels,
                   lambda c_pp, c_p, c, red, red_prev: Cell(genotype, c_pp, c_p, c, red, red_prev),
                   multiplier=multiplier)
        self._aux_at = 2 * layers // 3
        if auxiliary:
            # The channels cell 2L/3 puts out: C doubled at each reduction up to it.
            reductions = sum(1 for r in [layers // 3, 2 * layers // 3] if r <= self._aux_at)
            self.auxiliary_head = AuxiliaryHeadCIFAR(multiplier * c * 2 ** reductions, num_classes)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self._aux_at and hasattr(self, "auxiliary_head") and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).view(x.size(0), -1))
        return logits if aux is None else (logits, aux)


# --- cnn/model_search.py -----------------------------------------------------
class MixedOp(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self._ops = nn.ModuleList()
        for p in PRIMITIVES:
            op = OPS[p](c, stride, False)
            if "pool" in p:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            self._ops.append(op)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class SearchCell(nn.Module):
    def __init__(self, steps, multiplier, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c, affine=False) if reduction_prev else \
            ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self._steps = steps
        self._multiplier = multiplier
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                self._ops.append(MixedOp(c, 2 if reduction and j < 2 else 1))

    def forward(self, s0, s1, weights):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier:], dim=1)


class Network(nn.Module):
    """model_search.py's Network; α is kept beside the state_dict, as there."""

    def __init__(self, c, num_classes, layers, in_channels=3, steps=4, multiplier=4):
        super().__init__()
        build_body(self, c, num_classes, layers, in_channels,
                   lambda c_pp, c_p, c, red, red_prev: SearchCell(steps, multiplier, c_pp, c_p, c, red, red_prev),
                   multiplier=multiplier)
        edges = sum(2 + i for i in range(steps))
        self.alphas_normal = (1e-3 * torch.randn(edges, len(PRIMITIVES))).requires_grad_()
        self.alphas_reduce = (1e-3 * torch.randn(edges, len(PRIMITIVES))).requires_grad_()

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            weights = nn.functional.softmax(self.alphas_reduce if cell.reduction else self.alphas_normal, dim=-1)
            s0, s1 = s1, cell(s0, s1, weights)
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
    ap.add_argument("--search-c", type=int, default=4)
    ap.add_argument("--search-layers", type=int, default=5)
    ap.add_argument("--parts", default="123", help="which checks to run (default all: 123)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.manual_seed(0)
    data = cifar_dir(args.work)
    x, y = images()
    worst = 0.0

    if "1" in args.parts:
        worst = max(worst, rarts_to_torch(args, data, x))
    if "2" in args.parts:
        worst = max(worst, torch_to_rarts(args, data, x, y))
    failed = worst > 1e-4
    if "1" in args.parts or "2" in args.parts:
        print(f"logits: largest ratio {worst:.3e} (limit 1e-4): {'FAILED' if failed else 'OK'}")
    if "3" in args.parts:
        failed |= search_checks(args, data, x, y)
    print("OK" if not failed else "FAILED")
    sys.exit(1 if failed else 0)


def rarts_to_torch(args, data, x):
    """1. rarts -> PyTorch: the largest logit difference over the largest logit."""
    train_dir = os.path.join(args.work, "rarts-train")
    subprocess.run([args.rarts, "--device", "cpu", "train", "--genotype", "DARTS_V2", "--c", str(args.c),
                    "--layers", str(args.layers), "--batch", "10", "--epochs", "2", "--steps-per-epoch", "2",
                    "--auxiliary", "--data", "cifar10:" + data, "--eval-images", "20", "--quiet", "--force",
                    "--out", train_dir], check=True, stdout=subprocess.DEVNULL)
    exported = os.path.join(args.work, "rarts-export.safetensors")
    subprocess.run([args.rarts, "export", "--model", train_dir, "--out", exported], check=True,
                   stdout=subprocess.DEVNULL)
    from safetensors.torch import load_file
    # With the auxiliary head: its names and shapes too must match.
    net = NetworkCIFAR(args.c, 10, args.layers, DARTS_V2, auxiliary=True)
    state = load_file(exported)
    net.load_state_dict(state, strict=True)
    print(f"rarts' export with the auxiliary head: {len(state)} tensors, "
          f"{sum(1 for k in state if k.startswith('auxiliary_head.'))} of them the head's, loaded with strict=True")
    net.eval()
    with torch.no_grad():
        theirs = net(x).double()
    ours = rarts_logits(args.rarts, train_dir, data, args.work)
    return report("rarts-trained, exported, run by PyTorch (eval mode)", ours, theirs)


def torch_to_rarts(args, data, x, y):
    """2. PyTorch -> rarts: the largest logit difference over the largest logit."""
    net = NetworkCIFAR(args.c, 10, args.layers, DARTS_V2, auxiliary=True)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    for _ in range(3):
        opt.zero_grad()
        logits, aux = net(x)
        (nn.functional.cross_entropy(logits, y) + 0.4 * nn.functional.cross_entropy(aux, y)).backward()
        opt.step()
    net.eval()
    saved = os.path.join(args.work, "torch-trained.safetensors")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, saved)
    with torch.no_grad():
        theirs = net(x).double()
    ours = rarts_logits(args.rarts, saved, data, args.work, genotype="DARTS_V2")
    return report("PyTorch-trained, read by rarts eval --genotype", ours, theirs)


def search_checks(args, data, x, y):
    """3. A search's two networks: loss and gradients in training mode; True when one fails."""
    search_dir = os.path.join(args.work, "rarts-search")
    subprocess.run([args.rarts, "--device", "cpu", "search", "--c", str(args.search_c), "--layers",
                    str(args.search_layers), "--batch", "10", "--epochs", "2", "--steps-per-epoch", "2",
                    "--arch-lr", "0.05", "--data", "cifar10:" + data, "--eval-images", "20", "--quiet", "--force",
                    "--no-report", "--out", search_dir], check=True, stdout=subprocess.DEVNULL)
    return any([search_check(args, data, search_dir, which, x, y) for which in ["w", "y"]])


class KinkReLU(nn.Module):
    """ReLU that remembers its input and the gradient of its output, and can
    take the other one-sided derivative at chosen elements (its output
    moves by at most that input)."""

    def __init__(self):
        super().__init__()
        self.flip = []
        self.input = self.mask = self.out_grad = None

    def forward(self, x):
        self.input = x
        mask = (x > 0).to(x.dtype)
        for i in self.flip:
            mask[i] = 1 - mask[i]
        self.mask = mask
        out = x * mask
        if out.requires_grad:
            out.register_hook(lambda g: setattr(self, "out_grad", g))
        return out


def with_kink_relus(net):
    """Replaces every nn.ReLU of `net` by a KinkReLU; returns them."""
    found = []
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                k = KinkReLU()
                setattr(parent, name, k)
                found.append(k)
    return found


def search_grads(exported, x, y, dtype, flips=(), keep=False):
    """Loss and gradients (α first, then every weight by name) of the
    exported search network in training mode, with `flips` (relu index,
    element) taking the other side of their kink; also the ReLUs and, with
    `keep`, the gradients' tensors and the graph kept for more products."""
    from safetensors.torch import load_file
    state = load_file(exported)
    alphas = {k: state.pop(k) for k in ["alphas_normal", "alphas_reduce"]}
    net = Network(state["stem.0.weight"].shape[0] // 3, state["classifier.weight"].shape[0],
                  1 + max(int(k.split(".")[1]) for k in state if k.startswith("cells.")),
                  in_channels=state["stem.0.weight"].shape[1])
    net.load_state_dict(state, strict=True)
    net = net.to(dtype)
    net.alphas_normal = alphas["alphas_normal"].to(dtype).requires_grad_()
    net.alphas_reduce = alphas["alphas_reduce"].to(dtype).requires_grad_()
    relus = with_kink_relus(net)
    for r, i in flips:
        relus[r].flip.append(i)
    net.train()
    loss = nn.functional.cross_entropy(net(x.to(dtype)), y)
    loss.backward(retain_graph=keep)
    tensors = {"alphas_normal": net.alphas_normal, "alphas_reduce": net.alphas_reduce}
    tensors.update(dict(net.named_parameters()))
    grads = {n: t.grad for n, t in tensors.items()}
    return loss.item(), grads, relus, (tensors if keep else None)


def worst_ratio(ours, theirs):
    """The largest |difference| over the largest |element|, per tensor: (ratio, name) of the worst, and all."""
    ratios = {}
    for name, b in theirs.items():
        a, b = ours[name].double(), b.double()
        scale = max(a.abs().max().item(), b.abs().max().item(), 1e-30)
        ratios[name] = ((a - b).abs().max().item(), scale, (a - b).abs().max().item() / scale)
    return max((r[2], n) for n, r in ratios.items()), ratios


def search_check(args, data, search_dir, which, x, y):
    """One network of the search: loss, α and weight gradients, rarts against PyTorch."""
    from safetensors.torch import load_file
    exported = os.path.join(args.work, f"rarts-search-{which}.safetensors")
    subprocess.run([args.rarts, "export", "--model", search_dir, "--net", which, "--out", exported], check=True,
                   stdout=subprocess.DEVNULL)
    grads_file = os.path.join(args.work, f"rarts-search-{which}-grads.safetensors")
    subprocess.run([args.rarts, "--device", "cpu", "eval", "--model", exported, "--data", "cifar10:" + data,
                    "--batch", "20", "--grads", grads_file], check=True, stdout=subprocess.DEVNULL)
    ours = load_file(grads_file)
    ours_loss = ours.pop("loss").item()
    loss, theirs, _, _ = search_grads(exported, x, y, torch.float32)
    rel = abs(ours_loss - loss) / abs(loss)
    print(f"search network {which}: loss rarts {ours_loss:.8f} PyTorch {loss:.8f}, relative difference "
          f"{rel:.3e} (limit 1e-5)")
    if set(ours) != set(theirs):
        print(f"  gradient names differ: {sorted(set(ours) ^ set(theirs))[:5]}")
        return True
    (worst, worst_name), ratios = worst_ratio(ours, theirs)
    for name in ["alphas_normal", "alphas_reduce"] + SHOWN_GRADS:
        d, scale, r = ratios[name]
        print(f"  d loss / d {name}: largest difference {d:.3e}, largest element {scale:.3e}, ratio {r:.3e}")
    print(f"  every gradient ({len(ratios)} tensors): largest ratio {worst:.3e} ({worst_name})")
    alpha_worst = max(ratios[n][2] for n in ["alphas_normal", "alphas_reduce"])
    explained = None
    if max(alpha_worst, worst) > 1e-3:
        explained = explain_by_kinks(ours, exported, x, y)
        if explained is not None:
            alpha_worst, worst, worst_name = explained
    failed = rel > 1e-5 or alpha_worst > 1e-3 or worst > 1e-3
    print(f"  α gradients: largest ratio {alpha_worst:.3e} (limit 1e-3); weights: {worst:.3e} (limit 1e-3)"
          f"{' with the kinks above taken as rarts takes them' if explained else ''}: {'FAILED' if failed else 'OK'}")
    return failed


def explain_by_kinks(ours, exported, x, y):
    """A ReLU input within float32 rounding of 0 may fall on the other side
    of the kink in rarts than in PyTorch: the loss is the same, but the
    one-sided derivatives differ, and the gradient jumps. Finds the inputs
    within 1e-6 (relative to the largest input of their ReLU) of 0 in
    float64, the change of every gradient when each alone takes the other
    side, and greedily the set of them whose changes together best account
    for the difference rarts - PyTorch (each tensor scaled by its largest
    element). Returns the ratios (α, every gradient, its name) of PyTorch
    in float64 with that set flipped, or None when no set helps."""
    _, exact, relus, tensors = search_grads(exported, x, y, torch.float64, keep=True)
    near = [(r, tuple(i)) for r, k in enumerate(relus)
            for i in (k.input.detach().abs() < 1e-6 * k.input.detach().abs().max()).nonzero().tolist()]
    names = sorted(exact)
    scale = {n: max(ours[n].double().abs().max().item(), 1e-30) for n in names}
    flat = lambda g: torch.cat([(g[n].double() - exact[n]).flatten() / scale[n] for n in names])
    residual = flat(ours)

    def delta(r, i):
        # Flipping element i of ReLU r changes d loss / d input[i] by
        # ±(d loss / d output[i]); what that does to every gradient is one
        # vector-Jacobian product back from that input.
        k = relus[r]
        v = torch.zeros_like(k.input)
        v[i] = (1 - 2 * k.mask[i]) * k.out_grad[i]
        d = torch.autograd.grad(k.input, [tensors[n] for n in names], v, retain_graph=True, allow_unused=True)
        return torch.cat([(torch.zeros_like(tensors[n]) if g is None else g).flatten() / scale[n]
                          for n, g in zip(names, d)])

    deltas = [delta(r, i) for r, i in near]
    chosen, total = [], torch.zeros_like(residual)
    while True:
        norm = (residual - total).norm()
        trials = [((residual - total - d).norm(), i) for i, d in enumerate(deltas) if i not in chosen]
        if not trials:
            break
        best, i = min(trials)
        if best > 0.9 * norm:
            break
        chosen.append(i)
        total += deltas[i]
    print(f"  {len(near)} ReLU inputs lie within 1e-6 (relative) of 0 in float64; the difference is the change "
          f"of {len(chosen)} of them taking the other side of their kink:")
    if not chosen:
        return None
    flips = [near[i] for i in chosen]
    for r, i in flips:
        print(f"    ReLU {r} element {list(i)}: float64 input {relus[r].input[i].item():.3e}")
    _, ratios = worst_ratio(ours, search_grads(exported, x, y, torch.float64, flips)[1])
    worst, worst_name = max((r[2], n) for n, r in ratios.items())
    alpha_worst = max(ratios[n][2] for n in ["alphas_normal", "alphas_reduce"])
    print(f"  PyTorch in float64 with those {len(flips)} flipped: α ratio {alpha_worst:.3e}, every gradient "
          f"{worst:.3e} ({worst_name})")
    return alpha_worst, worst, worst_name


# A few named weights whose gradients are printed (all are checked).
SHOWN_GRADS = ["stem.0.weight", "cells.0._ops.0._ops.4.op.1.weight", "cells.1._ops.0._ops.3.conv_1.weight",
               "cells.2.preprocess0.conv_1.weight", "classifier.weight"]


if __name__ == "__main__":
    main()
