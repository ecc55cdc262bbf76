"""Tests for stopgrad.augment: oracle checks of each op against its formula, plus API behaviour."""

from __future__ import annotations

import colorsys
import math

import pytest
import torch
import torch.nn.functional as F

from stopgrad.augment import ops as augment  # the per-batch ops, tested one by one
from stopgrad.augment import PRESETS, ViewConfig, Views, blur_kernel_size, build_views

# A config with every random op switched off: crop = whole image, no flip, no colour ops.
IDENTITY = dict(
    crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), hflip=0.0, jitter_p=0.0, grayscale_p=0.0,
    blur_p=0.0, solarize_p=0.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
)


def _images(b: int = 4, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8, generator=g)


def _one(cfg: ViewConfig, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return Views([cfg])(x, torch.Generator().manual_seed(seed))[0]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255


# --- shapes, dtypes, device, determinism ------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_shapes_dtype_device(preset: str) -> None:
    views = build_views(preset, n_views=2)
    cfg = views.configs[0]
    x = _images(3, cfg.channels, 20, 24)
    out = views(x)
    assert len(out) == 2
    for v in out:
        assert v.shape == (3, cfg.channels, cfg.size, cfg.size)
        assert v.dtype == torch.float32 and v.device == x.device
        assert torch.isfinite(v).all()
    ev = views.eval_transform(x)
    assert ev.shape == (3, cfg.channels, cfg.size, cfg.size) and ev.dtype == torch.float32


def test_seeded_generator_is_deterministic() -> None:
    views = build_views("96-byol", size=24)
    x = _images(6, 3, 32, 32)
    a = views(x, torch.Generator().manual_seed(7))
    b = views(x, torch.Generator().manual_seed(7))
    c = views(x, torch.Generator().manual_seed(8))
    for va, vb in zip(a, b):
        assert torch.equal(va, vb)
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], a[1])  # two views of one call differ
    torch.manual_seed(3)
    d = views(x)
    torch.manual_seed(3)
    e = views(x)
    assert torch.equal(d[0], e[0])  # global RNG path is reproducible too


def test_per_sample_crops_differ() -> None:
    cfg = ViewConfig(size=16, **{**IDENTITY, "crop_scale": (0.2, 0.6), "crop_ratio": (3 / 4, 4 / 3)})
    x = _images(1, 3, 32, 32).expand(8, -1, -1, -1)  # eight copies of one image
    out = _one(cfg, x)
    flat = out.flatten(1)
    assert all(not torch.equal(flat[0], flat[i]) for i in range(1, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="exercises the CUDA path of the views; runs only where a GPU is present (CI and this machine have none)")
def test_cuda_matches_cpu_with_cpu_generator() -> None:
    views = build_views("96-byol", size=24)
    x = _images(4, 3, 32, 32)
    cpu = views(x, torch.Generator().manual_seed(1))
    gpu = views(x.cuda(), torch.Generator().manual_seed(1))
    for a, b in zip(cpu, gpu):
        assert b.device.type == "cuda"
        torch.testing.assert_close(a, b.cpu(), atol=1e-4, rtol=1e-4)


# --- crop and flip ----------------------------------------------------------------------------


def test_full_crop_without_ops_reproduces_input() -> None:
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)
    cfg = ViewConfig(size=16, **{**IDENTITY, "mean": mean, "std": std})
    x = _images(4, 3, 16, 16)
    out = _one(cfg, x)
    back = out * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    torch.testing.assert_close(back, _unit(x), atol=1e-5, rtol=0)
    assert torch.equal((back * 255).round().to(torch.uint8), x)


def test_hflip_matches_torch_flip() -> None:
    x = torch.arange(2 * 3 * 8 * 8).view(2, 3, 8, 8)
    x = (x * 37 % 251).to(torch.uint8)  # asymmetric content
    cfg = ViewConfig(size=8, **{**IDENTITY, "hflip": 1.0})
    torch.testing.assert_close(_one(cfg, x), torch.flip(_unit(x), dims=[-1]), atol=1e-5, rtol=0)
    half = ViewConfig(size=8, **{**IDENTITY, "hflip": 0.5})
    out = _one(half, x[:1].expand(32, -1, -1, -1))
    flipped = (out - torch.flip(_unit(x[:1]), dims=[-1])).flatten(1).abs().amax(1) < 1e-5
    assert 4 < int(flipped.sum()) < 28


