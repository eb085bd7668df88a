"""Training configs as command-line flags: one helper for every training script, one spelling, the
older spelling still accepted, and a JSON-safe resolved config for the model cards."""
import argparse
import json
from pathlib import Path

import pytest

from talkingface.config.flags import add_config_flags, config_dict, config_from_args
from talkingface.config.training import (DINetTrainingOptions, DistillConfig, GANTrainConfig, LSTMTrainConfig,
                                         MiniTrainConfig)


def parse(cls, argv, **kw):
    ap = argparse.ArgumentParser()
    add_config_flags(ap, cls, **kw)
    return config_from_args(cls, ap.parse_args(argv))


def test_defaults_are_the_recipes():
    assert parse(MiniTrainConfig, []) == MiniTrainConfig()
    assert MiniTrainConfig().D_num_blocks == 3 and DINetTrainingOptions(train_data=["x"]).D_num_blocks == 4
    assert MiniTrainConfig().lamb_pixel == 10.0 and DINetTrainingOptions().lamb_pixel == 0.0
    # both GAN recipes share one set of names
    shared = {f for f in GANTrainConfig.__dataclass_fields__}
    assert shared <= set(MiniTrainConfig.__dataclass_fields__) and shared <= set(DINetTrainingOptions.__dataclass_fields__)


def test_types_lists_bools_and_the_old_spelling():
    cfg = parse(MiniTrainConfig, ["--d_num_blocks", "2", "--D_max_features", "128", "--val", "W011_", "--val", "d20",
                                  "--max_steps", "7", "--lr_g", "2e-4"])
    assert (cfg.D_num_blocks, cfg.D_max_features, cfg.val, cfg.max_steps, cfg.lr_g) == (2, 128, ["W011_", "d20"], 7, 2e-4)
    lstm = parse(LSTMTrainConfig, ["--cosine", "--workers", "2"])
    assert lstm.cosine is True and lstm.num_workers == 2 and lstm.betas == (0.9, 0.99)
    dinet = parse(DINetTrainingOptions, ["--train_data", "a", "b"])
    assert dinet.train_data == ["a", "b"] and dinet.device == "cpu"


def test_required_flags_and_bad_values_exit_2():
    with pytest.raises(SystemExit) as e:
        parse(DistillConfig, [])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        parse(MiniTrainConfig, ["--batch_size", "six"])
    d = parse(DistillConfig, ["--teacher", "t.pkl", "--speech", "s1", "--speech", "s2", "--out", "o"])
    assert d.teacher == Path("t.pkl") and d.speech == [Path("s1"), Path("s2")]
    student = d.student_config("cpu")
    assert (student.lookahead, student.seq_len, student.val_every) == (0, 40, d.save_every)


def test_card_config_is_json():
    card = config_dict(parse(DistillConfig, ["--teacher", "t.pkl", "--speech", "s", "--out", "o"]))
    assert json.loads(json.dumps(card))["teacher"] == "t.pkl"
    assert config_dict(LSTMTrainConfig())["betas"] == [0.9, 0.99]
