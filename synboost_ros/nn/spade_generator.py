"""SPADE image synthesis generator without the VAE encoder (Park et al., CVPR 2019)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.config import SpadeConfig
from synboost_ros.nn.normalization import SPADE, add_spectral_norm, remove_spectral_norm

# Number of 2x nearest upsamplings between the bottom grid and the output.
UPSAMPLINGS: dict[str, int] = {"normal": 5, "more": 6, "most": 7}


class SPADEResBlock(nn.Module):
    """Residual block: SPADE -> LeakyReLU(0.2) -> conv3x3, twice, plus a shortcut.

    The hidden width is ``min(in_ch, out_ch)``. When ``in_ch != out_ch`` the shortcut is
    learned: SPADE followed by a bias-free 1x1 conv.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        label_channels: int,
        hidden: int,
        param_free_norm: str = "instance",
    ) -> None:
        super().__init__()
        mid_ch = min(in_ch, out_ch)
        self.norm_0 = SPADE(in_ch, label_channels, hidden, param_free_norm)
        self.conv_0 = nn.Conv2d(in_ch, mid_ch, kernel_size=3, padding=1)
        self.norm_1 = SPADE(mid_ch, label_channels, hidden, param_free_norm)
        self.conv_1 = nn.Conv2d(mid_ch, out_ch, kernel_size=3, padding=1)
        self.learned_shortcut = in_ch != out_ch
        if self.learned_shortcut:
            self.norm_s = SPADE(in_ch, label_channels, hidden, param_free_norm)
            self.conv_s = nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Map ``x`` (N, in_ch, h, w) to (N, out_ch, h, w), conditioned on ``label``."""
        shortcut = self.conv_s(self.norm_s(x, label)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, label), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, label), 0.2))
        return shortcut + dx


class SPADEGenerator(nn.Module):
    """Draws an RGB image from a one-hot semantic map of ``num_classes`` channels (the label
    input of ``config.label_input``: nn/label_maps.py).

    The label map is nearest-downsampled to the bottom grid (``output_size / 2**k`` with
    k = 5, 6, 7 for ``num_upsampling_layers`` 'normal', 'more', 'most'), mapped by a 3x3 conv
    to 16*ngf channels and decoded by SPADE ResBlocks with 2x nearest upsampling in between:
    head (16ngf), two middle blocks (16ngf; 'more' and 'most' upsample once more between
    them), then 16->8->4->2->1 ngf ('most' adds a last block to ngf/2 at full size).
    LeakyReLU, a 3x3 conv to RGB and tanh finish. With ``spectral_norm`` the ResBlock
    convs carry spectral norm (the input and image convs stay plain, as in SPADE).
    """

    def __init__(
        self,
        num_classes: int,
        output_size: tuple[int, int],
        config: SpadeConfig,
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if config.num_upsampling_layers not in UPSAMPLINGS:
            raise ValueError(
                f"num_upsampling_layers must be one of {sorted(UPSAMPLINGS)}, "
                f"got {config.num_upsampling_layers!r}"
            )
        if config.ngf < 2:
            raise ValueError(f"ngf must be at least 2, got {config.ngf}")
        factor = 2 ** UPSAMPLINGS[config.num_upsampling_layers]
        height, width = output_size
        if height % factor or width % factor or height < factor or width < factor:
            raise ValueError(
                f"output_size {tuple(output_size)} must be a positive multiple of {factor} "
                f"for num_upsampling_layers={config.num_upsampling_layers!r}"
            )
        if height * width == factor * factor and config.param_free_norm == "instance":
            raise ValueError(
                f"output_size {tuple(output_size)} gives a 1x1 bottom grid, on which instance "
                "norm is undefined; use a larger size or fewer upsampling layers"
            )
        self.num_classes = num_classes
        self.output_size = (height, width)
        self.bottom_size = (height // factor, width // factor)
        self.num_upsampling_layers = config.num_upsampling_layers

        ngf, hidden = config.ngf, config.spade_hidden

        def block(in_ch: int, out_ch: int) -> SPADEResBlock:
            return SPADEResBlock(in_ch, out_ch, num_classes, hidden, config.param_free_norm)

        self.label_conv = nn.Conv2d(num_classes, 16 * ngf, kernel_size=3, padding=1)
        self.head = block(16 * ngf, 16 * ngf)
        self.middle_0 = block(16 * ngf, 16 * ngf)
        self.middle_1 = block(16 * ngf, 16 * ngf)
        widths = [16 * ngf, 8 * ngf, 4 * ngf, 2 * ngf, ngf]
        if self.num_upsampling_layers == "most":
            widths.append(ngf // 2)
        self.up_blocks = nn.ModuleList(block(a, b) for a, b in itertools.pairwise(widths))
        self.to_rgb = nn.Conv2d(widths[-1], 3, kernel_size=3, padding=1)
        if spectral_norm:
            for resblock in self.resblocks():
                add_spectral_norm(resblock)

    def resblocks(self) -> list[SPADEResBlock]:
        """All SPADE ResBlocks, from the bottom grid upwards."""
        return [self.head, self.middle_0, self.middle_1, *self.up_blocks]

    def forward(self, label: torch.Tensor) -> torch.Tensor:
        """Map a one-hot map (N, num_classes, H, W) to an image (N, 3, H, W) in [-1, 1]."""
        expected = (self.num_classes, *self.output_size)
        if label.dim() != 4 or tuple(label.shape[1:]) != expected:
            raise ValueError(
                f"SPADEGenerator expects a one-hot label map (N, {expected[0]}, "
                f"{expected[1]}, {expected[2]}), got {tuple(label.shape)}"
            )
        x = self.label_conv(F.interpolate(label, size=self.bottom_size, mode="nearest"))
        x = _upsample(self.head(x, label))
        x = self.middle_0(x, label)
        if self.num_upsampling_layers != "normal":
            x = _upsample(x)
        x = _upsample(self.middle_1(x, label))
        last = len(self.up_blocks) - 1
        for index, up_block in enumerate(self.up_blocks):
            x = up_block(x, label)
            if index != last:
                x = _upsample(x)
        return torch.tanh(self.to_rgb(F.leaky_relu(x, 0.2)))

    def prepare_for_inference(self) -> SPADEGenerator:
        """Bake spectral norm into plain weights and switch to eval mode."""
        remove_spectral_norm(self)
        return self.eval()


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")
