"""Reference values for tests/test_grad_pixel.c (tests/fixtures/pixel_ops.txt).

The per-pixel ops of the image decoder: nearest-neighbour upsampling by an
integer factor (F.interpolate, value and the gradient of a weighted sum),
and the 256-way cross-entropy per pixel of an (N, 256, H, W) tensor
(F.cross_entropy over the channel axis, mean over every pixel, loss and
d loss / d logits), with the channel-axis log-softmax it rests on.  Inputs
are float32; references are computed in float64 from those exact values.

Run: /usr/bin/python3 tests/ref/make_pixel_ref.py
"""
import os

import torch
import torch.nn.functional as F

from fixture import write_fixture

torch.manual_seed(0)
refs = {}

# upsampling: (2, 3, 3, 4) by 2 and (1, 2, 2, 2) by 3
for tag, shape, f in (("up2", (2, 3, 3, 4), 2), ("up3", (1, 2, 2, 2), 3)):
    x = (torch.rand(*shape) * 4 - 2).float()
    out_shape = (shape[0], shape[1], shape[2] * f, shape[3] * f)
    w = (torch.rand(*out_shape) * 2 - 1).float()
    xr = x.double().requires_grad_(True)
    y = F.interpolate(xr, scale_factor=f, mode="nearest")
    (y * w.double()).sum().backward()
    refs[tag + "_x"] = x
    refs[tag + "_w"] = w
    refs[tag + "_y"] = y.detach()
    refs[tag + "_grad"] = xr.grad

# 256-way cross-entropy per pixel
N, C, H, W = 2, 256, 3, 4
logits = (torch.randn(N, C, H, W) * 3).float()
logits[0, :, 0, 0] = 0.0                     # a uniform pixel: loss log 256
logits[1, 17, 2, 3] = 60.0                   # one dominant logit
target = torch.randint(0, C, (N, H, W))
target[1, 2, 3] = 17
xr = logits.double().requires_grad_(True)
loss = F.cross_entropy(xr, target)
loss.backward()
refs["ce_logits"] = logits
refs["ce_target"] = target.float()
refs["ce_log_softmax"] = F.log_softmax(logits.double(), dim=1)
refs["ce_loss"] = loss.detach().reshape(1)
refs["ce_grad"] = xr.grad

here = os.path.dirname(os.path.abspath(__file__))
write_fixture(os.path.join(here, "..", "fixtures", "pixel_ops.txt"), refs,
              comment="Made by tests/ref/make_pixel_ref.py with PyTorch %s (float64 references)." % torch.__version__)
