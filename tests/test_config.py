"""Config resolution and rejection of bad keys and values."""

import pytest

from stopgrad.config import ConfigError, from_dict, list_presets, resolve


def test_presets_resolve():
    names = list_presets()
    assert "fashion-mnist/simsiam" in names and "fashion-mnist/byol" in names
    for name in names:
        cfg = resolve(name)
        assert cfg.method_name and cfg.data.dataset


def test_override_types_and_method_section():
    cfg = resolve("fashion-mnist/simsiam", ["train.epochs=5", "method.pred_lr_mult=10", "optim.clip_grad=1.5"])
    assert cfg.train.epochs == 5.0 and isinstance(cfg.train.epochs, float)
    assert cfg.method.pred_lr_mult == 10.0
    assert cfg.optim.clip_grad == 1.5
    cfg = resolve("fashion-mnist/byol", ["method.ema=[0.9,1.0]"])
    assert cfg.method.ema == (0.9, 1.0)


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"unknown key train\.epoch.*did you mean 'epochs'"):
        resolve("fashion-mnist/simsiam", ["train.epoch=5"])
    with pytest.raises(ConfigError, match=r"method\.pred_lr_mul.*did you mean 'pred_lr_mult'"):
        resolve("fashion-mnist/simsiam", ["method.pred_lr_mul=10"])
    with pytest.raises(ConfigError, match=r"unknown section 'trian'.*did you mean 'train'"):
        resolve(None, ["trian.epochs=1"])


def test_key_of_another_method_is_rejected():
    # BYOL's momentum is not a SimSiam option unless set explicitly through the shared config
    with pytest.raises(ConfigError, match="unknown key method.momentum"):
        resolve("fashion-mnist/byol", ["method.momentum=0.9"])


def test_wrong_types_and_values_are_named():
    with pytest.raises(ConfigError, match=r"train\.epochs='five'.*number"):
        resolve("fashion-mnist/simsiam", ["train.epochs=five"])
    with pytest.raises(ConfigError, match=r"train\.progress=3.*true or false"):
        resolve("fashion-mnist/simsiam", ["train.progress=3"])
    with pytest.raises(ConfigError, match=r"optim\.name='adamw'"):
        resolve("fashion-mnist/simsiam", ["optim.name=adamw"])
    with pytest.raises(ConfigError, match=r"method.ema"):
        resolve("fashion-mnist/byol", ["method.ema=[1.5,1.0]"])
    with pytest.raises(ConfigError, match="method.name='simsaim': unknown method; did you mean 'simsiam'"):
        resolve(None, ["method.name=simsaim"])
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve("fashion-mnist/nope")


def test_round_trip_through_dict():
    cfg = resolve("fashion-mnist/byol", ["train.seed=3"])
    again = from_dict(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