def test_crop_boxes_follow_torchvision_semantics() -> None:
    g = torch.Generator().manual_seed(0)
    u = torch.rand(4000, augment._N_UNIFORMS, generator=g)
    H, W, scale, ratio = 40, 60, (0.1, 0.9), (3 / 4, 4 / 3)
    top, left, h, w = augment._crop_boxes(u, H, W, scale, ratio).unbind(1)
    assert torch.equal(top, top.round()) and torch.equal(w, w.round())
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= H).all() and (left + w <= W).all()
    area = h * w / (H * W)
    assert area.min() >= 0.08 and area.max() <= 0.95  # scale range up to rounding of the sides
    aspect = w / h
    assert aspect.min() > 0.6 and aspect.max() < 1.6
    assert area.std() > 0.15 and len(torch.unique(top)) > 10  # really random per sample
    # No try can fit -> torchvision's fallback: centre crop of the whole image with ratio clamped.
    top, left, h, w = augment._crop_boxes(u[:3], 40, 60, (1.0, 1.0), (0.5, 1.0)).unbind(1)
    assert h.tolist() == [40.0] * 3 and w.tolist() == [40.0] * 3
    assert top.tolist() == [0.0] * 3 and left.tolist() == [10.0] * 3


def test_crop_resizes_the_box() -> None:
    x = _unit(_images(1, 3, 16, 16))
    no_flip = torch.tensor([False])
    # Whole image upsampled: same as bilinear interpolation (both clamp at the image border).
    whole = augment._resized_crop(x, torch.tensor([[0.0, 0.0, 16.0, 16.0]]), no_flip, 24)
    ref = F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close(whole, ref, atol=1e-5, rtol=0)
    # Top-left 8x8 box upsampled 2x: equals crop-then-resize except the last row/column, where
    # grid_sample reads the real neighbouring pixels instead of clamping at the box edge.
    box = augment._resized_crop(x, torch.tensor([[0.0, 0.0, 8.0, 8.0]]), no_flip, 16)
    ref = F.interpolate(x[..., :8, :8], size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(box[..., :15, :15], ref[..., :15, :15], atol=1e-5, rtol=0)


# --- colour ops -------------------------------------------------------------------------------


def test_grayscale_is_itu_601() -> None:
    cfg = ViewConfig(size=8, **{**IDENTITY, "grayscale_p": 1.0})
    x = _images(3, 3, 8, 8)
    out = _one(cfg, x)
    r, g, b = _unit(x).unbind(1)
    gray = (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1).expand(-1, 3, -1, -1)
    torch.testing.assert_close(out, gray, atol=1e-6, rtol=0)


def test_grayscale_probability_is_per_sample() -> None:
    cfg = ViewConfig(size=8, **{**IDENTITY, "grayscale_p": 0.5})
    out = _one(cfg, _images(64, 3, 8, 8))
    is_gray = (out.amax(1) - out.amin(1)).flatten(1).amax(1) < 1e-6
    assert 10 < int(is_gray.sum()) < 54


def test_solarize_formula() -> None:
    cfg = ViewConfig(size=8, **{**IDENTITY, "solarize_p": 1.0})
    x = _images(2, 3, 8, 8)
    u = _unit(x)
    torch.testing.assert_close(_one(cfg, x), torch.where(u >= 0.5, 1 - u, u), atol=1e-6, rtol=0)


def test_brightness_pinned() -> None:
    cfg = ViewConfig(size=8, **{**IDENTITY, "jitter_p": 1.0, "brightness": (1.3, 1.3), "contrast": 0.0,
                                "saturation": 0.0, "hue": 0.0})
    x = _images(2, 3, 8, 8)
    torch.testing.assert_close(_one(cfg, x), (1.3 * _unit(x)).clamp(0, 1), atol=1e-6, rtol=0)


def test_contrast_and_saturation_pinned() -> None:
    x = _images(2, 3, 8, 8)
    u = _unit(x)
    gray = (0.299 * u[:, 0] + 0.587 * u[:, 1] + 0.114 * u[:, 2]).unsqueeze(1)
    common = {**IDENTITY, "jitter_p": 1.0, "brightness": 0.0, "hue": 0.0}
    cfg = ViewConfig(size=8, **{**common, "contrast": (0.5, 0.5), "saturation": 0.0})
    ref = (0.5 * u + 0.5 * gray.mean(dim=(1, 2, 3), keepdim=True)).clamp(0, 1)
    torch.testing.assert_close(_one(cfg, x), ref, atol=1e-6, rtol=0)
    cfg = ViewConfig(size=8, **{**common, "contrast": 0.0, "saturation": (1.5, 1.5)})
    torch.testing.assert_close(_one(cfg, x), (1.5 * u - 0.5 * gray).clamp(0, 1), atol=1e-6, rtol=0)


def test_brightness_contrast_on_one_channel_skip_colour_ops() -> None:
    cfg = ViewConfig(size=8, **{**IDENTITY, "mean": (0.0,), "std": (1.0,), "jitter_p": 1.0,
                                "brightness": (0.8, 0.8), "contrast": (2.0, 2.0), "saturation": 0.5,
                                "hue": 0.3, "grayscale_p": 1.0})
    x = _images(2, 1, 8, 8)
    b = 0.8 * _unit(x)
    ref = (2.0 * b - b.mean(dim=(1, 2, 3), keepdim=True)).clamp(0, 1)
    torch.testing.assert_close(_one(cfg, x), ref, atol=1e-6, rtol=0)


def test_hue_matches_colorsys() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 4, 5, generator=g)
    shift = torch.tensor([0.1, -0.3, 0.5])
    out = augment._adjust_hue(x, shift)
    for b in range(3):
        for i in range(4):
            for j in range(5):
                h, s, v = colorsys.rgb_to_hsv(*x[b, :, i, j].tolist())
                ref = colorsys.hsv_to_rgb((h + shift[b].item()) % 1.0, s, v)
                torch.testing.assert_close(out[b, :, i, j], torch.tensor(ref), atol=1e-5, rtol=0)
    torch.testing.assert_close(augment._adjust_hue(x, torch.zeros(3)), x, atol=1e-5, rtol=0)


