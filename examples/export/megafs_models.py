"""PyTorch definitions of the three MegaFS networks, written from the project's
architecture notes (shared/megafs-architecture.md), laid out so that their
state_dict keys and shapes match the released checkpoints:

* ``Encoder``   -- HieRFE, the ``"e"`` state_dict of ``{ftm,injection,lcr}_final.pth``
* ``Swapper``   -- the face transfer module, ``"s"`` of the same files, in three
                   variants: ``ftm``, ``injection``, ``lcr``
* ``Generator`` -- StyleGAN2 synthesis network in the rosinality layout, the
                   ``"g_ema"`` state_dict of ``stylegan2-ffhq-config-f.pth``
                   (loaded non-strictly: ``style.*`` and ``input.input`` are not
                   used), with the learned constant replaced by ``struct``.

Everything is plain torch (no CUDA extension). The configs are parametrised so
the same code builds the full-size networks and the narrow "tiny" ones used for
test fixtures; the key structure is the same for both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

N_LATENTS = 18      # latents produced by the encoder / consumed by the swapper
SWAP_INDICE = 4     # the first 4 latents are always taken from the target ("att")


# --------------------------------------------------------------------------- #
# Configurations
# --------------------------------------------------------------------------- #

@dataclass
class EncoderConfig:
    base_width: int = 64        # ResNet stem width (64 in ResNet-50)
    latent_dim: int = 512       # FPN / styleMapping width == latent size
    image_size: int = 256

    @property
    def stage_out(self):  # output channels of layer1..layer5
        b = self.base_width
        return [4 * b, 8 * b, 16 * b, 32 * b, 32 * b]


@dataclass
class SwapperConfig:
    kind: str = "ftm"           # ftm | injection | lcr
    latent_dim: int = 512
    hidden: int = 256           # ftm MLP hidden width (Linear(2D, D/2) -> Linear(D/2, D))


@dataclass
class GeneratorConfig:
    size: int = 1024
    style_dim: int = 512
    channels: dict = field(default_factory=lambda: {
        4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32})
    n_latent_input: int = N_LATENTS  # latents accepted at the input (first n_latent used)

    @property
    def log_size(self):
        return int(math.log2(self.size))

    @property
    def n_latent(self):         # latents actually used: 18 at 1024, 10 at 64
        return self.log_size * 2 - 2

    @property
    def num_layers(self):       # noise buffers: 17 at 1024
        return (self.log_size - 2) * 2 + 1


def full_configs():
    return EncoderConfig(), GeneratorConfig()


# Tiny configuration used for fixtures: same key structure and operator
# patterns, narrower channels, generator at 64 px.
TINY_LATENT = 16
TINY_BASE_WIDTH = 4


def tiny_encoder_config():
    return EncoderConfig(base_width=TINY_BASE_WIDTH, latent_dim=TINY_LATENT)


def tiny_swapper_config(kind):
    return SwapperConfig(kind=kind, latent_dim=TINY_LATENT, hidden=TINY_LATENT // 2)


def tiny_generator_config(size=64):
    ch = {4: TINY_LATENT, 8: TINY_LATENT, 16: TINY_LATENT, 32: TINY_LATENT, 64: 8, 128: 8,
          256: 4, 512: 4, 1024: 4}
    return GeneratorConfig(size=size, style_dim=TINY_LATENT, channels=ch)


# --------------------------------------------------------------------------- #
# 1. HieRFE encoder
# --------------------------------------------------------------------------- #

class Bottleneck(nn.Module):
    """torchvision ResNet v1.5 Bottleneck (stride on the 3x3 conv)."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=False)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNetBackbone(nn.Module):
    """ResNet-50 layout [3,4,6,3] plus layer5 (2 blocks, planes 8*base, stride 2).
    No avgpool, no fc."""

    def __init__(self, base=64):
        super().__init__()
        self.inplanes = base
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=False)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(base, 3, 1)
        self.layer2 = self._make_layer(base * 2, 4, 2)
        self.layer3 = self._make_layer(base * 4, 6, 2)
        self.layer4 = self._make_layer(base * 8, 3, 2)
        self.layer5 = self._make_layer(base * 8, 2, 2)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        c1 = self.layer2(x)
        c2 = self.layer3(c1)
        c3 = self.layer4(c2)
        c4 = self.layer5(c3)
        return c1, c2, c3, c4


def _conv_bn(cin, cout, relu):
    mods = [nn.Conv2d(cin, cout, 3, padding=1, bias=True), nn.BatchNorm2d(cout)]
    if relu:
        mods.append(nn.ReLU(inplace=False))
    return nn.Sequential(*mods)


