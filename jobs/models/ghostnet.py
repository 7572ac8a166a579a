"""GhostNet (Han et al., CVPR 2020) in plain PyTorch, laid out so that its state_dict matches the
published ``state_dict_73.98.pth`` checkpoint key for key (see tests/facts/ghostnet_state_dict.json).

Numerics follow the reference implementation: ReLU everywhere, a hard-sigmoid squeeze-excite gate
``relu6(x + 3) / 6``, BatchNorm with PyTorch defaults, global pooling *before* the 1x1 head conv.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# One list per stage of ``blocks``; each row is one bottleneck:
# (depthwise kernel, expansion channels, output channels, squeeze-excite ratio, stride).
STAGES_1_0X: tuple[tuple[tuple[int, int, int, float, int], ...], ...] = (
    ((3, 16, 16, 0.0, 1),),
    ((3, 48, 24, 0.0, 2),),
    ((3, 72, 24, 0.0, 1),),
    ((5, 72, 40, 0.25, 2),),
    ((5, 120, 40, 0.25, 1),),
    ((3, 240, 80, 0.0, 2),),
    ((3, 200, 80, 0.0, 1), (3, 184, 80, 0.0, 1), (3, 184, 80, 0.0, 1),
     (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)),
    ((5, 672, 160, 0.25, 2),),
    ((5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1)),
)
STEM_CHANNELS = 16
HEAD_CHANNELS = 1280


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping more than 10%."""
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x + 3.0) / 6.0


def _conv_bn(inp: int, out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ ReLU): the ``.0`` / ``.1`` layout of the reference checkpoint."""
    layers: list[nn.Module] = [
        nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: pool, reduce, ReLU, expand, hard-sigmoid gate."""

    def __init__(self, channels: int, ratio: float = 0.25, divisor: int = 4):
        super().__init__()
        reduced = make_divisible(channels * ratio, divisor)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.adaptive_avg_pool2d(x, 1)
        gate = self.conv_expand(F.relu(self.conv_reduce(gate)))
        return x * hard_sigmoid(gate)


class GhostModule(nn.Module):
    """Half the output channels from a 1x1 conv, the other half from a cheap depthwise 3x3 on them."""

    def __init__(self, inp: int, oup: int, relu: bool = True, ratio: int = 2, dw_size: int = 3):
        super().__init__()
        self.oup = oup
        primary = math.ceil(oup / ratio)
        cheap = primary * (ratio - 1)
        self.primary_conv = _conv_bn(inp, primary, 1, relu=relu)
        self.cheap_operation = _conv_bn(primary, cheap, dw_size, groups=primary, relu=relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)
        # Selects every channel when oup is even (always, for GhostNet 1.0x); the ONNX exporter
        # turns it into a no-op Slice that jobs.models.onnx_graph removes.
        return out[:, : self.oup]


class GhostBottleneck(nn.Module):
    """ghost (ReLU) -> [strided depthwise + BN] -> [squeeze-excite] -> ghost (linear), plus shortcut."""

    def __init__(self, inp: int, mid: int, out: int, kernel: int = 3, stride: int = 1, se_ratio: float = 0.0):
        super().__init__()
        self.stride = stride
        self.ghost1 = GhostModule(inp, mid, relu=True)
        if stride > 1:
            self.conv_dw = nn.Conv2d(mid, mid, kernel, stride, (kernel - 1) // 2, groups=mid, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid)
        self.se = SqueezeExcite(mid, se_ratio) if se_ratio > 0 else None
        self.ghost2 = GhostModule(mid, out, relu=False)
        if inp == out and stride == 1:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inp, inp, kernel, stride, (kernel - 1) // 2, groups=inp, bias=False),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, out, 1, bias=False),
                nn.BatchNorm2d(out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ghost1(x)
        if self.stride > 1:
            y = self.bn_dw(self.conv_dw(y))
        if self.se is not None:
            y = self.se(y)
        y = self.ghost2(y)
        return y + self.shortcut(x)


class ConvBnAct(nn.Module):
    """The last stage of ``blocks``: 1x1 conv + BN + ReLU, with the checkpoint's ``conv``/``bn1`` names."""

    def __init__(self, inp: int, out: int):
        super().__init__()
        self.conv = nn.Conv2d(inp, out, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv(x)))


class GhostNet(nn.Module):
    def __init__(self, num_classes: int = 1000, width: float = 1.0, dropout: float = 0.2,
                 stages=STAGES_1_0X):
        super().__init__()
        self.dropout = dropout
        channels = make_divisible(STEM_CHANNELS * width, 4)
        self.conv_stem = nn.Conv2d(3, channels, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)

        blocks: list[nn.Module] = []
        expansion = channels
        for stage in stages:
            layers = []
            for kernel, expansion_chs, out_chs, se_ratio, stride in stage:
                out = make_divisible(out_chs * width, 4)
                expansion = make_divisible(expansion_chs * width, 4)
                layers.append(GhostBottleneck(channels, expansion, out, kernel, stride, se_ratio))
                channels = out
            blocks.append(nn.Sequential(*layers))
        blocks.append(nn.Sequential(ConvBnAct(channels, expansion)))
        self.blocks = nn.Sequential(*blocks)

        self.conv_head = nn.Conv2d(expansion, HEAD_CHANNELS, 1, bias=True)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv_stem(x)))
        x = self.blocks(x)
        x = F.adaptive_avg_pool2d(x, 1)
        x = F.relu(self.conv_head(x))
        x = torch.flatten(x, 1)
        if self.dropout > 0.0:
            x = F.dropout(x, p=self.dropout, training=self.training)
        return self.classifier(x)


def ghostnet_1_0x(num_classes: int = 1000) -> GhostNet:
    """The registry's factory: GhostNet 1.0x as published (width 1.0, dropout 0.2)."""
    return GhostNet(num_classes=num_classes, width=1.0, dropout=0.2)


def deterministic_state_dict(seed: int, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Reproducible, well-scaled weights for demos and tests (not trained: predictions are arbitrary).

    Conv/linear weights are He-normal, biases small, BatchNorm scales in [0.6, 1.0] with running
    means near 0 and running variances in [0.5, 2.0], so activations stay in a sane range through
    the whole network. Keys and shapes come from ``model`` (default: GhostNet 1.0x).
    """
    template = (model if model is not None else ghostnet_1_0x()).state_dict()
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, ref in template.items():
        shape = tuple(ref.shape)
        if key.endswith("num_batches_tracked"):
            value = torch.zeros((), dtype=torch.int64)
        elif key.endswith("running_var"):
            value = torch.empty(shape).uniform_(0.5, 2.0, generator=gen)
        elif key.endswith("running_mean"):
            value = torch.randn(shape, generator=gen) * 0.1
        elif len(shape) == 1 and key.endswith(".weight"):  # BatchNorm scale
            value = torch.empty(shape).uniform_(0.6, 1.0, generator=gen)
        elif len(shape) == 1:  # biases
            value = torch.randn(shape, generator=gen) * 0.1
        else:
            fan_in = math.prod(shape[1:])
            value = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
        out[key] = value.to(ref.dtype)
    return out
