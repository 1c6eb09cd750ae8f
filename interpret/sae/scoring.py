"""Scoring counterfactual prompt sets: continuation log-probabilities under an optional intervention."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..lm.prompts import PromptSet
from .splice import Capture, capture_hook, sae_edit_hook


@dataclass(frozen=True)
class Seq:
    template: int
    group: int      # 0 = group 1, 1 = group 2, 2 = neutral
    filler: int
    pair: int
    side: int       # 0 = a, 1 = b
    prompt_len: int
    ids: tuple[int, ...]


@dataclass
class Deltas:
    """Δ = log P(a) − log P(b), averaged over continuation pairs; arrays are [template, filler]."""

    g1: np.ndarray
    g2: np.ndarray
    neutral: np.ndarray

    @property
    def gap(self) -> float:
        return float(self.g1.mean() - self.g2.mean())


def _ids(model: Any, text: str, bos: bool) -> list[int]:
    return [int(t) for t in model.to_tokens(text, prepend_bos=bos)[0].tolist()]


class PromptScorer:
    def __init__(self, model: Any, pset: PromptSet, hook: str, batch_size: int = 64):
        self.model, self.pset, self.hook, self.batch_size = model, pset, hook, batch_size
        groups = (pset.group1, pset.group2, pset.neutral)
        self.shape = [(len(pset.templates), len(g)) for g in groups]
        self.seqs: list[Seq] = []
        self.decision: list[tuple[int, int, int, tuple[int, ...]]] = []  # (template, group, filler, ids)
        cont = [(_ids(model, a, False), _ids(model, b, False)) for a, b in pset.continuations]
        common = _common_prefix([c for pair in cont for c in pair])
        for t, template in enumerate(pset.templates):
            for g, fillers in enumerate(groups):
                for f, filler in enumerate(fillers):
                    prompt = _ids(model, pset.prompt(template, filler), True)
                    self.decision.append((t, g, f, tuple(prompt + common)))
                    for p, pair in enumerate(cont):
                        for side, c in enumerate(pair):
                            self.seqs.append(Seq(t, g, f, p, side, len(prompt), tuple(prompt + c)))
        self._batches = self._batch([len(s.ids) - 1 for s in self.seqs])
        self._decision_batches = self._batch([len(d[3]) for d in self.decision])

    def _batch(self, lengths: list[int]) -> list[list[int]]:
        by_len: dict[int, list[int]] = defaultdict(list)
        for i, n in enumerate(lengths):
            by_len[n].append(i)
        out = []
        for _, idx in sorted(by_len.items()):
            out.extend(idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size))
        return out

    def _forward(self, tokens: torch.Tensor, hook_fn: Callable | None) -> torch.Tensor:
        if hook_fn is None:
            return self.model(tokens)
        return self.model.run_with_hooks(tokens, fwd_hooks=[(self.hook, hook_fn)])

    def logprobs(self, hook_fn: Callable | None = None, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum of continuation log-probs per sequence; with `weights`, backpropagates Σ w·logp."""
        out = np.zeros(len(self.seqs))
        for idx in self._batches:
            toks = torch.tensor([self.seqs[i].ids[:-1] for i in idx])
            targets = torch.tensor([self.seqs[i].ids[1:] for i in idx])
            with torch.set_grad_enabled(weights is not None):
                logp = self._forward(toks, hook_fn).float().log_softmax(-1).gather(-1, targets[..., None])[..., 0]
                mask = torch.zeros_like(logp)
                for row, i in enumerate(idx):
                    mask[row, self.seqs[i].prompt_len - 1:] = 1.0
                seq_lp = (logp * mask).sum(-1)
                if weights is not None:
                    (seq_lp * torch.tensor(weights[idx], dtype=seq_lp.dtype)).sum().backward()
            out[idx] = seq_lp.detach().numpy()
        return out

    def to_deltas(self, lp: np.ndarray) -> Deltas:
        arrays = [np.zeros(s) for s in self.shape]
        counts = [np.zeros(s) for s in self.shape]
        for s, v in zip(self.seqs, lp):
            arrays[s.group][s.template, s.filler] += v if s.side == 0 else -v
            counts[s.group][s.template, s.filler] += 0.5
        return Deltas(*[a / np.maximum(c, 1) for a, c in zip(arrays, counts)])

    def deltas(self, hook_fn: Callable | None = None) -> Deltas:
        with torch.no_grad():
            return self.to_deltas(self.logprobs(hook_fn))

    def gap_weights(self) -> np.ndarray:
        """Weights w so that Σ w·logp over sequences equals the gap (neutral fillers excluded)."""
        w = np.zeros(len(self.seqs))
        n_pairs = len(self.pset.continuations)
        for i, s in enumerate(self.seqs):
            if s.group == 2:
                continue
            n = self.shape[s.group][0] * self.shape[s.group][1] * n_pairs
            w[i] = (1.0 if s.side == 0 else -1.0) * (1.0 if s.group == 0 else -1.0) / n
        return w

    def attribution(self, sae: Any) -> np.ndarray:
        """Σ over sequences and positions of activation × gradient of the gap, per latent (error term kept)."""
        total = torch.zeros(int(sae.cfg.d_sae))
        weights = self.gap_weights()
        for idx in self._batches:
            cap = Capture(grad=True)
            hook_fn = sae_edit_hook(sae, capture=cap)
            toks = torch.tensor([self.seqs[i].ids[:-1] for i in idx])
            targets = torch.tensor([self.seqs[i].ids[1:] for i in idx])
            logp = self._forward(toks, hook_fn).float().log_softmax(-1).gather(-1, targets[..., None])[..., 0]
            mask = torch.zeros_like(logp)
            for row, i in enumerate(idx):
                mask[row, self.seqs[i].prompt_len - 1:] = 1.0
            ((logp * mask).sum(-1) * torch.tensor(weights[idx], dtype=logp.dtype)).sum().backward()
            acts = cap.acts[0]
            total += (acts * acts.grad).sum(dim=(0, 1)).detach()
        return total.numpy()

    def activations(self, sae: Any | None = None) -> dict[str, np.ndarray]:
        """Per prompt (+ shared continuation prefix): hook activations at the decision position and
        averaged over positions; with an SAE, its latents at the decision position and max over positions."""
        n = len(self.decision)
        out: dict[str, np.ndarray] = {}
        for idx in self._decision_batches:
            store: list[torch.Tensor] = []
            with torch.no_grad():
                self._forward(torch.tensor([self.decision[i][3] for i in idx]), capture_hook(store))
                x = store[0]
                parts = {"resid_last": x[:, -1], "resid_mean": x[:, 1:].mean(1)}
                if sae is not None:
                    acts = sae.encode(x[:, 1:])
                    parts |= {"sae_last": acts[:, -1], "sae_max": acts.max(1).values}
            for k, v in parts.items():
                if k not in out:
                    out[k] = np.zeros((n, v.shape[-1]), dtype=np.float32)
                out[k][idx] = v.float().numpy()
        out["template"] = np.array([d[0] for d in self.decision])
        out["group"] = np.array([d[1] for d in self.decision])
        out["filler"] = np.array([d[2] for d in self.decision])
        return out


def _common_prefix(seqs: list[list[int]]) -> list[int]:
    prefix: list[int] = []
    for items in zip(*seqs):
        if len(set(items)) != 1:
            break
        prefix.append(items[0])
    return prefix
