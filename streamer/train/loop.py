"""The training loop: on-the-fly synthesis, periodic validation, checkpoints, a training card."""

from __future__ import annotations

import copy
import json
import logging
import math
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from streamer.config import TrainConfig
from streamer.errors import ConfigError
from streamer.evaluate.metrics import psnr_db
from streamer.models import get_spec
from streamer.models.flops import count_flops_per_px, count_params
from streamer.models.weights import ARCH_KEY, MODEL_KEY, load_weights, save_weights, sha256_file, weights_arch
from streamer.sysinfo import code_changed, git, host
from streamer.train import mask_head
from streamer.train.checkpoint import load_checkpoint, save_checkpoint
from streamer.train.data import list_images, one_opencv_thread, read_rgb, split, validation_set
from streamer.train.feed import build_streams, pool_workers

log = logging.getLogger(__name__)
EMA_FILE = "ema.safetensors"  # the weight average at the last checkpoint (``ema:``), for --resume


def _patch_mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((out - target) ** 2).mean(dim=(1, 2, 3))


def _loss(kind: str, out: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    if kind == "l1":
        return (out - target).abs().mean()
    mse = _patch_mse(out, target)
    if kind == "mse":
        return mse.mean()
    return torch.log10(mse + eps).mean()  # eps caps a patch's credit (1e-5: 50 dB)


def _worst_clean(model: nn.Module, batch: list[torch.Tensor], pool: torch.Tensor) -> list[torch.Tensor]:
    """Refill the batch's clean slots (input == target) with the clean patches, among them and
    ``pool``, that the net changes most now. Why: the ship gate watches the worst clean crops,
    and fixed mining rules (panels, specks, bright) kept missing the scenes the net harms."""
    dirty, clean = batch[0], batch[1]
    slots = torch.nonzero((dirty == clean).flatten(1).all(1)).flatten()
    if len(slots) == 0:
        return batch
    cands = torch.cat([clean[slots], pool.to(clean.device)])
    with torch.no_grad():
        err = _patch_mse(model(cands), cands)  # log-MSE ranks patches as the MSE does
    pick = cands[torch.argsort(err, descending=True)[: len(slots)]]
    dirty, clean = dirty.clone(), clean.clone()
    dirty[slots], clean[slots] = pick, pick
    return [dirty, clean, *batch[2:]]


def _lr_at(cfg: TrainConfig, step: int, minutes: float = 0.0) -> float:
    """The learning rate at ``step``, ``minutes`` into this invocation (used by ``lr_clock: time``)."""
    if cfg.optimizer == "sgd-paper":
        return cfg.lr / (1.0 + 5.0 * step * 1e-7)
    warm = cfg.warmup
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, cfg.steps - warm))
    if cfg.lr_clock == "time":
        t = max(t, min(1.0, minutes / cfg.max_minutes))
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * t)))


@torch.no_grad()
def validate(model: torch.nn.Module, val, device: torch.device) -> dict[str, dict[str, float]]:
    model.eval()
    res: dict[str, list[tuple[float, float]]] = {}
    for kind, dirty, clean in val:
        x = torch.from_numpy(dirty.transpose(2, 0, 1)).unsqueeze(0).to(device)
        y = model(x)[0].cpu().numpy().transpose(1, 2, 0)
        res.setdefault(kind, []).append((psnr_db(dirty, clean), psnr_db(y, clean)))
    model.train()
    return {
        k: {"input_db": float(np.mean([a for a, _ in v])), "output_db": float(np.mean([b for _, b in v])),
            "gain_db": float(np.mean([b - a for a, b in v])),
            "worst_output_db": float(min(b for _, b in v))}  # one harmed photo hides in a mean
        for k, v in res.items()
    }


def val_score(metrics: dict[str, dict[str, float]]) -> float:
    """One number to keep the best checkpoint by: mean gain over the corrupted kinds, minus what
    the worst clean photo loses below 40 dB (a net that harms clean frames is not "better")."""
    gains = [v["gain_db"] for k, v in metrics.items() if k != "clean"]
    clean = metrics.get("clean", {}).get("worst_output_db", 100.0)
    return (sum(gains) / len(gains) if gains else 0.0) - max(0.0, 40.0 - clean)


