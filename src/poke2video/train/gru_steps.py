"""One training iteration of the paper's model (model.architecture: gru): the optimizers, the two stages
(or the joint single stage) and the GAN steps.

Schedules (train.schedule): `alternate` steps a stage-1 optimizer (object encoder + decoder, frame
reconstruction) and then a stage-2 optimizer (poke encoder + dynamics + decoder, video reconstruction +
L_traj) on every batch, as the authors' code does; `sequential` runs stage 1 for `stage1_steps` and then
stage 2 alone; `single` (ablation) trains everything jointly with one optimizer. The discriminators
join at `gan.start_step`. Validation tracks the poked pixel through the video (its endpoint error).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from poke2video import metrics
from poke2video.gru_config import GRUTrainConfig
from poke2video.model.discriminators import PatchDiscriminator, TemporalDiscriminator
from poke2video.model.poke_model import PokeModel
from poke2video.model.prediction import Prediction
from poke2video.train import losses
from poke2video.train.batch import Batch
from poke2video.train.distributed import DistContext
from poke2video.train.runner import StepRunner, apply_loss


def build_discriminators(model: PokeModel, cfg: GRUTrainConfig) -> nn.ModuleDict | None:
    """The critics of `cfg.gan` (None when it is off), sized by the model's `discriminator` section."""
    if not cfg.gan.enabled:
        return None
    return nn.ModuleDict({"patch": PatchDiscriminator(model.cfg), "temporal": TemporalDiscriminator(model.cfg)})


def build_optimizers(model: PokeModel, discriminators: nn.ModuleDict | None,
                     cfg: GRUTrainConfig) -> dict[str, torch.optim.Optimizer]:
    def adam(modules, lr):
        params = [p for m in modules for p in m.parameters()]
        return torch.optim.Adam(params, lr=lr, betas=cfg.betas)

    if cfg.schedule == "single":
        optimizers = {"joint": adam([model], cfg.lr)}
    else:
        optimizers = {"stage1": adam([model.object_encoder, model.decoder], cfg.lr),
                      "stage2": adam([model.poke_encoder, model.dynamics, model.decoder], cfg.lr)}
    if discriminators is not None:
        optimizers.update({name: adam([d], cfg.gan.lr) for name, d in discriminators.items()})
    return optimizers