def test_jitter_probability_is_per_sample() -> None:
    cfg = ViewConfig(size=8, **{**IDENTITY, "jitter_p": 0.5, "brightness": (0.5, 0.5), "contrast": 0.0,
                                "saturation": 0.0, "hue": 0.0})
    x = _images(64, 3, 8, 8)
    changed = (_one(cfg, x) - _unit(x)).flatten(1).abs().amax(1) > 1e-6
    assert 10 < int(changed.sum()) < 54


# --- blur -------------------------------------------------------------------------------------


def test_blur_kernel_size() -> None:
    assert [blur_kernel_size(s) for s in (224, 96, 32, 28, 8)] == [23, 9, 3, 3, 1]


def test_blur_preserves_constant_and_smooths_noise() -> None:
    cfg = ViewConfig(size=32, **{**IDENTITY, "blur_p": 1.0, "blur_sigma": (1.0, 2.0)})
    const = torch.full((2, 3, 32, 32), 77, dtype=torch.uint8)
    torch.testing.assert_close(_one(cfg, const), _unit(const), atol=1e-6, rtol=0)
    noise = _images(2, 3, 32, 32)
    out = _one(cfg, noise)
    assert (out.var(dim=(2, 3)) < 0.5 * _unit(noise).var(dim=(2, 3))).all()
    torch.testing.assert_close(out.mean(), _unit(noise).mean(), atol=1e-2, rtol=0)


def test_blur_matches_direct_convolution() -> None:
    x = _unit(_images(2, 3, 12, 12))
    sigma = torch.tensor([0.7, 1.5])
    out = augment._gaussian_blur(x, sigma, 5)
    for b in range(2):
        t = torch.arange(5.0) - 2
        k1 = torch.exp(-(t**2) / (2 * sigma[b] ** 2))
        k2 = torch.outer(k1, k1) / k1.sum() ** 2
        padded = F.pad(x[b : b + 1], (2, 2, 2, 2), mode="reflect")
        ref = F.conv2d(padded, k2.expand(3, 1, 5, 5), groups=3)
        torch.testing.assert_close(out[b : b + 1], ref, atol=1e-6, rtol=0)


# --- eval transform ---------------------------------------------------------------------------


def test_eval_transform_is_deterministic_center_resize() -> None:
    views = Views([ViewConfig(size=8, **IDENTITY)])
    x = _images(2, 3, 8, 8)
    torch.testing.assert_close(views.eval_transform(x), _unit(x), atol=1e-6, rtol=0)
    big = _images(2, 3, 12, 16)
    ev = views.eval_transform(big, crop_fraction=2 / 3)  # centre 8x8 crop, no resize
    torch.testing.assert_close(ev, _unit(big)[:, :, 2:10, 4:12], atol=1e-6, rtol=0)
    assert torch.equal(views.eval_transform(big), views.eval_transform(big))