def summary(metrics: dict[str, dict[str, float]]) -> dict[str, object]:
    """Log line: gain per corruption; for clean frames (no gain to speak of) PSNR and the worst."""
    return {k: (f"{v['output_db']:.1f} dB (worst {v['worst_output_db']:.1f})" if k == "clean"
                else round(v["gain_db"], 2)) for k, v in metrics.items()}


# keys a resume is expected to change: how long and how fast, not what is learnt
RESUME_KEEPS_RECIPE = {"steps", "max_minutes", "threads", "workers", "val_every", "device", "out"}


def _resumed_card(card: dict, before: dict, step: int) -> dict:
    """The card of a resumed run keeps its first command and lists each resume with the config
    keys it changed; a change to the recipe itself (lr, mixes, losses) is also a warning, since
    the weights then come from two recipes."""
    old_cfg = before.get("config", {})
    # a key the old card lacks is an option added since: that run had its default
    changed = {k: [old_cfg[k], v] for k, v in card["config"].items() if k in old_cfg and old_cfg[k] != v}
    recipe = sorted(set(changed) - RESUME_KEEPS_RECIPE)
    if recipe:
        log.warning("resuming %s with a different recipe (%s); the card records both",
                    card["config"]["out"], ", ".join(f"{k}: {changed[k][0]} -> {changed[k][1]}" for k in recipe))
    resume = {"at_step": step, "command": card["command"], "changed": changed, "git_commit": card["git_commit"]}
    return card | {"command": before.get("command", card["command"]),
                   "resumes": [*before.get("resumes", []), resume]}


def _trainable(model: nn.Module, prefixes: list[str]) -> list[nn.Parameter]:
    """The parameters to optimise (all, or those under ``prefixes``); the rest are frozen."""
    if not prefixes:
        return list(model.parameters())
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(tuple(prefixes)))
    trained = [p for p in model.parameters() if p.requires_grad]
    if not trained:
        raise ConfigError(f"train_only {prefixes}: no parameter of the model has that prefix")
    return trained


