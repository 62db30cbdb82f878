"""`poke2video train`: budgets, data order, periodic logs/validation/checkpoints, resume, DDP.

    train_run(data="data/pokesim64", out="runs/a", preset="cpu-64", max_minutes=30)
    train_run(data="data/pokesim64", out="runs/a", resume=True, steps=20000)   # continue to step 20000
    train_run(data="data/pokesim64", out="runs/b", val_data="data/pokesim64-val", max_minutes=30)

`steps` is the step the run ends at (counted from the run's start, across resumes; None: the preset's
`train.steps`); `max_minutes` stops this invocation sooner when its wall-clock budget runs out first;
`workers` the processes loading batches (None: `default_workers`); `in_memory` reads the training videos'
arrays into RAM before the first step.
`val_data` is a separate store to validate on: the run then also keeps the weights that scored best there
(lowest `val/flow_error` for a flow model, `val/endpoint_error` for the paper's model) as
best.safetensors.
The first Ctrl-C (SIGINT/SIGTERM) finishes the current step, writes a checkpoint and exits; `--resume`
then continues bit for bit: same data order, RNG, optimizer state; also after a SIGKILL at any moment,
a checkpoint write included (tests/test_train_faults.py).
"""
from __future__ import annotations

import dataclasses
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from poke2video.config import TrainConfig, to_dict
from poke2video.data.dataset import PokeDataset
from poke2video.data.store import Store
from poke2video.errors import UserError, print_line
from poke2video.model import build_model
from poke2video.preset import Preset, load_preset
from poke2video.train import checkpoint as ckpt
from poke2video.train.batch import Batch
from poke2video.train.distributed import (DistContext, any_rank, barrier, broadcast_state, epoch_batches,
                                          init_distributed, shutdown)
from poke2video.train.feed import batch_loader, default_workers
from poke2video.train.flow_steps import FlowStepRunner
from poke2video.train.gru_steps import GRUStepRunner
from poke2video.train.runlog import RunLogger
from poke2video.train.runner import StepRunner
from poke2video.train.validate import Validator, held_back_positions

RUNNERS = {"unet": FlowStepRunner, "gru": GRUStepRunner}   # by family (families.py)


def train_run(data: str, out: str, preset: str = "cpu-64", steps: int | None = None,
              max_minutes: float | None = None, resume: bool = False, seed: int = 0,
              vgg_weights: str | None = None, workers: int | None = None, val_data: str | None = None,
              in_memory: bool = False, init: str | None = None) -> "Trainer":
    """Train into run directory `out`; returns the finished Trainer (its `.model` holds the weights).
    `init`: a weights file or a bundled model's name to start from instead of random weights."""
    if max_minutes is not None and not max_minutes > 0:
        raise UserError(f"--max-minutes must be positive, got {max_minutes}")
    ctx = init_distributed()
    # Subnormal floats appear in the GRU gradients after a few steps and slow CPU kernels ~6x. The setting
    # is process-wide: it is put back to PyTorch's default when training ends.
    torch.set_flush_denormal(True)
    try:
        run_dir = Path(out)
        if resume and ckpt.holds_no_run(run_dir):  # e.g. torchrun --max-restarts repeats the first command
            if ctx.is_main:
                print_line(f"poke2video train: no run in {run_dir} yet: starting it (--resume)")
            resume = False
        has_state = resume and ckpt.check_resume_dir(run_dir)
        if resume:
            recipe, seed, _, saved_val_data, init_record = ckpt.read_run_config(run_dir)
            val_data = _resumed_val_data(run_dir, saved_val_data, val_data)
            _check_resumed_init(run_dir, init_record, init)
        else:
            ckpt.check_new_run_dir(run_dir)
            recipe = load_preset(preset)
            if steps is not None:      # the run's length: what a cosine lr schedule spans
                recipe.train.steps = steps
        if vgg_weights is not None:
            _set_vgg_weights(recipe, vgg_weights)
        recipe.train.poke = dataclasses.replace(recipe.train.poke, seed=seed)
        if ctx.is_main:
            ckpt.remove_stale_temporaries(run_dir)
        barrier(ctx)  # every rank has checked the run directory before rank 0 writes into it
        val_store = Store.open(val_data) if val_data is not None else None
        store = Store.open(data)
        if in_memory:
            store.hold_in_memory(TRAINING_ARRAYS, videos=np.unique(store.clips("train")[:, 0]))
        trainer = Trainer(recipe, store, run_dir, seed, ctx, workers, resumed=resume, val_store=val_store)
        if has_state:
            trainer.load_state(ckpt.load_resume_state(run_dir))
            trainer.save_export()  # a kill between the two checkpoint writes left it a checkpoint behind
        elif resume:               # killed before its first checkpoint: from step 0, from the same weights
            _start_from(trainer, init_record)
        else:
            init_record = ckpt.init_weights(trainer.model, init) if init is not None else None
            if ctx.is_main:
                ckpt.write_run_config(run_dir, recipe, seed, str(Path(data).resolve()),
                                      None if val_data is None else str(Path(val_data).resolve()), init_record)
        trainer.fit(steps=steps if steps is not None else recipe.train.steps, max_minutes=max_minutes)
        return trainer
    finally:
        torch.set_flush_denormal(False)
        shutdown(ctx)