class GRUStepRunner(StepRunner):
    """One iteration of the paper's model on a batch (its critics built here when `gan` is on)."""

    selection_score = "val/endpoint_error"

    def __init__(self, model: PokeModel, cfg: GRUTrainConfig, ctx: DistContext, generator: torch.Generator):
        super().__init__(model, cfg, ctx, generator)
        self.discriminators = build_discriminators(model, cfg)
        if self.discriminators is not None:
            self.discriminators.to(ctx.device).train()
        self.optimizers = build_optimizers(model, self.discriminators, cfg)
        self.recon_loss = losses.make_reconstruction_loss(cfg)
        if isinstance(self.recon_loss, nn.Module):
            self.recon_loss.to(ctx.device)

    def set_lr_for_epoch(self, epoch: int) -> None:
        for name, optimizer in self.optimizers.items():
            base = self.cfg.gan.lr if name in ("patch", "temporal") else self.cfg.lr
            for group in optimizer.param_groups:
                group["lr"] = base * self.epoch_decay(epoch)

    def validation_scores(self, prediction: Prediction, batch: Batch, videos_with_source: list[np.ndarray],
                          object_masks: list[np.ndarray], impulse: bool) -> dict[str, list[float]]:
        """Object pokes that are drags: the poked pixel tracked through the video, its distance at frame T to
        the poke's target, and the drag's length (the error of no motion) for reference."""
        scores = {"endpoint_error": [], "static_endpoint_error": []}
        for (x, y, dx, dy, is_background), video in zip(batch.poke.tolist(), videos_with_source):
            if not is_background and not impulse:
                scores["endpoint_error"].append(metrics.poke_endpoint_error(video, (x, y), (x + dx, y + dy)))
                scores["static_endpoint_error"].append(float(np.hypot(dx, dy)))
        return scores

    def __call__(self, batch: Batch, step: int) -> dict[str, float]:
        cfg = self.cfg
        if cfg.schedule == "single":
            return self._dynamics_step(batch, step, "joint")
        logs: dict[str, float] = {}
        if cfg.schedule == "alternate" or step < cfg.stage1_steps:
            logs.update(self._reconstruction_step(batch))
        if cfg.schedule == "alternate" or step >= cfg.stage1_steps:
            logs.update(self._dynamics_step(batch, step, "stage2"))
        return logs

    def _apply(self, name: str, loss: torch.Tensor) -> None:
        apply_loss(self.optimizers[name], loss, self.ctx)

    def _reconstruction_step(self, batch: Batch) -> dict[str, float]:
        """Stage 1: encode and decode the source frame and one random target frame per clip."""
        size, steps = batch.target.shape[:2]
        picks = torch.randint(0, steps, (size,), generator=self.generator).to(batch.target.device)
        frames = torch.cat([batch.source, batch.target[torch.arange(size, device=picks.device), picks]])
        with self.autocast():
            reconstruction = self.model.decode(self.model.encode_object(frames)).float()
            rec = self.recon_loss(reconstruction, frames)
        self._apply("stage1", self.cfg.rec_weight * rec)
        return {"loss/stage1_rec": rec.item()}

    def _encoded_targets(self, target: torch.Tensor) -> list[list[torch.Tensor]]:
        """Object states of the real frames x_1..x_T (fixed targets of L_traj): [t][level] [B, C, h, w]."""
        size, steps = target.shape[:2]
        with torch.no_grad(), self.autocast():
            states = self.model.encode_object(target.flatten(0, 1))
        per_level = [level.float().unflatten(0, (size, steps)) for level in states]
        return [[level[:, t] for level in per_level] for t in range(steps)]

    def _dynamics_step(self, batch: Batch, step: int, name: str) -> dict[str, float]:
        """Stage 2 (object encoder frozen) or the joint single stage: predict the clip from the poke."""
        cfg = self.cfg
        gan_on = self.discriminators is not None and step >= cfg.gan.start_step
        self.model.object_encoder.requires_grad_(name == "joint")
        with self.autocast():
            prediction = self.model.predict(batch.source, batch.poke_map, steps=batch.target.shape[1])
            video, predicted_states = prediction.video.float(), prediction.states
            rec = self.recon_loss(video.flatten(0, 1), batch.target.flatten(0, 1))
        loss = cfg.dynamics_rec_weight * rec
        logs = {"loss/dynamics_rec": rec.item()}
        if cfg.traj_weight > 0:
            traj = losses.trajectory_loss(predicted_states, self._encoded_targets(batch.target))
            loss = loss + cfg.traj_weight * traj
            logs["loss/traj"] = traj.item()
        if gan_on:
            adversarial, gan_logs = self._generator_gan_terms(video, batch.target)
            loss = loss + adversarial
            logs.update(gan_logs)
        self._apply(name, loss)
        self.model.object_encoder.requires_grad_(True)
        logs["loss/total"] = loss.item()
        if gan_on:
            logs.update(self._discriminator_step(video.detach(), batch.target))
        return logs

    def _pick_frames(self, *videos: torch.Tensor) -> list[torch.Tensor]:
        """The same `gan.patch_frames` random frames of each [B, T, 3, H, W] video -> [n, 3, H, W]."""
        flat = [v.flatten(0, 1) for v in videos]
        count = min(self.cfg.gan.patch_frames, flat[0].shape[0])
        picks = torch.randperm(flat[0].shape[0], generator=self.generator)[:count].to(flat[0].device)
        return [f[picks] for f in flat]

    def _generator_gan_terms(self, video: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        gan = self.cfg.gan
        patch, temporal = self.discriminators["patch"], self.discriminators["temporal"]
        self.discriminators.requires_grad_(False)
        (fake_frames,) = self._pick_frames(video)
        with self.autocast():
            patch_term = losses.hinge_generator_loss(patch(fake_frames)[0].float())
            fake_logits, fake_features = temporal(video)
            with torch.no_grad():
                _, real_features = temporal(target)
            temporal_term = losses.hinge_generator_loss(fake_logits.float())
            matching = losses.feature_matching_loss(real_features, fake_features)
        self.discriminators.requires_grad_(True)
        total = gan.patch_weight * patch_term + gan.temporal_weight * temporal_term + gan.feature_matching * matching
        return total, {"gan/g_patch": patch_term.item(), "gan/g_temporal": temporal_term.item(),
                       "gan/feature_matching": matching.item()}

    def _discriminator_step(self, fake_video: torch.Tensor, real_video: torch.Tensor) -> dict[str, float]:
        gan = self.cfg.gan
        patch, temporal = self.discriminators["patch"], self.discriminators["temporal"]
        real_frames, fake_frames = self._pick_frames(real_video, fake_video)
        real_frames = real_frames.detach().requires_grad_(True)
        real_video = real_video.detach().requires_grad_(True)
        with self.autocast():
            real_patch = patch(real_frames)[0].float()
            patch_loss = losses.hinge_discriminator_loss(real_patch, patch(fake_frames)[0].float())
            real_temporal = temporal(real_video)[0].float()
            temporal_loss = losses.hinge_discriminator_loss(real_temporal, temporal(fake_video)[0].float())
        r1 = losses.real_gradient_penalty(real_patch, real_frames)
        gp = losses.real_gradient_penalty(real_temporal, real_video)
        self._apply("patch", patch_loss + gan.patch_r1 * r1)
        self._apply("temporal", temporal_loss + gan.temporal_gp * gp)
        return {"gan/d_patch": patch_loss.item(), "gan/d_temporal": temporal_loss.item(),
                "gan/r1": r1.item(), "gan/gp": gp.item()}