def _ema(cfg: TrainConfig, model: nn.Module, step: int, device: torch.device) -> AveragedModel | None:
    """torch's weight EMA for ``cfg.ema`` (None when off); a resumed run carries its average on
    from ``ema.safetensors`` (the raw weights alone would restart it)."""
    if not cfg.ema:
        return None
    ema = AveragedModel(model, device=device, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    if step and (cfg.out / EMA_FILE).exists():
        load_weights(ema.module, cfg.out / EMA_FILE)
        ema.n_averaged.fill_(step)  # not 0: the next update averages instead of copying
    return ema


def train(cfg: TrainConfig, *, resume: bool = False,
          progress: Callable[[int, dict[str, float]], None] | None = None) -> dict:
    """Train ``cfg.model``; returns the training card (also written to ``cfg.out``)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: cuda, but this torch sees no CUDA GPU (torch {torch.__version__}); "
                          "use device: auto (the GPU when there is one) or run it on a CUDA machine")
    device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu")
    spec = get_spec(cfg.model)
    # a fine-tune keeps the architecture its weights were trained with (the shipped `fast` has
    # `glob`), a resumed run its checkpoint's; `model_kwargs` adds to or overrides those options
    start = cfg.out / "last.safetensors" if resume else cfg.weights
    options = (weights_arch(start) if start else {}) | cfg.model_kwargs
    model = spec.builder(**(spec.kwargs | options | ({"init": cfg.init} if cfg.init else {}))).to(device)
    if cfg.drop_loss and getattr(model, "drops", None) is None:
        raise ConfigError(f"drop_loss needs a model with a drop finder (fast with model_kwargs "
                          f"{{drops: true}}); {cfg.model} has none")
    trained = _trainable(model, cfg.train_only)
    files = list_images(cfg.data)
    train_files, val_files = split(files)
    if not val_files:
        log.warning("none of the %d photos in %s is a validation photo (the fixed split holds out about "
                    "1 in 8 by file name): validation is skipped and best.safetensors is the latest "
                    "checkpoint; add photos for a held-out check", len(files), cfg.data)
    train_imgs = [read_rgb(p) for p in train_files]
    val = validation_set([read_rgb(p) for p in val_files], tuple(cfg.val_kinds), seed=1234, crop=cfg.val_crop,
                         multiple=spec.multiple, frame_px=cfg.val_frame_px)
    head = mask_head.attach(model).to(device) if cfg.mask_loss > 0 else None
    params = [{"params": trained}]
    if cfg.new_lr_scale != 1.0:  # parts added at zero to trained weights take bigger steps
        new = {id(p) for name, p in model.named_parameters() if name.startswith(tuple(cfg.new_parts))}
        params = [{"params": [p for p in trained if id(p) not in new]},
                  {"params": [p for p in trained if id(p) in new], "lr_scale": cfg.new_lr_scale}]
    if head is not None:  # a fresh head next to a trained net: it learns at a higher rate
        params.append({"params": list(head.parameters()), "lr_scale": mask_head.LR_SCALE})
    if cfg.optimizer == "sgd-paper":
        opt = torch.optim.SGD(params, lr=cfg.lr)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    state = {"step": 0, "wall_s": 0.0, "history": []}
    started_from = None  # the weights a fine-tune began with, as they were then
    before: dict = {}  # the card of the run being resumed
    if resume:
        if head is not None:
            mask_head.load(head, cfg.out)
        state = load_checkpoint(cfg.out, model, opt)
        # nothing to train: it would only rewrite final.safetensors (unless a run stopped before
        # writing it, after its last checkpoint: then that is what a resume is for)
        if state["step"] >= cfg.steps and (cfg.out / "final.safetensors").exists():
            raise ConfigError(f"{cfg.out}: already trained to step {state['step']} (steps: {cfg.steps}); "
                              f"give --steps above {state['step']} to train on")
        log.info("resumed %s at step %d", cfg.out, state["step"])
        if (cfg.out / "card.json").exists():  # keep the record even if that file changed since
            before = json.loads((cfg.out / "card.json").read_text())
            started_from = before.get("fine_tuned_from")
    elif cfg.weights:
        load_weights(model, cfg.weights, name=cfg.model, allow_missing=tuple(cfg.train_only + cfg.new_parts))
        log.info("fine-tuning from %s", cfg.weights)
        started_from = {"path": str(cfg.weights), "sha256": sha256_file(cfg.weights)}
    if cfg.clean_hard:  # the stream builds the photos' score tables before its workers fork (seconds)
        log.info("scoring hard clean windows (%s) of %d photos", ", ".join(cfg.clean_hard_kinds), len(train_imgs))
    stream, pool_stream = build_streams(cfg, train_imgs, state["step"],
                                        with_mask=head is not None or cfg.drop_loss > 0,
                                        mask_kinds=("raindrop",) if cfg.drop_loss else None)
    loader = torch.utils.data.DataLoader(stream, batch_size=cfg.batch, num_workers=cfg.workers,
                                         persistent_workers=cfg.workers > 0)
    clean_pool = None
    if pool_stream is not None:  # `clean_ohem`'s candidates, from their own workers
        with one_opencv_thread():  # the workers start (fork) here
            clean_pool = iter(torch.utils.data.DataLoader(pool_stream, batch_size=cfg.clean_ohem,
                                                          num_workers=pool_workers(cfg)))
    # MANIFEST.tsv sits in the data folder or, for ../shared/data/images, one level up
    manifest = next((d / "MANIFEST.tsv" for d in (Path(cfg.data), Path(cfg.data).parent)
                     if (d / "MANIFEST.tsv").exists()), Path(cfg.data) / "MANIFEST.tsv")
    card = {
        "model": cfg.model,
        "command": " ".join(["streamer"] + sys.argv[1:]) if sys.argv and "streamer" in sys.argv[0] else "train()",
        "config": json.loads(cfg.model_dump_json()),
        "git_commit": git("rev-parse", "HEAD") or "unknown",
        "git_dirty": code_changed(),
        "data": {"folder": str(cfg.data), "train_images": len(train_files), "val_images": len(val_files),
                 "val_files": [p.name for p in val_files],
                 "manifest_sha256": sha256_file(manifest) if manifest.exists() else None},
        "params": count_params(model), "flops_per_px": count_flops_per_px(copy.deepcopy(model).to("meta"), (720, 1280)),  # as `streamer models`
        "fine_tuned_from": started_from,
        "host": {"python": platform.python_version(), "torch": torch.__version__, "device": str(device)}
        | {k: v for k, v in host().items() if k in ("cpu", "cpu_count", "gpu")},
    }
    if before:
        card = _resumed_card(card, before, state["step"])
    model.to(device).train()
    ema = _ema(cfg, model, state["step"], device)
    net = ema.module if ema is not None else model  # what is validated and saved
    t0 = time.monotonic() - state["wall_s"]  # wall time summed over resumed runs, for the card
    started = time.monotonic()  # max_minutes counts this invocation only
    arch = {ARCH_KEY: options, MODEL_KEY: cfg.model}  # in every weights file: what it is, how built
    step = state["step"]
    running: float | None = None  # the smoothed loss shown and logged; starts at this run's first step
    with one_opencv_thread():  # the workers start (fork) here
        it = iter(loader)
    while step < cfg.steps:
        batch = [t.to(device) for t in next(it)]
        if clean_pool is not None:  # a clean slot's mask is zeros, so masks stay right
            batch = _worst_clean(model, batch, next(clean_pool)[1])
        dirty, clean = batch[0], batch[1]
        for g in opt.param_groups:
            g["lr"] = _lr_at(cfg, step, (time.monotonic() - started) / 60) * g.get("lr_scale", 1.0)
        if head is None and not cfg.drop_loss:
            loss = _loss(cfg.loss, model(dirty), clean, cfg.loss_eps)
        else:
            xs, d1 = model.features(dirty)
            drops = model.drop_logits(xs, d1) if cfg.drop_loss else None  # once, for both losses
            loss = 0.0 if cfg.loss == "none" else _loss(cfg.loss, model.restore(dirty, xs, d1, drops), clean,
                                                        cfg.loss_eps)
            if head is not None:
                loss = loss + cfg.mask_loss * mask_head.mask_bce(head(d1), batch[2])
            if cfg.drop_loss:
                loss = loss + cfg.drop_loss * mask_head.mask_bce(drops, batch[2])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(trained, cfg.clip_grad)
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
        step += 1
        value = float(loss.detach())
        running = value if running is None else 0.98 * running + 0.02 * value  # a resumed run too
        if progress:
            progress(step, {"loss": running, "lr": opt.param_groups[0]["lr"]})
        out_of_time = cfg.max_minutes and (time.monotonic() - started) / 60 >= cfg.max_minutes
        if step % cfg.val_every == 0 or step == cfg.steps or out_of_time:
            metrics = validate(net, val, device)
            best = state.get("best")
            score = val_score(metrics)
            if best is None or score > best["score"] or not val_files:  # no evidence: the latest
                best = {"step": step, "score": score}
                save_weights(net, cfg.out / "best.safetensors", arch | {"step": step, "val_score": score})
            state = {"step": step, "wall_s": time.monotonic() - t0, "best": best,
                     "history": state["history"] + [{"step": step, "loss": running, "val": metrics}]}
            save_checkpoint(cfg.out, model, opt, state, arch)  # the raw weights: training resumes from them
            if ema is not None:
                save_weights(net, cfg.out / EMA_FILE, arch | {"step": step, "ema": cfg.ema})
            if cfg.keep_checkpoints:
                save_weights(net, cfg.out / f"step{step}.safetensors", arch | {"step": step})
            if head is not None:
                mask_head.save(head, cfg.out)
            card |= {"steps": step, "wall_time_s": round(state["wall_s"], 1), "validation": metrics,
                     "best_validation": best}
            (cfg.out / "card.json").write_text(json.dumps(card, indent=2))
            log.info("step %d loss %.4f val %s", step, running, summary(metrics))
            if out_of_time:
                break
    save_weights(net.cpu(), cfg.out / "final.safetensors", arch | {"card": card})
    return card