TRAINING_ARRAYS = ["frames", "starts", "flow", "motion", "gt_flow", "gt_poke", "step_flow"]   # what items read


def _resumed_val_data(run_dir: Path, saved: str | None, given: str | None) -> str | None:
    """A resumed run validates where it started; a different --val-data is an error, not a silent switch."""
    if given is not None and (saved is None or Path(given).resolve() != Path(saved)):
        raise UserError(f"{run_dir} validates on {saved or 'its own store'}; a resumed run keeps that "
                        f"(leave out --val-data or start a new run)")
    return saved


def _check_resumed_init(run_dir: Path, recorded: dict[str, str] | None, given: str | None) -> None:
    """A resumed run keeps the weights it started from: an --init naming other weights is an error."""
    if given is not None and (recorded is None or ckpt.init_source(given)["sha256"] != recorded.get("sha256")):
        started = f"from {recorded['weights']}" if recorded else "from random weights"
        raise UserError(f"{run_dir} started {started}; a resumed run keeps its own (leave out --init or "
                        f"start a new run)")


def _start_from(trainer: "Trainer", record: dict[str, str] | None) -> None:
    """Load the weights a run started from again, checking they are the bytes it started from."""
    if record is not None and ckpt.init_weights(trainer.model, record["weights"]) != record:
        raise UserError(f"{record['weights']} changed since the run started from it; start a new run")


def _set_vgg_weights(recipe: Preset, path: str) -> None:
    """`--vgg-weights` into a recipe whose family's training reads a VGG19 file (the paper's perceptual loss)."""
    if "vgg_weights" not in {option.name for option in dataclasses.fields(recipe.train)}:
        raise UserError(f"--vgg-weights: a {recipe.family} model trains without a perceptual loss; leave it out")
    recipe.train.vgg_weights = path


def make_step_runner(model: torch.nn.Module, cfg: TrainConfig, ctx: DistContext,
                     generator: torch.Generator) -> StepRunner:
    """The training iteration of the model's family: FlowStepRunner (unet) or GRUStepRunner (the paper's gru)."""
    return RUNNERS[model.cfg.family](model, cfg, ctx, generator)


