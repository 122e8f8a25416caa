"""Steps 3 and 4 of :mod:`vireid.engine.loop` for ``vireid-train`` (:mod:`vireid.engine.trainer`):
every batch through the network to eq. 21's named losses (:func:`vireid.losses.compute_losses`, built once,
the hetero-center triplet term over the global batch under DDP with ``ddp.gather_hctri``), the
update with the AMP scaler, the run log; at every epoch's end the scheduler step, validation
(rank 0, its result broadcast) and the checkpoint (``last.pt``, ``best.pt``; rank 0 writes).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import torch

from vireid.cache.reader import HeatmapCache
from vireid.inputs.transforms import normalise_batch, shift_heatmaps
from vireid.engine import distributed as ddp
from vireid.model.checkpoint import save_checkpoint
from vireid.engine.config import TrainConfig
from vireid.engine.distributed import DistContext
from vireid.engine.errors import NonFiniteLossError
from vireid.engine.frozen import check_gradients
from vireid.engine.grad_share import describe, gradient_norms, measured_terms, shared_blocks, weighted_terms
from vireid.engine.loop import EpochLoop, EpochStats, progress_bar
from vireid.engine.run_state import RunProgress, rng_state
from vireid.engine.speed import ResolvedSpeed
from vireid.engine.steptimer import StepTimer
from vireid.engine.train_data import TrainData
from vireid.engine.validation import validate
from vireid.losses import compute_losses
from vireid.losses.total import hctri_loss
from vireid.model import PoseVIReIDNet, leading_rgb_count

#: the run's messages (epochs, validation, gradient shares) under the trainer's name, as the console shows them
logger = logging.getLogger("vireid.engine.trainer")


@dataclass
class JointLoop(EpochLoop):
    """Steps 3 and 4 of :mod:`vireid.engine.loop` for the joint model: a batch through the
    network to eq. 21's named losses, the update (with the AMP scaler), the log, and at each
    epoch's end the validation (rank 0, result broadcast) and the checkpoint (rank 0 writes)."""

    cfg: TrainConfig
    model: PoseVIReIDNet                              # the network itself: validated, saved
    net: torch.nn.Module                              # what batches go through (DDP, compiled)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    data: TrainData
    cache: HeatmapCache
    device: torch.device
    ctx: DistContext
    speed: ResolvedSpeed
    timer: StepTimer
    log: Any                                          # RunLog on rank 0, NullLog elsewhere
    out: Path
    static: Dict[str, Any]                            # what every checkpoint records about the run
    done: RunProgress                                 # advanced as the run goes

    def __post_init__(self) -> None:
        self.last, self.best = self.out / "last.pt", self.out / "best.pt"
        self.loss_cfg = self.cfg.loss_config()
        self.blocks = shared_blocks(self.model)                      # measured every cfg.grad_every steps
        self.gather = ddp.gather_batch if self.ctx.enabled and self.cfg.ddp.gather_hctri else None
        self.hctri = hctri_loss(self.loss_cfg)                       # the run's losses are built once
        self.batch_images = self.data.sampler.batch_size * self.ctx.world_size      # the global batch
        self.show_bar = self.cfg.progress and self.ctx.is_main
        self.amp_dtype = self.speed.amp_dtype or torch.bfloat16       # unused while autocast is off
        self.non_blocking = self.speed.pin_memory and self.device.type == "cuda"
        self.grads_checked = False

    def batches(self, epoch: int) -> Any:
        self.epoch = epoch
        self.data.sampler.set_epoch(epoch)
        self.model.train()
        self.t_epoch = self.t_prev = time.perf_counter()
        self.n_batches = len(self.data.sampler)                       # fixed before the sampler counts down
        self.bar = progress_bar(self.data.loader, self.n_batches, f"epoch {epoch + 1}/{self.cfg.epochs}",
                                self.show_bar, leave=False)
        self.timer.start(self.device)
        return self.bar

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        timer, device, nb = self.timer, self.device, self.non_blocking
        timer.mark("data wait")
        images = batch["image"].to(device, non_blocking=nb)                     # [B, 3, H, W] uint8
        images = normalise_batch(images, batch["erase"], self.data.transform)   # [B, 3, H, W] float32
        if self.speed.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = batch["label"].to(device, non_blocking=nb)                     # [B]
        rgb_count = leading_rgb_count(batch["modality"])    # from the host copy: the stems split without a sync
        modality = batch["modality"].to(device, non_blocking=nb)                # [B]
        heatmaps = joint_w = None                                               # none: the pose loss is off
        if "heatmaps" in batch:
            heatmaps = batch["heatmaps"].to(device, non_blocking=nb)            # [B, 16, Hm, Wm] float32 or uint8
            if "heatmap_shift" in batch:                                        # uint8 as stored: shift here
                heatmaps = shift_heatmaps(heatmaps, batch["heatmap_shift"], self.data.transform)
            joint_w = batch["joint_weights"].to(device, non_blocking=nb)        # [B, 16]
        timer.mark("to device")
        with torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.speed.amp_dtype is not None):
            output = self.net(images, modality, rgb_count=rgb_count)
            losses = compute_losses(output, labels, modality, heatmaps, joint_w, self.loss_cfg, gather=self.gather,
                                    hctri=self.hctri)
        timer.mark("forward")
        timer.keep(output, labels, modality, heatmaps, joint_w)
        self.done.global_step += 1
        step = self.done.global_step
        if self.cfg.grad_every and step % self.cfg.grad_every == 0:
            # one extra backward per measured term; which terms: the config's, the same on every rank
            grads = gradient_norms(weighted_terms(losses, self.loss_cfg), self.blocks,
                                   measured_terms(losses, self.loss_cfg))
            self.log.write("grad", epoch=self.epoch + 1, step=step, **grads)
            logger.info("step %d, gradient-norm share on the modality-shared module: %s", step, describe(grads))
        return losses

    def loss_values(self, losses: Mapping[str, torch.Tensor]) -> Dict[str, float]:
        """Averaged over ranks (unchanged in one process): every rank logs and checks the same numbers."""
        names = list(losses)
        vec = torch.stack([losses[k].detach().float().reshape(()) for k in names])
        return dict(zip(names, ddp.all_reduce_mean(vec).cpu().tolist()))

    def non_finite(self, epoch: int, it: int, values: Mapping[str, float], name: str, value: float) -> None:
        step = self.done.global_step
        self.log.write("step", epoch=epoch + 1, step=step, iter=it, lr=self.optimizer.param_groups[-1]["lr"],
                       **values)
        kept = (f"{self.last} holds epoch {epoch}, the last good one" if self.last.is_file()
                else "no checkpoint was written yet")
        raise NonFiniteLossError(f"loss {name!r} is {value} at epoch {epoch + 1}, step {it} of the epoch (global step "
                                 f"{step}): training stopped before the update; {kept}")

    def update(self, losses: Mapping[str, torch.Tensor]) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.timer.mark("other")
        self.scaler.scale(losses["total"]).backward()
        if not self.grads_checked:                                    # once: the frozen-parameter rule holds
            check_gradients(self.model)
            self.grads_checked = True
        self.timer.mark("backward")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.timer.mark("optimizer")

    def after_step(self, epoch: int, it: int, values: Mapping[str, float], stats: EpochStats) -> None:
        now = time.perf_counter()
        rate = self.batch_images / max(now - self.t_prev, 1e-9)
        self.t_prev = now
        lr = self.optimizer.param_groups[-1]["lr"]
        self.log.write("step", epoch=epoch + 1, step=self.done.global_step, iter=it, lr=lr,
                       images_per_s=round(rate, 2), **values)
        if it % self.cfg.log_every == 0 or it == self.n_batches:
            shown = {k: f"{v:.4g}" for k, v in values.items()}
            if self.show_bar:
                self.bar.set_postfix({**shown, "img/s": f"{rate:.0f}"}, refresh=False)
            else:
                logger.info("epoch %d step %d/%d: %s, lr %.3g, %.0f img/s", epoch + 1, it, self.n_batches,
                            ", ".join(f"{k} {v}" for k, v in shown.items()), lr, rate)
        self.timer.end_step()

    def end_of_epoch(self, epoch: int, stats: EpochStats) -> None:
        cfg, done = self.cfg, self.done
        self.scheduler.step()
        means = stats.means()
        seconds = time.perf_counter() - self.t_epoch
        self.log.write("epoch", epoch=epoch + 1, step=done.global_step, seconds=round(seconds, 2), **means)
        logger.info("epoch %d/%d: %s (%.1f s)", epoch + 1, cfg.epochs,
                    ", ".join(f"{k} {v:.4g}" for k, v in means.items()), seconds)
        val = None
        if self.data.val_query and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
            val = self._validate(epoch)
        improved = val is not None and val["mAP"] > done.best_map
        if improved:
            done.best_map = val["mAP"]
        self._checkpoint(epoch, means, val, improved)
        done.epochs_done = epoch + 1

    def _validate(self, epoch: int) -> Dict[str, float]:
        """Rank 0 validates, every rank gets its result."""
        val = None
        if self.ctx.is_main:
            val = validate(self.model, self.cache, self.data.val_query, self.data.val_gallery, self.device,
                           self.cfg.data.val_batch_size, self.cfg.loss.pose_min_confidence, self.data.meta)
        val = ddp.broadcast_object(val)
        self.done.val_history.append({"epoch": epoch + 1, **val})
        self.log.write("val", epoch=epoch + 1, step=self.done.global_step, **val)
        logger.info("validation after epoch %d: mAP %.2f%%, R1 %.2f%% (f_all)%s", epoch + 1,
                    100 * val["mAP"], 100 * val["R1"],
                    "".join(f", pose branch PCKh@0.5 {m.upper()} {100 * val[f'pckh_{m}']:.1f}%"
                            for m in ("rgb", "ir") if f"pckh_{m}" in val))
        return val

    def _checkpoint(self, epoch: int, means: Mapping[str, float], val: Optional[Dict[str, float]],
                    improved: bool) -> None:
        """``last.pt`` (the one before kept as ``last.prev.pt``, the fallback of a resume) with
        every rank's RNG state; ``best.pt`` when validation improved. Rank 0 writes."""
        own_rng = rng_state()
        all_rng = ddp.all_gather_object(own_rng) if self.ctx.enabled else None
        if not self.ctx.is_main:
            return
        done = self.done
        payload = {
            **self.static, "model": self.model.state_dict(), "epoch": epoch + 1, "global_step": done.global_step,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None, "rng": own_rng,
            "rng_ranks": all_rng, "world_size": self.ctx.world_size,
            "sampler": {**self.data.sampler.state_dict(consumed=0), "epoch": epoch + 1},
            "history": {"val": done.val_history, "best_mAP": done.best_map}, "val": val, "losses": dict(means),
        }
        save_checkpoint(self.last, payload, keep_previous=True)
        if improved:
            save_checkpoint(self.best, payload)
            logger.info("best validation mAP so far: %s", self.best)
