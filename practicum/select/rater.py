"""The Alchemist rater: train φ jointly with a proxy θ on a clean validation split, then rate a pool.

Per iteration (one train batch B_tr and one validation batch B_val of B examples each):

    ℓ_i = ℓ_i(θ_t), i ∈ B_tr;  L_val = mean_j ℓ_j(θ_t), j ∈ B_val
    (1) proxy:  w = softmax_B(score_φ(B_tr)) (no grad);  L_w = red(w · ℓ)
                θ ← AdamW step on γ·L_val + (1 − γ)·L_w
    (2) rater:  one of three rules (option `update_rule`), all using θ_t from before step (1):
        first_order  R(φ) = red(w' · sg(ℓ(θ_t)))                 (the released code; default)
        unrolled     θ̂ = θ_t − η Σ w'_i ∇ℓ_i(θ_t) (functional call, create_graph); R(φ) = L_val(θ̂)
        two_model    R(φ) = red(w' · sg(ℓ(θ_t) − ℓ(z_t))), z trained only on Σ w_i ℓ_i(z)
                (an excess-loss, RHO-LOSS-like signal that removes the easiness bias)
        φ ← AdamW step on R (− λ·H(w') if `entropy_reg` = λ > 0)

`red` is `weighted_loss_reduction`: "code" = (1/B) Σ w_i ℓ_i (Σw = 1 per softmax group, then ÷B, as
released) or "sum" = Σ w_i ℓ_i. γ(epoch e, counted from 0) = max(γ_floor, γ_start − 0.03·e). One epoch
is one pass over the validation split unless `iterations_per_epoch` says otherwise.

What makes the rater learn (issue 22; each is a setting, the defaults are the fixes):
- `softmax_group` (8): the batch is cut into groups of 8 rows, each with its own softmax (p, and the
  training weights w) and its own g, as the released launch does (a global batch of 64 over 8 GPUs,
  one softmax per device). DDP averages the devices' gradients, which is (1/B) Σ over the groups.
- `rater_eps` (1e-16): AdamW's ε for the rater. R's gradient is a product of two softmax slopes and
  1/B (≈ 1e-10 per weight even in groups of 8, and shrinking as the losses converge); against the
  default ε = 1e-8 the update would be ≈ lr · g/ε ≈ 0 and only weight decay would move the weights.
  With ε far below √v, Adam is invariant to the gradient's scale, as it is meant to be.
- `draws` ("common"): every row of a batch (train and validation) shares the iteration's K
  stratified (t, noise) draws, fresh each iteration; "per_id" (the earlier default) seeds the draws by
  example id, which makes one row's loss mostly its own draws' luck.
- `proxy_warmup` (500): proxy steps on the hold-out alone before the bilevel loop, so the first
  rater steps already see a proxy whose losses mean something.
The `unrolled` rule's gradient has the same scale (η · w-slope · ∇ℓ·∇L_val) and goes through the same
optimiser, so `rater_eps` fixes it too.

Rating (§4): eval mode, batches of 256 after a seeded shuffle; the rating is p_i·g (no second
softmax), or a_i alone with `mode="instance"`
(as its logit, which keeps the order without saturation ties). Higher rating = the rater wants it more; the
easiest examples sit at the top, which is why Shift-Gsample drops the top slice.

Device and precision (`device`, `dtype`): the rater and the proxies live on `device`; with bf16
or fp16 their forward passes run under autocast in that dtype, while the weights, the optimiser
state, the proxy's noise schedule ᾱ and every loss and rating stay float32 (explicit casts at the
network outputs); fp16 training scales its losses (a `GradScaler` per optimiser, saved for
--resume). Batches, draws and the shuffles are made on the CPU, so they are the same on any device.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from safetensors.torch import save_file
from torch import nn
from torch.func import functional_call

from practicum.config import Settings
from practicum.data import atomic_write_json, atomic_write_with
from practicum.engine import shard_seed
from practicum.errors import ConfigError, ModelError
from practicum.files import layout_of, read_json_object, read_safetensors
from practicum.limits import Count, LearningRate, SeedValue
from practicum.log import progress
from practicum.runtime import parse_dtype, resolve_device
from practicum.select.nets import ClassifierProxy, DiffusionProxy, RaterNet, build_denoiser_proxy
from practicum.select.pool import Batch, common_draws, diffusion_draws

# shard indices of seeds, apart from the training batch streams (0, 1, 2)
DRAW_STREAM = 3  # the common diffusion draws of each step
WARMUP_STREAM = 4  # the proxy warm-up's batches and draws
RATING_STREAM = 7  # the rating shuffle


class RaterSettings(Settings):
    """How to train the rater (every field is written to the run's config.yaml)."""

    update_rule: Literal["first_order", "unrolled", "two_model"] = "first_order"
    proxy: Literal["classifier", "diffusion"] = "classifier"
    heads: Literal["multi", "single"] = "multi"
    feature_dim: Count = 64
    width: Count = 16
    head_hidden: Count = 64
    batch_size: Count = 64
    epochs: Count = 10
    iterations_per_epoch: Count | None = None  # None: one pass over the validation split
    lr: LearningRate = 1e-3
    proxy_lr: LearningRate = 1e-3
    schedule: Literal["lin0", "constant"] = "lin0"
    weight_decay: float = Field(0.05, ge=0)
    grad_clip: float = Field(2.0, gt=0)
    # γ weighs the validation loss against the weighted train loss (γ·L_val + (1 − γ)·L_w), so it stays in [0, 1]
    gamma_start: float = Field(1.0, ge=0, le=1)
    gamma_step: float = Field(0.03, ge=0)
    gamma_floor: float = Field(0.0, ge=0, le=1)
    weighted_loss_reduction: Literal["code", "sum"] = "code"
    entropy_reg: float = 0.0
    lookahead_lr: LearningRate = 0.1
    diffusion_model: str = "tiny"  # "tiny" (MLP ε-model), "builtin" (fresh built-in UNet) or a denoiser spec
    diffusion_draws: Count = 4
    draws: Literal["common", "per_id"] = "common"
    softmax_group: int = Field(8, ge=1)  # rows per softmax (and per g) while training: the released per-GPU batch
    rater_eps: float = Field(1e-16, gt=0)  # AdamW ε of the rater: far below its gradients, so the step is scale-free
    proxy_warmup: int = Field(500, ge=0)  # proxy steps on the hold-out before the bilevel loop (a warm-started proxy)
    seed: SeedValue = 0
    device: str = "cpu"  # cpu, cuda, cuda:N, mps or auto
    dtype: Literal["fp32", "bf16", "fp16"] = "fp32"  # forward passes under autocast; weights stay fp32


# ---------------------------------------------------------------- schedules and optimisers

def gamma_at(settings: RaterSettings, epoch: int) -> float:
    return max(settings.gamma_floor, settings.gamma_start - settings.gamma_step * epoch)


def lin0(step: int, total: int) -> float:
    """The "lin0" multiplier: warm up over total/50 steps from 0.005x, flat for 5 %, linear decay to 0.01x."""
    warm = max(1, round(total / 50))
    flat = round(0.05 * total)
    if step < warm:
        return 0.005 + (1.0 - 0.005) * step / warm
    if step < warm + flat:
        return 1.0
    decay = max(1, total - warm - flat)
    return 1.0 + (0.01 - 1.0) * min(1.0, (step - warm - flat) / decay)


NO_DECAY_MODULES = (nn.Embedding, nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase)


def decay_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, not decayed) parameters, chosen by the module that owns them, not by name.

    No decay on embeddings (label FiLM tables, class embeddings), normalisation layers and any
    1-D parameter (biases); decay on every other weight of >= 2 dims, e.g. the linear layers of
    a time embedding however they are named.
    """
    decay, no_decay = [], []
    for module in model.modules():
        for param in module.parameters(recurse=False):
            exempt = isinstance(module, NO_DECAY_MODULES) or param.ndim < 2
            (no_decay if exempt else decay).append(param)
    return decay, no_decay


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, eps: float = 1e-8) -> torch.optim.AdamW:
    """AdamW(β = 0.9, 0.95); weight decay only on the `decay_groups` weights."""
    decay, no_decay = decay_groups(model)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=eps)


def _reduce(weights: torch.Tensor, values: torch.Tensor, how: str) -> torch.Tensor:
    """"code": (1/B) Σ w_i ℓ_i; "sum": Σ w_i ℓ_i per softmax group, averaged over the groups (as DDP
    averages the devices' losses). Each group's weights sum to 1, so Σ w = the number of groups."""
    total = (weights * values).sum()
    return total / len(values) if how == "code" else total / weights.sum().detach()


def group_softmax(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """A softmax within each consecutive group of `group_size` rows (the last group may be shorter)."""
    return torch.cat([torch.softmax(part, dim=0) for part in scores.split(group_size)])


def initial_rater(settings: "RaterSettings", input_shape: tuple[int, ...], num_classes: int) -> RaterNet:
    """The rater φ as seeded, before any step: the trainer's starting point and the gates' reference."""
    torch.manual_seed(shard_seed(settings.seed, 0, 0) % 2**31)
    return RaterNet(tuple(input_shape), num_classes, settings.feature_dim, settings.width, settings.head_hidden,
                    settings.heads)


# ---------------------------------------------------------------- the trainer

def build_proxy(settings: RaterSettings, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if settings.proxy == "classifier":
        return ClassifierProxy(input_shape, num_classes, settings.width)
    if settings.diffusion_model == "tiny":
        return DiffusionProxy(input_shape, num_classes)
    return build_denoiser_proxy(settings.diffusion_model, input_shape, num_classes)


class RaterTrainer:
    """Holds φ, θ (and z for `two_model`) with their optimisers; `run_epoch(e)` does one epoch."""

    def __init__(self, settings: RaterSettings, input_shape: tuple[int, ...], num_classes: int):
        self.settings = settings
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.device, self.dtype = resolve_device(settings.device), parse_dtype(settings.dtype)
        if settings.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, not {settings.batch_size}")
        # built on the CPU (the same initial weights on any device), then moved
        self.rater = initial_rater(settings, self.input_shape, num_classes).to(self.device)
        self.proxy = build_proxy(settings, self.input_shape, num_classes).to(self.device)
        self.second = build_proxy(settings, self.input_shape, num_classes).to(self.device) \
            if settings.update_rule == "two_model" else None
        self.opt_rater = make_optimizer(self.rater, settings.lr, settings.weight_decay, settings.rater_eps)
        self.opt_proxy = make_optimizer(self.proxy, settings.proxy_lr, settings.weight_decay)
        self.opt_second = make_optimizer(self.second, settings.proxy_lr, settings.weight_decay) \
            if self.second is not None else None
        # fp16 gradients underflow without a loss scale; bf16 and fp32 need none
        self.scalers = {name: torch.amp.GradScaler(self.device.type) for name, opt in
                        (("rater", self.opt_rater), ("proxy", self.opt_proxy), ("second", self.opt_second))
                        if opt is not None} if self.dtype == torch.float16 else {}
        self.step = 0
        self.total_steps = 1

    # -- one iteration
    def _draws(self, batch: Batch, stream: int = DRAW_STREAM):
        """The diffusion draws of this step: shared by the batch ("common") or seeded by id ("per_id")."""
        s = self.settings
        if s.proxy != "diffusion":
            return None
        dim, timesteps = int(math.prod(self.input_shape)), len(self.proxy.alphas_cumprod)
        if s.draws == "common":
            t, noise = common_draws(len(batch.ids), dim, s.diffusion_draws, timesteps,
                                    shard_seed(s.seed, self.step, stream))
        else:
            t, noise = diffusion_draws(batch.ids, dim, s.diffusion_draws, timesteps, s.seed)
        return t.to(self.device), noise.to(self.device)

    @property
    def group_size(self) -> int:
        return min(self.settings.softmax_group, self.settings.batch_size)

    def warm_start(self, val_pool) -> float:
        """`proxy_warmup` plain proxy steps on the hold-out (constant proxy_lr); the last loss."""
        s = self.settings
        batches = val_pool.shuffled_batches(s.batch_size, shard_seed(s.seed, 0, WARMUP_STREAM))
        for group in self.opt_proxy.param_groups:
            group["lr"] = s.proxy_lr
        loss = float("nan")
        for step in range(s.proxy_warmup):
            batch = self._on_device(next(batches))
            draws = None
            if s.proxy == "diffusion":
                dim, timesteps = int(math.prod(self.input_shape)), len(self.proxy.alphas_cumprod)
                t, noise = common_draws(len(batch.ids), dim, s.diffusion_draws, timesteps,
                                        shard_seed(s.seed, step, WARMUP_STREAM))
                draws = (t.to(self.device), noise.to(self.device))
            with self._autocast():
                objective = self.proxy(batch.x, batch.y, draws).float().mean()
            self._clip_step(self.proxy, self.opt_proxy, objective, "proxy")
            loss = float(objective.detach())
        return loss

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def _on_device(self, batch: Batch) -> Batch:
        return Batch(batch.x.to(self.device), batch.y.to(self.device), batch.ids)

    def _set_lr(self) -> None:
        factor = lin0(self.step, self.total_steps) if self.settings.schedule == "lin0" else 1.0
        for opt, base in ((self.opt_rater, self.settings.lr), (self.opt_proxy, self.settings.proxy_lr),
                          (self.opt_second, self.settings.proxy_lr)):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = base * factor

    def _clip_step(self, model: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, name: str) -> None:
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(name)
        if scaler is None:
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), self.settings.grad_clip)
            opt.step()
            return
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # clip the true gradients
        nn.utils.clip_grad_norm_(model.parameters(), self.settings.grad_clip)
        scaler.step(opt)  # skipped when a gradient overflowed
        scaler.update()

    def iteration(self, train: Batch, val: Batch, gamma: float) -> dict[str, float]:
        with self._autocast():
            return self._iteration(self._on_device(train), self._on_device(val), gamma)

    def _iteration(self, train: Batch, val: Batch, gamma: float) -> dict[str, float]:
        s = self.settings
        self._set_lr()
        self.rater.train()
        draws_tr, draws_val = self._draws(train), self._draws(val)  # "common": the same draws for both
        group = self.group_size

        # (1) proxy step with the rater frozen; keep the pre-update train losses for the rater.
        # (network outputs are cast to float32 explicitly: losses and weights are fp32 in any dtype)
        losses_tr = self.proxy(train.x, train.y, draws_tr).float()
        loss_val = self.proxy(val.x, val.y, draws_val).float().mean()
        with torch.no_grad():
            w = group_softmax(self.rater(train.x, train.y, group)["score"].float(), group)
        pre_losses = losses_tr.detach()
        if self.settings.update_rule == "unrolled":
            theta_t = {k: v.detach().clone() for k, v in self.proxy.named_parameters()}
        proxy_objective = gamma * loss_val + (1 - gamma) * _reduce(w, losses_tr, s.weighted_loss_reduction)
        self._clip_step(self.proxy, self.opt_proxy, proxy_objective, "proxy")

        # (2) rater step from θ_t.
        w_grad = group_softmax(self.rater(train.x, train.y, group)["score"].float(), group)
        record: dict[str, float] = {"loss_val": float(loss_val.detach()), "loss_train": float(pre_losses.mean())}
        if s.update_rule == "first_order":
            objective = _reduce(w_grad, pre_losses, s.weighted_loss_reduction)
        elif s.update_rule == "two_model":
            second_losses = self.second(train.x, train.y, draws_tr).float()
            excess = pre_losses - second_losses.detach()
            objective = _reduce(w_grad, excess, s.weighted_loss_reduction)
            self._clip_step(self.second, self.opt_second, (w * second_losses).sum() / w.sum(), "second")
            record["excess_mean"] = float(excess.mean())
        else:
            objective = self._lookahead_objective(theta_t, train, val, w_grad, draws_tr, draws_val)
            record["loss_val_lookahead"] = float(objective.detach())
        if s.entropy_reg > 0:
            objective = objective + s.entropy_reg * (w_grad * torch.log(w_grad + 1e-12)).sum()
        self._clip_step(self.rater, self.opt_rater, objective, "rater")
        self.step += 1
        record["weight_ratio"] = float(w.max() / w.min())
        return record

    def _lookahead_objective(self, theta_t, train: Batch, val: Batch, weights, draws_tr, draws_val) -> torch.Tensor:
        """L_val(θ_t − η Σ w_i(φ) ∇ℓ_i(θ_t)): one differentiable SGD step through `torch.func`."""
        weights = weights / weights.sum().detach()  # a weighted mean over the batch (one step, any group count)
        params = {k: v.requires_grad_(True) for k, v in theta_t.items()}
        inner = (weights * functional_call(self.proxy, params, (train.x, train.y, draws_tr)).float()).sum()
        grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
        stepped = {k: p - self.settings.lookahead_lr * g for (k, p), g in zip(params.items(), grads)}
        return functional_call(self.proxy, stepped, (val.x, val.y, draws_val)).float().mean()

    # -- epochs
    def run_epoch(self, epoch: int, train_pool, val_pool, iterations: int) -> dict[str, float]:
        """Fresh seeded streams per epoch, so a resumed run draws exactly the same batches."""
        s = self.settings
        gamma = gamma_at(s, epoch)
        train_batches = train_pool.shuffled_batches(s.batch_size, shard_seed(s.seed, epoch, 0))
        val_batches = val_pool.shuffled_batches(s.batch_size, shard_seed(s.seed, epoch, 1))
        torch.manual_seed(shard_seed(s.seed, epoch, 2) % 2**31)
        records = [self.iteration(next(train_batches), next(val_batches), gamma) for _ in range(iterations)]
        summary = {k: float(np.mean([r[k] for r in records])) for k in records[0]}
        return {"epoch": epoch, "gamma": gamma, **summary}

    # -- state for --resume
    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {"step": self.step}
        models = {"rater": self.rater, "proxy": self.proxy, "second": self.second}
        opts = {"rater": self.opt_rater, "proxy": self.opt_proxy, "second": self.opt_second}
        for name, model in models.items():
            if model is not None:
                tensors.update({f"{name}.{k}": v.detach().cpu().clone().contiguous()
                                for k, v in model.state_dict().items()})
        for name, opt in opts.items():
            if opt is not None:
                flat, info = _flatten_optimizer(opt.state_dict(), f"opt_{name}")
                tensors.update(flat)
                meta[f"opt_{name}"] = info
        if self.scalers:
            meta["grad_scalers"] = {name: scaler.state_dict() for name, scaler in self.scalers.items()}
        return tensors, meta

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.step = int(meta["step"])
        models = {"rater": self.rater, "proxy": self.proxy, "second": self.second}
        opts = {"rater": self.opt_rater, "proxy": self.opt_proxy, "second": self.opt_second}
        for name, model in models.items():
            if model is not None:
                prefix = f"{name}."
                model.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        for name, opt in opts.items():
            if opt is not None:
                opt.load_state_dict(_unflatten_optimizer(tensors, meta[f"opt_{name}"], f"opt_{name}"))
        for name, state in meta.get("grad_scalers", {}).items():
            if name in self.scalers:
                self.scalers[name].load_state_dict(state)


def _flatten_optimizer(state: dict, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for pid, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{key}"] = value.detach().cpu().clone().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], info: dict, prefix: str) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            pid, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    for name, value in info["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": info["param_groups"]}


def train_rater(settings: RaterSettings, train_pool, val_pool, *, start_epoch: int = 0,
                trainer: RaterTrainer | None = None, on_epoch=None) -> RaterTrainer:
    """Train for `settings.epochs` epochs; `on_epoch(trainer, record)` runs after each (checkpointing)."""
    if trainer is None:
        trainer = RaterTrainer(settings, train_pool.input_shape, max(train_pool.num_classes, val_pool.num_classes))
    iterations = settings.iterations_per_epoch or max(1, math.ceil(len(val_pool) / settings.batch_size))
    trainer.total_steps = settings.epochs * iterations
    if start_epoch == 0 and trainer.step == 0 and settings.proxy_warmup > 0:
        trainer.warm_start(val_pool)
    for epoch in progress(range(start_epoch, settings.epochs), "rater epochs", total=settings.epochs - start_epoch):
        record = trainer.run_epoch(epoch, train_pool, val_pool, iterations)
        if on_epoch is not None:
            on_epoch(trainer, record)
    return trainer


# ---------------------------------------------------------------- rating

@torch.no_grad()
def rate_batch(rater: RaterNet, x: torch.Tensor, y: torch.Tensor, mode: str = "group",
               dtype: "str | torch.dtype | None" = None) -> np.ndarray:
    """Ratings of one batch: p·g (the paper's stored rating) or the instance head alone (`mode="instance"`).

    The instance rating is the pre-sigmoid logit of a: the same order as a, without the ties a
    saturated float32 sigmoid leaves at 0 and 1. The batch goes to the rater's device; with a
    bf16/fp16 `dtype` the forward pass runs under autocast and the ratings come back as float64.
    """
    rater.eval()
    device, dtype = next(rater.parameters()).device, parse_dtype(dtype)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        out = rater(x.to(device), y.to(device))
    return (out["score"] if mode == "group" else out["logit"]).double().cpu().numpy()


@torch.no_grad()
def proxy_losses(trainer: RaterTrainer, x: torch.Tensor, y: torch.Tensor, *, draws: int = 16, seed: int = 0,
                 batch_size: int = 256) -> np.ndarray:
    """Each row's loss under the trainer's proxy θ; a diffusion proxy uses one set of `draws` stratified
    common draws for every row, so the losses rank the rows by image, not by draw (the gates' and the
    benchmark's loss ranking: easy = low)."""
    proxy = trainer.proxy
    was_training = proxy.training
    proxy.eval()
    out = np.empty(len(y))
    fixed = None
    if trainer.settings.proxy == "diffusion":
        t, noise = common_draws(1, int(math.prod(trainer.input_shape)), draws, len(proxy.alphas_cumprod), seed)
        fixed = (t[0].to(trainer.device), noise[0].to(trainer.device))
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size].to(trainer.device), y[start:start + batch_size].to(trainer.device)
        batch_draws = None if fixed is None else (fixed[0].expand(len(yb), -1), fixed[1].expand(len(yb), -1, -1))
        with trainer._autocast():
            out[start:start + len(yb)] = proxy(xb, yb, batch_draws).float().cpu().numpy()
    proxy.train(was_training)
    return out


def rating_batches(n: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """The one batch layout of a rating pass over n examples: a seeded shuffle cut into even batches.

    `rate()` and `practicum score` both use it (score hands whole batches to shards), so group
    ratings do not depend on the shard size or the engine; only on (seed, batch_size).
    """
    order = np.random.default_rng(shard_seed(seed, 0, RATING_STREAM)).permutation(n)
    return even_batches(order, batch_size)


def rate(rater: RaterNet, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256, seed: int = 0,
         mode: str = "group") -> np.ndarray:
    """Rate in-memory examples: seeded shuffle, batches of `batch_size`, ratings back in input order.

    `mode="group"` is the paper's p_i·g and depends on which examples share a batch (p is a
    batch softmax, g a batch statistic); `mode="instance"` (a_i's logit) does not. Within a
    batch both give the same order, so instance is the composition-free limit of group.
    """
    if mode not in ("group", "instance"):
        raise ValueError(f"mode must be 'group' or 'instance', not {mode!r}")
    scores = np.empty(len(y))
    for idx in rating_batches(len(y), batch_size, seed):
        scores[idx] = rate_batch(rater, x[idx], y[idx], mode)
    return scores


def even_batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """ceil(N / batch_size) batches of nearly equal size (differing by at most one).

    p_i is a softmax over the batch, so p ≈ 1/|batch|: a ragged last batch of 10 would rate
    every member ~25x higher than a full batch of 256. Equal sizes keep batches comparable.
    """
    if len(order) == 0:
        return []
    return np.array_split(order, math.ceil(len(order) / batch_size))


# ---------------------------------------------------------------- checkpoints

def save_rater(path: str | Path, rater: RaterNet, meta: dict[str, Any]) -> None:
    """`path` (.safetensors) with the weights and `path` with .json beside it (architecture + provenance)."""
    path = Path(path)
    weights = {k: v.detach().cpu().clone().contiguous() for k, v in rater.state_dict().items()}
    atomic_write_with(path, lambda tmp: save_file(weights, tmp))
    atomic_write_json(path.with_suffix(".json"), meta)


def rater_meta(trainer: RaterTrainer, epoch: int, record: dict | None = None) -> dict[str, Any]:
    s = trainer.settings
    return {"format": "practicum-rater/1", "epoch": epoch, "input_shape": list(trainer.input_shape),
            "num_classes": trainer.num_classes, "feature_dim": s.feature_dim, "width": s.width,
            "head_hidden": s.head_hidden, "heads": s.heads, "settings": s.model_dump(mode="json"),
            "last_epoch": record}


def load_rater(path: str | Path) -> tuple[RaterNet, dict[str, Any]]:
    """A rater checkpoint: a `practicum rate` run folder, its rater.safetensors or its rater.json."""
    path = Path(path)
    if path.is_dir():
        path = path / "rater.safetensors"
    elif path.suffix == ".json":  # the sidecar names the same checkpoint
        path = path.with_suffix(".safetensors")
    meta_path = path.with_suffix(".json")
    fix = "give a `practicum rate` run folder or its rater.safetensors, or retrain it with `practicum rate`"
    if not path.is_file() or not meta_path.is_file():
        raise ModelError(f"no rater checkpoint at {path} (with {meta_path.name})", fix)
    meta = read_json_object(meta_path, ModelError, fix, {"input_shape": list, "num_classes": int,
                                                         "feature_dim": int, "width": int, "head_hidden": int,
                                                         "heads": str})
    shape = meta["input_shape"]
    sizes = [*shape, meta["num_classes"], meta["feature_dim"], meta["width"], meta["head_hidden"]]
    if (len(shape) not in (1, 3) or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65536
                                   for v in sizes) or meta["heads"] not in ("multi", "single")):
        raise ModelError(f"{meta_path}: input_shape must be [channels, height, width] or [dim], the sizes 1..65536, "
                         "heads multi or single", fix)
    try:
        rater = RaterNet(tuple(shape), meta["num_classes"], meta["feature_dim"], meta["width"],
                         meta["head_hidden"], meta["heads"])
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{meta_path} describes no buildable rater: {str(exc).splitlines()[0][:200]}", fix) from None
    rater.load_state_dict(read_safetensors(path, ModelError, fix, expect=layout_of(rater)))
    rater.eval()
    return rater, meta


def check_rater_matches(meta: dict[str, Any], image_shape, num_classes: int, where: str, data: str) -> None:
    """Refuse a rater built for other inputs than the data it is asked to score, or for fewer classes."""
    if tuple(meta["input_shape"]) != tuple(image_shape) or meta["num_classes"] < num_classes:
        raise ModelError(f"the rater {where} was trained on {meta['num_classes']} classes of "
                         f"{'x'.join(map(str, meta['input_shape']))} inputs but {data} has {num_classes} of "
                         f"{'x'.join(map(str, image_shape))}", "score with a rater trained on this data")


__all__ = ["RaterSettings", "RaterTrainer", "check_rater_matches", "even_batches", "gamma_at",
           "group_softmax", "initial_rater", "lin0", "load_rater", "make_optimizer", "proxy_losses", "rate", "rate_batch",
           "rater_meta", "rating_batches", "decay_groups", "save_rater", "train_rater"]