# --- configs, presets, errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 0), ("size", -3), ("crop_scale", (0.0, 1.0)), ("crop_scale", (0.5, 1.2)),
        ("crop_scale", (0.8, 0.2)), ("crop_ratio", (0.0, 1.0)), ("hflip", 1.5), ("jitter_p", -0.1),
        ("grayscale_p", 2.0), ("blur_p", -1.0), ("solarize_p", 1.01), ("brightness", -0.1),
        ("hue", 0.7), ("blur_sigma", (0.0, 1.0)), ("std", (0.0, 1.0, 1.0)), ("mean", (0.5,)),
        ("erase_p", 1.5), ("erase_scale", (0.1, 1.0)), ("erase_scale", (0.0, 0.3)), ("erase_ratio", (2.0, 1.0)),
    ],
)
def test_config_validation_names_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field) as err:
        ViewConfig(size=32, **{field: value}) if field != "size" else ViewConfig(size=value)  # type: ignore[arg-type]
    assert repr(value) in str(err.value) or str(value) in str(err.value)


def test_config_accepts_lists_from_yaml() -> None:
    lists: dict = {"crop_scale": [0.3, 1.0], "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]}
    cfg = ViewConfig(size=32, **lists)
    assert cfg.crop_scale == (0.3, 1.0) and cfg.mean == (0.5, 0.5, 0.5)


def test_channel_mismatch_and_bad_dtype() -> None:
    views = build_views("32")
    with pytest.raises(ValueError, match="3 channels"):
        views(_images(2, 1, 32, 32))
    with pytest.raises(TypeError, match="int64"):
        views(torch.zeros(2, 3, 32, 32, dtype=torch.int64))


def test_build_views_errors_and_cycling() -> None:
    with pytest.raises(ValueError, match=r"'nope'.*'224'"):
        build_views("nope")
    with pytest.raises(ValueError, match="blurr_p"):
        build_views("32", blurr_p=0.5)
    with pytest.raises(ValueError, match="n_views"):
        build_views("32", n_views=0)
    views = build_views("224", n_views=3, size=64)
    assert [c.blur_p for c in views.configs] == [1.0, 0.1, 1.0]
    assert all(c.size == 64 for c in views.configs)


def test_byol_preset_matches_table_6() -> None:
    for name, blur in (("224", (1.0, 0.1)), ("96-byol", (1.0, 0.1)), ("32-byol", (0.0, 0.0))):
        v1, v2 = PRESETS[name]
        assert (v1.blur_p, v2.blur_p) == blur
        assert (v1.solarize_p, v2.solarize_p) == (0.0, 0.2)
        for v in (v1, v2):
            assert v.crop_scale == (0.08, 1.0) and v.hflip == 0.5
            assert (v.jitter_p, v.brightness, v.contrast, v.saturation, v.hue) == (0.8, 0.4, 0.4, 0.2, 0.1)
            assert v.grayscale_p == 0.2 and v.blur_sigma == (0.1, 2.0)
    assert PRESETS["224"][0].size == 224 and blur_kernel_size(224) == 23


def test_gray_preset_has_no_colour_ops() -> None:
    (cfg,) = PRESETS["28-gray"]
    assert cfg.channels == 1 and cfg.size == 28
    assert cfg.saturation == 0 and cfg.hue == 0 and cfg.grayscale_p == 0 and cfg.blur_p == 0
    assert PRESETS["32"][0].blur_p == 0 and PRESETS["96"][0].blur_p > 0


def test_cpu_chunking_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    views = build_views("96-byol", size=20)
    x = _images(10, 3, 24, 24)
    whole = views(x, torch.Generator().manual_seed(5))
    import stopgrad.augment.views as views_mod

    monkeypatch.setattr(views_mod, "_CPU_CHUNK_BYTES", 3 * 4 * 24 * 24 * 3)  # chunks of 3 images
    assert views._chunk_size(x) == 3
    chunked = views(x, torch.Generator().manual_seed(5))
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_blur_probability_is_per_sample_and_float_input_accepted() -> None:
    cfg = ViewConfig(size=32, **{**IDENTITY, "blur_p": 0.5, "blur_sigma": (1.0, 1.0)})
    x = _unit(_images(32, 3, 32, 32))  # float input in [0, 1]
    out = _one(cfg, x)
    same = (out - x).flatten(1).abs().amax(1) < 1e-5
    assert 4 < int(same.sum()) < 28
    blurred = augment._gaussian_blur(x[~same], torch.ones(int((~same).sum())), blur_kernel_size(32))
    torch.testing.assert_close(out[~same], blurred, atol=1e-5, rtol=0)


# --- random erasing ----------------------------------------------------------------------------


def _erase_reference(x: torch.Tensor, u: torch.Tensor, p: float, scale: tuple, ratio: tuple) -> torch.Tensor:
    """torchvision RandomErasing's per-image procedure, one sample at a time, from the same uniforms."""
    out = x.clone()
    _, _, H, W = x.shape
    for i in range(len(x)):
        if not u[i, augment._FLIP] < p:
            continue
        for t in range(augment._CROP_TRIES):
            area = H * W * (scale[0] + (scale[1] - scale[0]) * u[i, t].item())
            log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
            aspect = math.exp(log_lo + (log_hi - log_lo) * u[i, augment._CROP_TRIES + t].item())
            h, w = round(math.sqrt(area / aspect)), round(math.sqrt(area * aspect))
            if 0 < h < H and 0 < w < W:
                top = min(math.floor(u[i, augment._TOP].item() * (H - h + 1)), H - h)
                left = min(math.floor(u[i, augment._LEFT].item() * (W - w + 1)), W - w)
                out[i, :, top:top + h, left:left + w] = 0.0
                break
    return out


@pytest.mark.parametrize("scale, ratio", [((0.02, 0.33), (0.3, 3.3)), ((0.3, 0.6), (1.5, 3.0))])
def test_random_erase_matches_the_per_image_procedure(scale: tuple, ratio: tuple) -> None:
    """Ratio ranges that exclude 1 included: a sample with no fitting try is left untouched."""
    from stopgrad.augment.erase import random_erase_

    g = torch.Generator().manual_seed(3)
    x = torch.rand(64, 2, 20, 20, generator=g) + 1.0  # never 0 before erasing
    u = torch.rand(64, 32, generator=g)
    out = random_erase_(x.clone(), u, 0.7, scale, ratio)
    expected = _erase_reference(x, u, 0.7, scale, ratio)
    assert torch.equal(out, expected)
    touched = (out == 0).flatten(1).any(1)
    assert 0 < touched.sum() < 64  # some erased, some not (probability, or no box fits)


def _plain(**kw: object) -> ViewConfig:
    return ViewConfig(**{"size": 16, "crop_scale": (0.3, 1.0), "mean": (0.0,), "std": (1.0,), **kw})  # type: ignore[arg-type]


def test_random_erase_leaves_every_other_draw_as_it_was() -> None:
    x = _images(64, 1, 16, 16)
    without = Views([_plain(), _plain()])(x, torch.Generator().manual_seed(1))
    with_erase = Views([_plain(erase_p=1.0), _plain()])(x, torch.Generator().manual_seed(1))
    assert torch.equal(without[1], with_erase[1])  # view 1's crops and jitter did not move
    erased = with_erase[0] != without[0]
    assert erased.flatten(1).any(1).float().mean() > 0.9  # view 0: same crop, a rectangle erased
    assert torch.all(with_erase[0][erased] == 0)


def test_random_erase_probability_is_per_sample() -> None:
    x = torch.full((2000, 1, 16, 16), 200, dtype=torch.uint8)
    (b,) = Views([_plain(erase_p=0.5)])(x, torch.Generator().manual_seed(0))
    hit = (b == 0).flatten(1).any(1).float().mean().item()
    assert 0.44 < hit < 0.56


def test_random_erase_under_process_rows_and_cpu_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each process's rows of the global batch get exactly the one-process views, erasing included,
    and chunking the batch on the CPU changes nothing."""
    views = Views([_plain(erase_p=0.5), _plain(erase_p=0.5), _plain(size=8)])
    x = _images(12, 1, 16, 16)
    whole = views(x, torch.Generator().manual_seed(7))
    halves = [views(x[r], torch.Generator().manual_seed(7), rows=r, total=12) for r in (slice(0, 6), slice(6, 12))]
    for i, w in enumerate(whole):
        assert torch.equal(torch.cat([halves[0][i], halves[1][i]]), w)
    import stopgrad.augment.views as views_mod

    monkeypatch.setattr(views_mod, "_CPU_CHUNK_BYTES", 4 * 16 * 16 * 5)  # chunks of 5 images
    assert views._chunk_size(x) == 5
    for a, b in zip(whole, views(x, torch.Generator().manual_seed(7))):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