def up2(x):
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


class FPN(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        c = cfg.stage_out
        d = cfg.latent_dim
        self.backbone = ResNetBackbone(cfg.base_width)
        self.output1 = _conv_bn(c[1], d, True)    # on c1 = layer2 out
        self.output2 = _conv_bn(c[2], d, True)    # on c2 = layer3 out
        self.output3 = _conv_bn(c[3], d, True)    # on c3 = layer4 out
        self.output4 = _conv_bn(c[4], d, False)   # on c4 = layer5 out, no activation

    def forward(self, x):
        c1, c2, c3, c4 = self.backbone(x)
        p4 = self.output4(c4)
        p3 = self.output3(c3)
        p2 = self.output2(c2) + up2(p3)
        p1 = self.output1(c1) + up2(p2)
        return p1, p2, p3, p4


class StyleMapping(nn.Module):
    """log2(s) x [conv 3x3/2 pad 1 (bias), BN, LeakyReLU(0.01)], s x s -> 1x1."""

    def __init__(self, dim, spatial):
        super().__init__()
        mods = []
        for _ in range(int(math.log2(spatial))):
            mods += [nn.Conv2d(dim, dim, 3, stride=2, padding=1, bias=True),
                     nn.BatchNorm2d(dim), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*mods)

    def forward(self, x):
        return self.convs(x).flatten(1).unsqueeze(1)   # (N, 1, dim)


class Encoder(nn.Module):
    """HieRFE: image (N,3,256,256) in [-1,1] -> latents (N,18,D), struct (N,D,4,4)."""

    def __init__(self, cfg: EncoderConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or EncoderConfig()
        d = cfg.latent_dim
        s = cfg.image_size
        self.fpn = FPN(cfg)
        self.mapping1 = nn.ModuleList([StyleMapping(d, s // 32) for _ in range(4)])   # on p3
        self.mapping2 = nn.ModuleList([StyleMapping(d, s // 16) for _ in range(6)])   # on p2
        self.mapping3 = nn.ModuleList([StyleMapping(d, s // 8) for _ in range(8)])    # on p1

    def forward(self, image):
        p1, p2, p3, p4 = self.fpn(image)
        ws = [m(p3) for m in self.mapping1] + [m(p2) for m in self.mapping2] \
            + [m(p1) for m in self.mapping3]
        latents = torch.tanh(torch.cat(ws, dim=1))
        return latents, p4


# --------------------------------------------------------------------------- #
# 2. Swapper (face transfer module)
# --------------------------------------------------------------------------- #

# The released code builds its activation as nn.LeakyReLU(True): the first
# positional argument is the negative slope, so the slope is 1.0 (identity).
QUIRK_SLOPE = 1.0


def _mlp(din, hidden, dout, last):
    return nn.Sequential(nn.Linear(din, hidden), nn.ReLU(inplace=False),
                         nn.Linear(hidden, dout), last)


class TransferCell(nn.Module):
    def __init__(self, dim, hidden, rounds=3):
        super().__init__()
        self.rounds = rounds
        self.idd_selectors = nn.ModuleList([_mlp(2 * dim, hidden, dim, nn.Sigmoid()) for _ in range(rounds)])
        self.idd_shifters = nn.ModuleList([_mlp(2 * dim, hidden, dim, nn.Tanh()) for _ in range(rounds)])
        self.att_selectors = nn.ModuleList([_mlp(2 * dim, hidden, dim, nn.Sigmoid()) for _ in range(rounds)])
        self.att_shifters = nn.ModuleList([_mlp(2 * dim, hidden, dim, nn.Tanh()) for _ in range(rounds)])
        self.act = nn.LeakyReLU(QUIRK_SLOPE)

    def forward(self, a, b):
        for k in range(self.rounds):
            fuse = torch.cat([a, b], dim=1)
            a_new = self.act(a * self.idd_selectors[k](fuse) + self.idd_shifters[k](fuse))
            b = self.act(b * self.att_selectors[k](fuse) + self.att_shifters[k](fuse))
            a = a_new
        return a, b


class InjectionBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        # NOTE: the architecture notes do not name this BatchNorm1d(affine=False);
        # "norm" is our choice (its buffers are running_mean / running_var /
        # num_batches_tracked).
        self.norm = nn.BatchNorm1d(dim, affine=False)
        self.idd_linears = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=False))
        self.idd_selectors = nn.Linear(dim, dim)
        self.idd_shifters = nn.Linear(dim, dim)

    def forward(self, a, b):
        n = self.norm(b)
        h = self.idd_linears(a)
        gamma = self.idd_selectors(h)
        beta = self.idd_shifters(h)
        return n * (1 + gamma) + beta


class InjectionPath(nn.ModuleList):
    """keys .0 (InjectionBlock), .1 (LeakyReLU slope 1.0), .2 (Linear)."""

    def __init__(self, dim):
        super().__init__([InjectionBlock(dim), nn.LeakyReLU(QUIRK_SLOPE), nn.Linear(dim, dim)])

    def forward(self, a, b):
        return self[2](self[1](self[0](a, b)))


class InjectionCell(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.att_path1 = InjectionPath(dim)
        self.att_path2 = InjectionPath(dim)
        self.act = nn.LeakyReLU(QUIRK_SLOPE)

    def forward(self, a, b):
        b0 = b
        b = self.att_path1(a, b)
        b = self.att_path2(a, b)
        return self.act(b + b0)


class Swapper(nn.Module):
    """idd (1,18,D) source latents, att (1,18,D) target latents -> (1,18,D)."""

    def __init__(self, cfg: SwapperConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or SwapperConfig()
        self.kind = cfg.kind
        n = N_LATENTS - SWAP_INDICE
        d = cfg.latent_dim
        if cfg.kind == "ftm":
            self.blocks = nn.ModuleList([TransferCell(d, cfg.hidden) for _ in range(n)])
            self.weight = nn.Parameter(torch.zeros(1, n, d))
        elif cfg.kind == "injection":
            self.blocks = nn.ModuleList([InjectionCell(d) for _ in range(n)])
        elif cfg.kind == "lcr":
            pass
        else:
            raise ValueError(f"unknown swapper kind {cfg.kind!r}")

    def forward(self, idd, att):
        att_low = att[:, :SWAP_INDICE]
        idd_high = idd[:, SWAP_INDICE:]
        att_high = att[:, SWAP_INDICE:]
        if self.kind == "lcr":
            return torch.cat([att_low, idd_high], dim=1)
        n = N_LATENTS - SWAP_INDICE
        if self.kind == "ftm":
            a_out, b_out = [], []
            for i in range(n):
                a, b = self.blocks[i](idd_high[:, i], att_high[:, i])
                a_out.append(a.unsqueeze(1))
                b_out.append(b.unsqueeze(1))
            a_all = torch.cat(a_out, dim=1)
            b_all = torch.cat(b_out, dim=1)
            scale = torch.sigmoid(self.weight)
            high = scale * a_all + (1 - scale) * b_all
        else:
            outs = [self.blocks[i](idd_high[:, i], att_high[:, i]).unsqueeze(1) for i in range(n)]
            high = torch.cat(outs, dim=1)
        return torch.cat([att_low, high], dim=1)


# --------------------------------------------------------------------------- #
# 3. StyleGAN2 generator (rosinality layout)
# --------------------------------------------------------------------------- #

def make_kernel(k):
    k = torch.tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """Plain-torch upfirdn2d, same pad on both axes. Shapes are Python ints
    (read from a tensor whose shape is static during export)."""
    n, c, h, w = (int(v) for v in x.shape)
    kh, kw = (int(v) for v in kernel.shape)
    p0, p1 = pad
    out = x.reshape(n * c, 1, h, w)
    if up > 1:
        out = out.reshape(n * c, 1, h, 1, w, 1)
        out = F.pad(out, [0, up - 1, 0, 0, 0, up - 1])
        h, w = h * up, w * up
        out = out.reshape(n * c, 1, h, w)
    out = F.pad(out, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        hh, ww = out.shape[2], out.shape[3]
        out = out[:, :, max(-p0, 0):hh - max(-p1, 0), max(-p0, 0):ww - max(-p1, 0)]
    wgt = torch.flip(kernel, [0, 1]).reshape(1, 1, kh, kw)   # true convolution
    out = F.conv2d(out, wgt)
    if down > 1:
        out = out[:, :, ::down, ::down]
    oh, ow = int(out.shape[2]), int(out.shape[3])
    return out.reshape(n, c, oh, ow)


class Blur(nn.Module):
    def __init__(self, kernel, pad, upsample_factor=1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor ** 2)
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    def __init__(self, kernel, factor=2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * (factor ** 2))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class EqualLinear(nn.Module):
    def __init__(self, in_dim, out_dim, bias_init=0.0, lr_mul=1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class ModulatedConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True,
                 upsample=False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1),
                             upsample_factor=factor)

    def modulated_weight(self, style):
        """(B, out, in, k, k) per-sample weight, released (fused) form."""
        b = int(style.shape[0])
        s = self.modulation(style).reshape(b, 1, self.in_channel, 1, 1)
        w = self.scale * self.weight * s
        if self.demodulate:
            d = torch.rsqrt(w.pow(2).sum([2, 3, 4]) + 1e-8)
            w = w * d.reshape(b, self.out_channel, 1, 1, 1)
        return w

    def forward(self, x, style):
        batch = int(x.shape[0])
        k, cin, cout = self.kernel_size, self.in_channel, self.out_channel
        w = self.modulated_weight(style)
        if batch == 1:
            # Plain Conv / ConvTranspose with the computed weight (same math as
            # the grouped form at batch 1, exportable with fixed shapes).
            w = w.reshape(cout, cin, k, k)
            if self.upsample:
                out = F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=0)
                return self.blur(out)
            return F.conv2d(x, w, padding=self.padding)
        # Released grouped form for batch > 1 (eager use).
        h, wd = int(x.shape[2]), int(x.shape[3])
        if self.upsample:
            w = w.transpose(1, 2).reshape(batch * cin, cout, k, k)
            out = F.conv_transpose2d(x.reshape(1, batch * cin, h, wd), w, stride=2, padding=0,
                                     groups=batch)
            out = out.reshape(batch, cout, int(out.shape[2]), int(out.shape[3]))
            return self.blur(out)
        w = w.reshape(batch * cout, cin, k, k)
        out = F.conv2d(x.reshape(1, batch * cin, h, wd), w, padding=self.padding, groups=batch)
        return out.reshape(batch, cout, h, wd)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise):
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel, negative_slope=0.2, scale=2 ** 0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x):
        c = int(self.bias.shape[0])
        return F.leaky_relu(x + self.bias.reshape(1, c, 1, 1), self.negative_slope) * self.scale


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False,
                 blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim,
                                    upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, style, noise):
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    def __init__(self, in_channel, style_dim, upsample=True, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class Generator(nn.Module):
    """struct (1,C4,4,4) + latents (1,18,D) used as W+ -> image (1,3,size,size)."""

    def __init__(self, cfg: GeneratorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or GeneratorConfig()
        ch = cfg.channels
        sd = cfg.style_dim
        self.conv1 = StyledConv(ch[4], ch[4], 3, sd)
        self.to_rgb1 = ToRGB(ch[4], sd, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(cfg.num_layers):
            res = (i + 5) // 2
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, 2 ** res, 2 ** res))
        in_ch = ch[4]
        for i in range(3, cfg.log_size + 1):
            out_ch = ch[2 ** i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, sd, upsample=True))
            self.convs.append(StyledConv(out_ch, out_ch, 3, sd))
            self.to_rgbs.append(ToRGB(out_ch, sd))
            in_ch = out_ch

    def forward(self, struct, latents):
        noise = [getattr(self.noises, f"noise_{i}") for i in range(self.cfg.num_layers)]
        out = self.conv1(struct, latents[:, 0], noise[0])
        skip = self.to_rgb1(out, latents[:, 1])
        i = 1
        for j in range(len(self.to_rgbs)):
            out = self.convs[2 * j](out, latents[:, i], noise[2 * j + 1])
            out = self.convs[2 * j + 1](out, latents[:, i + 1], noise[2 * j + 2])
            skip = self.to_rgbs[j](out, latents[:, i + 2], skip)
            i += 2
        return skip


# --------------------------------------------------------------------------- #
# Checkpoint loading
# --------------------------------------------------------------------------- #

GENERATOR_IGNORED_PREFIXES = ("style.", "input.")


def load_generator_state(gen: Generator, g_ema: dict):
    """Non-strict load of a rosinality g_ema state_dict: the mapping network
    (style.*) and the constant input (input.input) are ignored; every key of
    our generator must be present."""
    sd = {k: v for k, v in g_ema.items() if not k.startswith(GENERATOR_IGNORED_PREFIXES)}
    res = gen.load_state_dict(sd, strict=False)
    if res.missing_keys:
        raise KeyError(f"generator checkpoint lacks keys: {res.missing_keys[:10]} ...")
    return res.unexpected_keys


def load_checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def config_dict(cfg):
    d = asdict(cfg)
    if "channels" in d:
        d["channels"] = {str(k): v for k, v in d["channels"].items()}
    return d