class Trainer:
    def __init__(self, recipe: Preset, store: Store, out: Path, seed: int, ctx: DistContext,
                 workers: int | None = None, resumed: bool = False, val_store: Store | None = None):
        cfg = recipe.train
        for data in [s for s in (store, val_store) if s is not None]:
            if data.resolution != recipe.model.resolution:
                raise UserError(f"{data.root} is {data.resolution} px but the preset's model is "
                                f"{recipe.model.resolution} px; pick a matching --preset or dataset")
        self.recipe, self.cfg, self.out, self.seed, self.ctx = recipe, cfg, out, seed, ctx
        self.workers = default_workers(ctx.device) if workers is None else workers
        self.resumed = resumed
        torch.manual_seed(seed)
        self.model = build_model(recipe.model).to(ctx.device).train()
        self.generator = torch.Generator().manual_seed(seed)
        self.runner = make_step_runner(self.model, cfg, ctx, self.generator)   # builds any critics
        self.dataset = PokeDataset(store, "train", poke=cfg.poke, flow_frames=cfg.flow_frames)
        self.validator = (Validator.for_store(val_store or store, cfg.poke, cfg.val_clips,
                                              separate=val_store is not None, flow_frames=self.dataset.flow_frames)
                          if ctx.is_main and cfg.val_clips else None)
        self.keeps_best = val_store is not None  # best.safetensors: picked on clips the run never trains on
        self.best: dict | None = None             # {"step", "score"} of the best validation so far
        held_back = held_back_positions(store, cfg.val_clips) if val_store is None else np.zeros(0, np.int64)
        self.train_positions = np.setdiff1d(np.arange(len(self.dataset)), held_back)  # int64 [M']
        self.steps_per_epoch = len(epoch_batches(len(self.train_positions), cfg.batch_size, seed, 0, ctx))
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self._batches = None  # the loader's iterator, made at the first batch (`_next_batch`)
        self.logger: RunLogger | None = None   # made by `fit`
        self._resume_lines: int | None = None  # metrics.jsonl lines of the resumed checkpoint
        self.validated_step: int | None = None  # the step of the last validation
        self._stop_requested = False
        self._sync_ranks()

    def _sync_ranks(self) -> None:
        broadcast_state(self.model, self.ctx)
        if self.runner.discriminators is not None:
            broadcast_state(self.runner.discriminators, self.ctx)

    # resume state ---------------------------------------------------------------------------------
    def state(self) -> dict:
        critics = self.runner.discriminators
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "model": self.model.state_dict(),
                "discriminators": critics.state_dict() if critics is not None else {},
                "optimizers": {name: opt.state_dict() for name, opt in self.runner.optimizers.items()},
                "best": self.best or {}, "log_lines": self.logger.lines if self.logger is not None else 0,
                "validated_step": self.validated_step,
                "rng": ckpt.rng_state(), "generator": self.generator.get_state()}

    def load_state(self, state: dict) -> None:
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.model.load_state_dict(state["model"])
        if self.runner.discriminators is not None:
            self.runner.discriminators.load_state_dict(state["discriminators"])
        for name, optimizer in self.runner.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.best = state.get("best") or None  # resume files from before best.safetensors have none
        self._resume_lines = state.get("log_lines")
        self.validated_step = state.get("validated_step")
        ckpt.restore_rng_state(state["rng"])
        self.generator.set_state(state["generator"])
        self._batches = None
        self._sync_ranks()

    def weights_metadata(self) -> dict:
        poke = self.cfg.poke
        return {"step": self.step, "epoch": self.epoch, "seed": self.seed,
                "clip_length": self.dataset.store.clip_length, "poke": to_dict(poke),
                "impulse_scale": float(self.dataset.impulse_scale) if poke.impulse else None,
                "flow_frames": self.dataset.flow_frames,
                "train": to_dict(self.cfg)}

    def save(self) -> None:
        """A checkpoint: resume.pt first, then the export (a kill between them is repaired on resume)."""
        if self.ctx.is_main:
            ckpt.save_resume_state(self.out, self.state())
        self.save_export()

    def save_export(self) -> None:
        if self.ctx.is_main:
            ckpt.save_weights(self.out, self.model, self.weights_metadata())
        barrier(self.ctx)

    # data -----------------------------------------------------------------------------------------
    def _next_batch(self) -> Batch:
        if self._batches is None:
            self._batches = iter(batch_loader(self.dataset, self.train_positions, self.cfg.batch_size, self.seed,
                                              self.ctx, (self.epoch, self.batch_in_epoch), self.workers))
            self.runner.set_lr_for_epoch(self.epoch)
        batch = Batch.on_device(next(self._batches), self.ctx.device)
        self.batch_in_epoch += 1
        if self.batch_in_epoch == self.steps_per_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.runner.set_lr_for_epoch(self.epoch)
        return batch

    # the loop -------------------------------------------------------------------------------------
    def fit(self, steps: int, max_minutes: float | None) -> None:
        """Train until step `steps`, or until `max_minutes` have passed in this call, whichever comes first."""
        logger = self.logger = RunLogger(self.out, self.ctx.is_main, resume_step=self.step if self.resumed else None,
                                         resume_lines=self._resume_lines)
        deadline = time.monotonic() + max_minutes * 60 if max_minutes else None
        progress = tqdm(total=steps, initial=self.step, desc="train", unit="step", file=sys.stderr,
                        disable=not self.ctx.is_main, dynamic_ncols=True)
        previous_handlers = self._catch_stop_signals()
        started, first_step, window = time.monotonic(), self.step, _Window()
        try:
            while not self._should_stop(steps, deadline):
                logs = self.runner(self._next_batch(), self.step)
                self.step += 1
                window.add(logs)
                samples_per_s = ((self.step - first_step) * self.cfg.batch_size * self.ctx.world_size
                                 / max(time.monotonic() - started, 1e-9))
                progress.update(1)
                progress.set_postfix(loss=f"{logs.get('loss/total', 0.0):.4f}", samples_s=f"{samples_per_s:.1f}")
                self._periodic(logger, window, samples_per_s)
            self._finish(logger)
        finally:
            self._batches = None  # ends the loader's worker processes
            progress.close()
            logger.close()
            self._restore_signals(previous_handlers)
        if self._stop_requested:
            raise KeyboardInterrupt

    def _should_stop(self, steps: int, deadline: float | None) -> bool:
        done = self.step >= steps or (deadline is not None and time.monotonic() >= deadline)
        return any_rank(done or self._stop_requested, self.ctx)

    def _periodic(self, logger: RunLogger, window: "_Window", samples_per_s: float) -> None:
        cfg = self.cfg
        if self.step % cfg.log_every == 0:
            logger.scalars(self.step, {**window.means(), "perf/samples_per_s": samples_per_s, "epoch": self.epoch})
            window.clear()
        if self.step % cfg.val_every == 0:
            self._validate(logger)
        if cfg.keep_every and self.step % cfg.keep_every == 0:
            self._keep_step()   # before the checkpoint: a run killed between the two redoes this step on resume
        if self.step % cfg.checkpoint_every == 0:
            self.save()

    def _keep_step(self) -> None:
        """steps/step_STEP.safetensors: this step's exported weights, kept beside the latest (train.keep_every)."""
        if self.ctx.is_main:
            (self.out / ckpt.STEPS_DIR).mkdir(exist_ok=True)
            ckpt.save_weights(self.out, self.model, self.weights_metadata(),
                              f"{ckpt.STEPS_DIR}/step_{self.step:07d}.safetensors")

    def _validate(self, logger: RunLogger) -> None:
        if self.validator is None:
            return
        scores, strip = self.validator.run(self.model, self.ctx.device, self.runner)
        self.validated_step = self.step
        logger.scalars(self.step, scores)
        logger.filmstrip(self.step, "samples/real_top_generated_bottom", strip)
        score = scores.get(self.runner.selection_score)
        if self.keeps_best and score is not None and (self.best is None or score < self.best["score"]):
            self.best = {"step": self.step, "score": score}
            ckpt.save_weights(self.out, self.model, {**self.weights_metadata(), "validation": scores},
                              ckpt.BEST_FILE)

    def _finish(self, logger: RunLogger) -> None:
        if self.step % self.cfg.val_every and self.validated_step != self.step:  # not twice: a resumed run may have it
            self._validate(logger)
        if self.step % self.cfg.checkpoint_every or not (self.out / ckpt.RESUME_FILE).exists():
            self.save()
        if self.best is not None and self.ctx.is_main:
            selection = self.runner.selection_score
            print_line(f"poke2video train: best validation at step {self.best['step']} ({selection} "
                       f"{self.best['score']:.3f}): {self.out / ckpt.BEST_FILE}")

    def _catch_stop_signals(self) -> dict:
        def request_stop(signum, frame):
            if self._stop_requested:  # a second signal stops at once
                raise KeyboardInterrupt
            self._stop_requested = True

        try:
            return {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: leave signals alone
            return {}

    @staticmethod
    def _restore_signals(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Window:
    """Running sums of the losses since the last log line."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, logs: dict[str, float]) -> None:
        for name, value in logs.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict[str, float]:
        return {name: total / self.counts[name] for name, total in self.sums.items()}

    def clear(self) -> None:
        self.sums.clear()
        self.counts.clear()
