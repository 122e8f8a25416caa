"""vireid.engine.config: presets, inheritance, overrides, unknown keys and types, round trip."""
from __future__ import annotations

from pathlib import Path

import pytest

import torch

from vireid.engine.config import ConfigError, SpeedConfig, TrainConfig, config_from_dict, load_config, save_config
from vireid.engine.speed import ResolvedSpeed, resolve_speed
from vireid.engine.optim import lr_factor
from vireid.losses import LossConfig
from vireid.model import ModelConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PRESETS = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def test_all_expected_presets_exist():
    assert {"sysu.yaml", "regdb.yaml", "sysu_release.yaml", "regdb_release.yaml", "ablation_baseline.yaml",
            "ablation_peb.yaml", "ablation_peb_pose.yaml", "ablation_full.yaml", "demo.yaml"} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_builds_its_model_config(name):
    cfg = load_config(CONFIGS / name)
    model = cfg.model_config(num_classes=395)
    assert isinstance(model, ModelConfig) and model.input_size == tuple(cfg.data.input_size)
    assert isinstance(cfg.loss_config(), LossConfig)
    cfg.data.transform_config()
    cfg.data.sampler_config()


def test_paper_presets_follow_section_iv_a():
    for name in ("sysu.yaml", "regdb.yaml"):
        cfg = load_config(CONFIGS / name)
        assert (cfg.data.num_ids, cfg.data.num_per_modality, cfg.data.sampler_config().batch_size) == (8, 4, 64)
        assert (cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay, cfg.optim.nesterov) == (0.01, 0.9, 5e-4, False)
        assert [lr_factor(cfg.optim, e) for e in (0, 19, 20, 40, 99)] == [1, 1, 0.5, 0.25, 0.5 ** 4]
        assert (cfg.loss.beta, cfg.loss.lambda_pose, cfg.loss.gamma) == (0.1, 5.0, 1.0)
        assert cfg.epochs == 100 and cfg.model.backbone == "resnet50" and cfg.data.input_size == (288, 144)
        assert cfg.data.holdout is None
    assert load_config(CONFIGS / "regdb.yaml").dataset == "regdb"


def test_release_presets():
    sysu = load_config(CONFIGS / "sysu_release.yaml")
    regdb = load_config(CONFIGS / "regdb_release.yaml")
    for cfg in (sysu, regdb):
        assert (cfg.data.num_ids, cfg.data.num_per_modality, cfg.data.pad) == (16, 4, 0)
        assert cfg.optim.nesterov and cfg.optim.stem_lr_factor == 0.1
        assert cfg.optim.factors == [1.0, 0.75, 0.5, 0.25, 0.125, 0.1, 0.05]
    assert (sysu.dataset, sysu.epochs, sysu.loss.lambda_pose, sysu.optim.milestones) == (
        "sysu", 150, 3.0, [12, 30, 50, 75, 125, 180])
    assert (regdb.dataset, regdb.epochs, regdb.loss.lambda_pose, regdb.optim.milestones) == (
        "regdb", 25, 7.0, [8, 15, 25, 40, 60, 80])
    assert [lr_factor(sysu.optim, e) for e in (0, 11, 12, 29, 30, 75, 149)] == [1, 1, 0.75, 0.75, 0.5, 0.125, 0.1]


def test_release_presets_take_the_release_options_and_paper_presets_do_not():
    for name in ("sysu_release.yaml", "regdb_release.yaml"):
        cfg = load_config(CONFIGS / name)
        assert cfg.loss.hctri_feature == "l2x5"
        t = cfg.data.transform_config()
        assert (t.erase_p, t.erase_area, t.erase_fill, t.erase_targets) == (0.5, (0.02, 0.33), (0.0, 0.0, 0.0),
                                                                            "independent")
        assert (t.erase_aspect_sampling, t.erase_attempts) == ("log", 10)
    assert load_config(CONFIGS / "sysu_release.yaml").data.flip_p == 0.5      # its SYSU loader flips
    assert load_config(CONFIGS / "regdb_release.yaml").data.flip_p == 0.0     # its RegDB loader does not
    for name in ("sysu.yaml", "regdb.yaml"):
        cfg = load_config(CONFIGS / name)
        t = cfg.data.transform_config()
        assert cfg.loss.hctri_feature == "raw" and cfg.data.flip_p == 0.5
        assert (t.erase_area, t.erase_fill, t.erase_targets) == ((0.02, 0.4), (0.4914, 0.4822, 0.4465), "none")
        assert (t.erase_aspect_sampling, t.erase_attempts) == ("uniform", 100)


def test_paper_presets_give_a_reason_for_each_open_choice():
    text = (CONFIGS / "sysu.yaml").read_text()
    lines = text.splitlines()
    # (erase_p heads the erasing keys: area, fill and targets share its comment)
    for key in ("hctri_feature:", "pad:", "flip_p:", "erase_p:", "momentum:", "nesterov:", "stem_lr_factor:"):
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(key))
        block = []
        for line in reversed(lines[:at]):                 # the comment lines right above the key
            if not line.strip().startswith("#"):
                break
            block.append(line)
        assert block, f"sysu.yaml: {key} has no comment giving its reason"
    assert "flip" in (CONFIGS / "regdb.yaml").read_text()


