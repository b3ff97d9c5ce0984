"""The LightningModule: a Hugging Face LLaMA (or GPT-2) decoder, its optimizer, schedule and loss."""

import math
from functools import cached_property
from pathlib import Path
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info

from classit.checkpoint_io import load_checkpoint
from classit.data.chat import IGNORE_INDEX
from classit.data.plan import CurriculumPlan
from classit.decoder import Attention, build_decoder, resolve_attention
from classit.export import (TOKENIZER_KEY, check_same_tokenizer, load_pretrained, save_pretrained, tokenizer_from_bytes,
                            tokenizer_to_bytes)
from classit.lightning_state import should_log
from classit.optim import Phase, Schedule, StagePlan, parameter_groups


class BabyLM(L.LightningModule):
    """A small decoder LM trained on next-token prediction over the target (non ``-100``) tokens.

    The loss of an optimizer step is the mean over every target token of the step: all
    micro-batches of gradient accumulation and all DDP ranks, not a mean of micro-batch means.
    """

    def __init__(
        self,
        vocab_size: int = 16384,
        arch: Literal["llama", "gpt2"] = "llama",
        n_layer: int = 12,
        n_embd: int = 768,
        n_head: int = 12,
        intermediate_size: int | None = 2048,
        block_size: int = 512,
        tie_embeddings: bool = True,
        dropout: float = 0.0,
        lr: float = 6e-4,
        min_lr_ratio: float = 0.1,
        warmup: float = 0.01,
        weight_decay: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.95),
        init_from: str | None = None,
        special_ids: dict[str, int] | None = None,
        attn_implementation: Attention = "auto",
        compile: bool = False,
    ):
        """
        Args:
            vocab_size: linked from the data module's tokenizer.
            arch: ``llama`` (RMSNorm, SwiGLU, rotary) or ``gpt2``.
            n_layer / n_embd / n_head / intermediate_size: decoder size (MLP width; None: 4 × n_embd).
            block_size: context length in tokens.
            lr / min_lr_ratio / warmup: linear warm-up to ``lr`` over the fraction ``warmup`` of the first phase's
                optimizer steps (the whole run unless a stage starts a new phase), then cosine to ``lr × min_lr_ratio``
                at its last step.
            weight_decay: AdamW decay on matrices only (not on norms, biases and embeddings).
            init_from: start from these weights: a Lightning checkpoint or a Hugging Face folder (its tokenizer
                must be the run's).
            special_ids: bos/eos/pad token ids, linked from the tokenizer.
            attn_implementation: ``auto`` (flash_attention_2 where installed on CUDA, else sdpa), ``sdpa``,
                ``flex_attention`` (GPU only for training), ``flash_attention_2`` or ``eager``.
            compile: ``torch.compile`` the decoder.
        """
        super().__init__()
        self.save_hyperparameters()
        self.attention = resolve_attention(attn_implementation)  # the attn_implementation in use (no public getter)
        self.model = build_decoder(arch, vocab_size, n_layer, n_embd, n_head, intermediate_size, block_size,
                                   tie_embeddings, dropout, special_ids, self.attention)
        self.tokenizer = None
        self.init_tokenizer = None  # the tokenizer that came with init_from's weights
        if init_from:
            self.load_weights(init_from)
        if compile:
            self.model.compile()
        self.register_buffer("tokens_seen", torch.zeros((), dtype=torch.float64))
        self.register_buffer("words_seen", torch.zeros((), dtype=torch.float64))
        self._step_totals = None  # (target tokens, summed loss, words) of the current optimizer step on this rank
        self.val_names = ["val"]
        self.plan: CurriculumPlan | None = None  # the curriculum's plan (:meth:`connect`)
        self.schedule: Schedule | None = None  # the LR phases, set with the optimizer
        rank_zero_info(f"BabyLM ({arch}): {self.num_parameters() / 1e6:.2f}M parameters")

    def num_parameters(self) -> int:
        """Parameters counted once (tied embeddings once)."""
        return sum(p.numel() for p in self.model.parameters())

    @cached_property
    def flops_per_token(self) -> int:
        """Training FLOPs per token: 6 × parameters plus attention (the PaLM/nanoGPT estimate); an embedding table
        that is only looked up (the tokens' when untied, GPT-2's positions') takes no FLOPs."""
        cfg, output = self.model.config, self.model.get_output_embeddings().weight
        lookups = sum(m.weight.numel() for m in self.model.modules()
                      if isinstance(m, torch.nn.Embedding) and m.weight is not output)
        attention = 12 * cfg.num_hidden_layers * cfg.hidden_size * self.hparams.block_size
        return 6 * (self.num_parameters() - lookups) + attention

    def training_memory(self, sequences: int, half: bool = False) -> int:
        """Bytes that training one micro-batch of ``sequences`` × ``block_size`` tokens holds at its peak: float32
        weights, gradients and AdamW moments, the activations kept for backward (``half``: 16-bit ones) and the
        logits with their float32 log-probabilities and gradient (within 3% of the measured peak on CPU)."""
        hp, width = self.hparams, 2 if half else 4
        mlp = hp.intermediate_size or 4 * hp.n_embd
        per_token = hp.n_layer * (10 * hp.n_embd + 4 * mlp) * width + hp.vocab_size * (width + 8)
        return 16 * self.num_parameters() + sequences * hp.block_size * per_token

    def load_weights(self, path: str) -> None:
        """Copy weights from a Lightning checkpoint or a Hugging Face folder; shapes must match."""
        if Path(path).is_dir():
            source, self.init_tokenizer = load_pretrained(path, own_code_advice=(
                "which fit does not run: it copies weights into its own decoder (model.arch llama or gpt2), so "
                "model.init_from takes a classit checkpoint or a Hugging Face folder of those architectures"))
            state = source.state_dict()
        else:
            checkpoint = load_checkpoint(path)
            state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
            if TOKENIZER_KEY in checkpoint:
                self.init_tokenizer = tokenizer_from_bytes(checkpoint[TOKENIZER_KEY])
        own = self.model.state_dict()
        wrong = [f"{k}: {tuple(v.shape)} there, {tuple(own[k].shape)} here" for k, v in state.items()
                 if k in own and v.shape != own[k].shape]
        if wrong:
            raise ValueError(f"{path}: weights do not fit this model (is the tokenizer the same?): " + "; ".join(wrong[:3]))
        missing = self.model.load_state_dict(state, strict=False).missing_keys
        missing = [k for k in missing if not k.endswith("lm_head.weight") or not self.hparams.tie_embeddings]
        if missing:
            raise ValueError(f"{path}: missing weights for this model: {missing[:5]}")
        loaded = self.model.state_dict()
        if any(k in loaded and not torch.equal(loaded[k], v) for k, v in state.items()):
            raise ValueError(f"{path}: its output layer is not tied to its embeddings; set model.tie_embeddings: false")

    def connect(self, plan: CurriculumPlan, tokenizer, val_sources: list[str]) -> None:
        """Take the curriculum's plan (its stages' steps and phases), the run's tokenizer and the sources whose
        validation loss is logged; the CLI hands them in once the data is set up, before this module's setup."""
        self.plan, self.tokenizer, self.val_names = plan, tokenizer, list(val_sources) or ["val"]

    def setup(self, stage: str) -> None:
        self._check_attention(stage)
        if self.tokenizer is not None:
            if len(self.tokenizer) != self.hparams.vocab_size:
                raise ValueError(f"data.vocab_size: {self.hparams.vocab_size}, but the tokenizer "
                                 f"{self.tokenizer.name_or_path} has {len(self.tokenizer)} tokens (a small corpus "
                                 f"has no more merges); set data.vocab_size: {len(self.tokenizer)}")
            if self.init_tokenizer is not None:
                check_same_tokenizer(self.init_tokenizer, self.tokenizer, f"model.init_from {self.hparams.init_from}")
        block = torch.zeros(1, self.hparams.block_size, dtype=torch.long)
        self.example_input_array = ({"input_ids": block, "labels": block},)  # the model summary's FLOPs: one block

    def _check_attention(self, stage: str) -> None:
        """Flash attention computes in 16 bits only (``auto`` then takes sdpa); flex attention has no CPU backward."""
        half = self.trainer.precision.startswith(("16", "bf16"))
        if self.attention == "flash_attention_2" and not half:
            if self.hparams.attn_implementation != "auto":
                raise ValueError("model.attn_implementation: flash_attention_2 needs trainer.precision bf16-mixed "
                                 f"or 16-mixed, not {self.trainer.precision}")
            self.attention = "sdpa"
            self.model.set_attn_implementation(self.attention)
        if self.attention == "flex_attention" and stage == "fit" and self.trainer.strategy.root_device.type == "cpu":
            raise ValueError("model.attn_implementation: flex_attention cannot train on CPU (PyTorch has no backward "
                             "for it there); use sdpa")

    def forward(self, batch: dict) -> torch.Tensor:
        """Summed cross-entropy over the batch's target tokens, and their count.

        Packed rows (``position_ids`` restarting at 0 at each example, no ``attention_mask``) keep their examples
        apart: with ``use_cache=False`` transformers builds the block-diagonal mask for sdpa, eager and flex
        attention, while flash attention finds the examples' bounds in one row only, so the rows go in as one.
        """
        ids, positions = batch["input_ids"], batch.get("position_ids")
        if positions is not None and self.attention == "flash_attention_2":
            logits = self.model(input_ids=ids.view(1, -1), position_ids=positions.view(1, -1),
                                use_cache=False).logits.view(*ids.shape, -1)
        else:
            logits = self.model(input_ids=ids, attention_mask=batch.get("attention_mask"), position_ids=positions,
                                use_cache=False).logits
        labels = F.pad(batch["labels"][:, 1:], (0, 1), value=IGNORE_INDEX)  # shift the labels, not the (large) logits
        loss_sum = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX,
                                   reduction="sum")
        return loss_sum, (labels != IGNORE_INDEX).sum()

    def _accumulate(self, batch: dict, totals: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        loss_sum, targets = self(batch)
        words = batch["words"].sum().double() if "words" in batch else torch.zeros((), device=loss_sum.device)
        step = torch.stack([targets.double(), loss_sum.detach().double(), words.double()])
        return loss_sum, step if totals is None else totals + step

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.flops_per_batch = self.flops_per_token * batch["input_ids"].numel()  # read by TokenThroughputMonitor
        loss_sum, self._step_totals = self._accumulate(batch, self._step_totals)
        return loss_sum  # rescaled to a per-token mean in on_before_optimizer_step

    def on_before_optimizer_step(self, optimizer) -> None:
        self.finish_step()

    def finish_step(self) -> None:
        """Once per optimizer step, after backward: turn the accumulated summed gradients into the gradient of the
        mean over all target tokens, count tokens and words, set ``step_loss`` and log. Lightning calls the callbacks'
        ``on_before_optimizer_step`` before the module's, so a callback that needs ``step_loss`` calls this first; a
        second call in the same step does nothing."""
        if self._step_totals is None:
            return
        totals = self.trainer.strategy.reduce(self._step_totals, reduce_op="sum")
        self._step_totals = None
        targets = totals[0].clamp(min=1)
        scale = (self.trainer.accumulate_grad_batches * self.trainer.world_size / targets).float()
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, scale)  # one call for all gradients, not one per tensor
        self.tokens_seen += totals[0]
        self.words_seen += totals[2]
        self.step_loss = totals[1] / targets  # read by classit.train.NonFiniteGuard
        if not should_log(self.trainer):
            return  # Lightning writes step metrics only every log_every_n_steps; self.log's bookkeeping is not free
        metrics = {"train/loss": self.step_loss, "train/tokens_seen": self.tokens_seen,
                   "train/words_seen": self.words_seen}
        self.log_dict({k: v.float() for k, v in metrics.items()}, prog_bar=False, rank_zero_only=True)
        self.log("loss", metrics["train/loss"].float(), prog_bar=True, logger=False, rank_zero_only=True)

    def on_validation_epoch_start(self) -> None:
        self._val_totals = torch.zeros(len(self.val_names), 2, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.flops_per_batch = self.flops_per_token // 3 * batch["input_ids"].numel()  # forward only
        loss_sum, targets = self(batch)
        row = self.val_names.index(batch["source"][0]) if "source" in batch else 0
        self._val_totals[row] += torch.stack([targets.double(), loss_sum.double()])

    def on_validation_epoch_end(self) -> None:
        """``val/loss/SOURCE`` per source and ``val/loss`` over all of them: means over target tokens of every rank."""
        sums = self.trainer.strategy.reduce(self._val_totals, reduce_op="sum")
        metrics = {f"val/loss/{name}": (s[1] / s[0]).item() for name, s in zip(self.val_names, sums) if s[0] > 0}
        total = sums.sum(0)
        loss = (total[1] / total[0].clamp(min=1)).item()
        metrics.update({"val/loss": loss, "val/ppl": math.exp(min(loss, 50))})
        self.log_dict(metrics, prog_bar=False, rank_zero_only=True)
        self.log("val_loss", loss, prog_bar=True, logger=False, rank_zero_only=True)

    def build_schedule(self) -> Schedule:
        """The LR phases: the curriculum plan's, the first phase from ``lr``, ``warmup`` and ``min_lr_ratio`` unless
        its stage names one; without a curriculum, one phase of Lightning's step estimate."""
        first = Phase(self.hparams.lr, self.hparams.warmup, self.hparams.min_lr_ratio)
        if self.plan is not None:
            return self.plan.schedule(first)
        run = StagePlan("run", max(int(self.trainer.estimated_stepping_batches), 1))
        return Schedule.build([run], first, self.trainer.max_steps)

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        """A phase with ``reset_optimizer`` starts from a fresh AdamW state (its moments are not carried over)."""
        if self.schedule.starts_fresh(self.trainer.global_step):
            for optimizer in self.trainer.optimizers:
                optimizer.state.clear()

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(parameter_groups(self.model, self.hparams.weight_decay), lr=self.hparams.lr,
                                      betas=self.hparams.betas, fused=self.device.type == "cuda")
        self.schedule, base = self.build_schedule(), self.hparams.lr
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: self.schedule.lr(step, base) / base)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the tokenizer inside the checkpoint so any checkpoint exports on its own."""
        if self.tokenizer is not None:
            checkpoint[TOKENIZER_KEY] = tokenizer_to_bytes(self.tokenizer)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Take the checkpoint's tokenizer; resuming with another tokenizer than the run's stops here."""
        if TOKENIZER_KEY not in checkpoint:
            return
        stored = tokenizer_from_bytes(checkpoint[TOKENIZER_KEY])
        if self.tokenizer is not None:
            check_same_tokenizer(stored, self.tokenizer, "the checkpoint to resume")
        else:
            self.tokenizer = stored

    def save_pretrained(self, out: str | Path) -> None:
        """Write a Hugging Face folder (model and tokenizer) that ``from_pretrained`` loads."""
        save_pretrained(self.model, self.tokenizer, out)