def test_ablation_presets_match_table_iv():
    for row in ("baseline", "peb", "peb_pose", "full"):
        cfg = load_config(CONFIGS / f"ablation_{row}.yaml").model_config(num_classes=395)
        ref = ModelConfig.ablation(row)
        assert (cfg.use_pose_branch, cfg.use_pose_loss, cfg.use_hfc) == (
            ref.use_pose_branch, ref.use_pose_loss, ref.use_hfc), row


def test_inheritance_and_overrides_take_priority(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("epochs: 7\noptim: {lr: 0.5, momentum: 0.8}\n")
    child = tmp_path / "child.yaml"
    child.write_text("inherit: base.yaml\noptim: {lr: 0.25}\n")
    cfg = load_config(child, ["optim.momentum=0.7", "model.backbone=resnet18", "data.input_size=[128, 64]",
                              "data.holdout=null", "model.pretrained=2024"])
    assert (cfg.epochs, cfg.optim.lr, cfg.optim.momentum) == (7, 0.25, 0.7)
    assert cfg.model.backbone == "resnet18" and cfg.data.input_size == (128, 64)
    assert cfg.model.pretrained == "2024"               # a string key keeps the text as written
    assert cfg.optim.weight_decay == TrainConfig().optim.weight_decay   # untouched defaults stay


def test_unknown_key_names_the_file_and_suggests(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inherit: good.yaml\nmodel: {backbon: resnet18}\n")
    (tmp_path / "good.yaml").write_text("epochs: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'model\.backbon'; did you mean 'model\.backbone'"):
        load_config(bad)
    parent_bad = tmp_path / "child.yaml"
    (tmp_path / "parent.yaml").write_text("optim: {learning_rate: 0.1}\n")
    parent_bad.write_text("inherit: parent.yaml\n")
    with pytest.raises(ConfigError, match=r"parent\.yaml: unknown key 'optim\.learning_rate'"):
        load_config(parent_bad)
    with pytest.raises(ConfigError, match=r"override 'optim\.lrr=1': unknown key 'optim\.lrr'; did you mean 'optim\.lr'"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="model.num_classes is not a setting"):
        load_config(None, ["model.num_classes=10"])


def test_values_are_type_checked(tmp_path):
    with pytest.raises(ConfigError, match="optim.lr must be a number, got 'fast'"):
        load_config(None, ["optim.lr=fast"])
    with pytest.raises(ConfigError, match=r"data.input_size must be a list of 2 values"):
        load_config(None, ["data.input_size=[288]"])
    with pytest.raises(ConfigError, match="epochs must be an integer, got 1.5"):
        load_config(None, ["epochs=1.5"])
    with pytest.raises(ConfigError, match="deterministic must be true/false"):
        load_config(None, ["deterministic=3"])
    with pytest.raises(ConfigError, match=r"override 'amp=true': amp is now speed\.amp"):
        load_config(None, ["amp=true"])
    with pytest.raises(ConfigError, match="speed.amp must be auto, bf16, bf16-native, fp16, true or false, got 'fp8'"):
        load_config(None, ["speed.amp=fp8"])
    with pytest.raises(ConfigError, match="speed.channels_last must be auto, true or false, got 'fast'"):
        load_config(None, ["speed.channels_last=fast"])
    with pytest.raises(ConfigError, match="ddp.backend must be one of auto, nccl, gloo"):
        load_config(None, ["ddp.backend=mpi"])
    f = tmp_path / "x.yaml"
    f.write_text("data: 5\n")
    with pytest.raises(ConfigError, match=r"x\.yaml: data must be a mapping"):
        load_config(f)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(None, ["epochs"])


def test_value_checks_and_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="fewer than num_stripes=6"):
        load_config(None, ["data.input_size=[64, 32]"])
    with pytest.raises(ConfigError, match="one value more than optim.milestones"):
        load_config(None, ["optim.schedule=milestones", "optim.milestones=[10]", "optim.factors=[1.0]"])
    with pytest.raises(ConfigError, match="device must be"):
        load_config(None, ["device=tpu"])
    with pytest.raises(ConfigError, match=r"missing\.yaml: configuration file not found"):
        load_config(tmp_path / "missing.yaml")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("inherit: b.yaml\n")
    b.write_text("inherit: a.yaml\n")
    with pytest.raises(ConfigError, match="inheritance cycle"):
        load_config(a)


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(CONFIGS / "sysu_release.yaml", ["data.holdout=fraction"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    assert config_from_dict(cfg.to_dict()) == cfg


def test_warmup_and_step_schedule():
    cfg = load_config(None, ["optim.warmup_epochs=4", "optim.warmup_start=0.2", "optim.step_size=2"])
    assert [round(lr_factor(cfg.optim, e), 6) for e in range(6)] == [0.2, 0.4, 0.3, 0.4, 0.25, 0.25]


def test_speed_switches_auto_is_on_for_cuda_and_off_for_cpu(monkeypatch):
    auto = SpeedConfig()
    assert (auto.amp, auto.channels_last, auto.pin_memory, auto.compile) == ("auto",) * 4
    assert resolve_speed(auto, "cpu") == ResolvedSpeed(amp_dtype=None, channels_last=False, pin_memory=False,
                                                       compile=False)
    # CUDA is only named here (resolution needs no GPU): bf16 where supported, else fp16 + GradScaler
    monkeypatch.setattr("vireid.engine.speed.cuda_bf16_native", lambda device=None: True)
    cuda = resolve_speed(auto, "cuda:1")
    assert (cuda.amp_dtype, cuda.channels_last, cuda.pin_memory, cuda.non_blocking, cuda.compile) == (
        torch.bfloat16, True, True, True, False)
    assert not cuda.grad_scaler
    monkeypatch.setattr("vireid.engine.speed.cuda_bf16_native", lambda device=None: False)
    old_gpu = resolve_speed(auto, "cuda")
    assert old_gpu.amp_dtype == torch.float16 and old_gpu.grad_scaler
    # explicit values hold on any device; YAML on / off are booleans
    cfg = load_config(None, ["speed.amp=bf16", "speed.channels_last=on", "speed.pin_memory=off", "speed.compile=true"])
    cpu = resolve_speed(cfg.speed, torch.device("cpu"))
    assert (cpu.amp_dtype, cpu.channels_last, cpu.pin_memory, cpu.compile) == (torch.bfloat16, True, False, True)
    assert resolve_speed(load_config(None, ["speed.amp=fp16"]).speed, "cpu").grad_scaler
    assert resolve_speed(load_config(None, ["speed.amp=true"]).speed, "cpu").amp_dtype == torch.bfloat16
    assert resolve_speed(load_config(None, ["speed.amp=false"]).speed, "cuda").amp_dtype is None
    assert "float32" in resolve_speed(auto, "cpu").describe()


def test_bf16_native_follows_the_hardware(monkeypatch):
    native = load_config(None, ["speed.amp=bf16-native"]).speed
    monkeypatch.setattr("vireid.engine.speed._cpu_bf16_native", lambda: True)
    assert resolve_speed(native, "cpu").amp_dtype == torch.bfloat16
    monkeypatch.setattr("vireid.engine.speed._cpu_bf16_native", lambda: False)
    assert resolve_speed(native, "cpu").amp_dtype is None  # emulated bf16 would be slower than float32
    monkeypatch.setattr("vireid.engine.speed.cuda_bf16_native", lambda device=None: True)
    assert resolve_speed(native, "cuda").amp_dtype == torch.bfloat16
    monkeypatch.setattr("vireid.engine.speed.cuda_bf16_native", lambda device=None: False)
    assert resolve_speed(native, "cuda").amp_dtype is None  # never fp16: no GradScaler surprise
    assert load_config(CONFIGS / "demo.yaml").speed.amp == "bf16-native"


def test_cpu_bf16_probe_agrees_with_the_kernel_cpu_flags():
    from vireid.engine.speed import _cpu_bf16_native

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo to compare the probe with (not Linux)")
    flags = set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    assert _cpu_bf16_native() == bool({"avx512_bf16", "amx_tile"} & flags)


def test_presets_speed_and_ddp_sections():
    paper = load_config(CONFIGS / "sysu.yaml")
    assert paper.speed.amp is False and paper.speed.channels_last == "auto" and paper.speed.compile is False
    assert (paper.ddp.backend, paper.ddp.sync_bn, paper.ddp.gather_hctri) == ("auto", True, True)
    assert load_config(CONFIGS / "sysu_release.yaml").speed.amp == "auto"


def test_paper_presets_mark_pose_init_required_and_resolve_it():
    from vireid.engine.config import REQUIRED, resolve_required
    for name in ("sysu.yaml", "regdb.yaml", "sysu_release.yaml", "regdb_release.yaml"):
        cfg = load_config(CONFIGS / name)
        assert cfg.model.pose_init == REQUIRED
        with pytest.raises(ConfigError, match=r"model\.pose_init is required"):
            resolve_required(cfg)
        given = resolve_required(load_config(CONFIGS / name, ["model.pose_init=/w/lip.pth"]))
        assert given.model.pose_init == "/w/lip.pth"
        assert resolve_required(load_config(CONFIGS / name, ["model.pose_init=null"])).model.pose_init is None
        # Table IV's baseline (no PEB) has nothing to initialise
        base = resolve_required(load_config(CONFIGS / name, ["model.use_pose_branch=false", "model.use_pose_loss=false",
                                                            "model.use_hfc=false"]))
        assert base.model.pose_init is None
    assert load_config(CONFIGS / "demo.yaml").model.pose_init is None
