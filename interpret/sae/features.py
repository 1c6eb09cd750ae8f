"""What a latent does, from local evidence only: density and max-activating contexts on held-out text,
the tokens its decoder direction promotes (logit lens) and a label derived from those facts."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .splice import capture_hook


@dataclass
class HeldoutActs:
    """Sparse SAE activations over held-out rows (BOS positions excluded)."""

    rows: np.ndarray        # [R, ctx] token ids
    row: np.ndarray         # COO entries
    pos: np.ndarray
    latent: np.ndarray
    value: np.ndarray
    d_sae: int

    @property
    def n_tokens(self) -> int:
        return int(self.rows.shape[0] * (self.rows.shape[1] - 1))

    def density(self) -> np.ndarray:
        return np.bincount(self.latent, minlength=self.d_sae) / max(1, self.n_tokens)

    def mean_active(self) -> np.ndarray:
        s = np.bincount(self.latent, weights=self.value, minlength=self.d_sae)
        c = np.bincount(self.latent, minlength=self.d_sae)
        return np.where(c > 0, s / np.maximum(c, 1), 0.0)

    def values(self, f: int) -> np.ndarray:
        return self.value[self.latent == f]

    def top(self, f: int, n: int) -> list[tuple[float, int, int]]:
        m = np.flatnonzero(self.latent == f)
        order = m[np.argsort(-self.value[m], kind="stable")[:n]]
        return [(float(self.value[i]), int(self.row[i]), int(self.pos[i])) for i in order]


def collect(model: Any, sae: Any, hook: str, rows: np.ndarray, batch: int = 16) -> HeldoutActs:
    parts: list[tuple[np.ndarray, ...]] = []
    for start in range(0, rows.shape[0], batch):
        store: list[torch.Tensor] = []
        with torch.no_grad():
            model.run_with_hooks(torch.from_numpy(rows[start:start + batch]), fwd_hooks=[(hook, capture_hook(store))],
                                 **_stop_kwargs(model, hook))
            acts = sae.encode(store[0][:, 1:]).float()
        r, p, f = torch.nonzero(acts > 0, as_tuple=True)
        parts.append(((r + start).numpy(), (p + 1).numpy(), f.numpy(), acts[r, p, f].numpy()))
    cat = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0) for i in range(4)]
    return HeldoutActs(rows, cat[0].astype(np.int64), cat[1].astype(np.int64), cat[2].astype(np.int64),
                       cat[3].astype(np.float32), int(sae.cfg.d_sae))


def _stop_kwargs(model: Any, hook: str) -> dict[str, int]:
    """Skip the layers after the hook (HookedTransformer only; the bridge runs the whole model)."""
    from transformer_lens import HookedTransformer
    parts = hook.split(".")
    if isinstance(model, HookedTransformer) and len(parts) >= 2 and parts[0] == "blocks" and parts[1].isdigit():
        return {"stop_at_layer": int(parts[1]) + 1}
    return {}


def token_strings(model: Any, ids: list[int]) -> list[str]:
    return [model.tokenizer.decode([int(i)]) for i in ids]


def _decode(model: Any, ids: np.ndarray) -> str:
    """Decode, showing document boundaries (BOS) as a line break."""
    bos = model.tokenizer.bos_token_id
    parts, run = [], []
    for i in ids.tolist():
        if i == bos:
            parts.append(model.tokenizer.decode(run) if run else "")
            run = []
        else:
            run.append(int(i))
    parts.append(model.tokenizer.decode(run) if run else "")
    return "\n".join(parts)


def context_snippet(model: Any, row: np.ndarray, pos: int, left: int = 24, right: int = 12) -> dict[str, str]:
    """Text before, at and after `pos` (the activating token is `token`)."""
    lo = max(1, pos - left)
    return {"before": _decode(model, row[lo:pos]), "token": _decode(model, row[pos:pos + 1]),
            "after": _decode(model, row[pos + 1:pos + 1 + right])}


def word_at(snippet: dict[str, str]) -> str:
    """The whitespace-delimited word that contains the activating token."""
    before, tok, after = snippet["before"], snippet["token"], snippet["after"]
    if not tok.strip():  # whitespace: name it by the word it follows
        prev = before.split()[-1].strip(".,;:!?\"'()") if before.strip() else ""
        return f"(space after {prev})" if prev else "(space)"
    if tok.startswith(" "):  # BPE: the token starts a word
        before = ""
    left = before.split()[-1] if before.strip() and not before[-1].isspace() else ""
    right = after.split()[0] if after.strip() and not after[0].isspace() else ""
    word = (left + tok.strip() + right).strip(".,;:!?\"'()")
    return word or tok.strip()


def promoted_tokens(model: Any, sae: Any, f: int, n: int) -> dict[str, list[dict[str, Any]]]:
    """Logit lens: tokens whose logits the decoder direction raises and lowers most (W_dec[f] · W_U)."""
    with torch.no_grad():
        logits = (sae.W_dec[f].float() @ model.W_U.float()).numpy()
    up, down = np.argsort(-logits)[:n], np.argsort(logits)[:n]
    fmt = lambda ids: [{"token": s, "logit": round(float(logits[i]), 3)} for i, s in zip(ids, token_strings(model, ids))]
    return {"promoted": fmt(up), "suppressed": fmt(down)}


def base_word(word: str) -> str:
    """'(space after nurse)' -> 'nurse': a whitespace token is evidence about the word before it."""
    return word[len("(space after "):-1] if word.startswith("(space after ") and word.endswith(")") else word


def evidence_label(words: list[str], promoted: list[dict[str, Any]], fillers: dict[str, tuple[str, ...]],
                   min_share: float = 0.5) -> str:
    """A label built only from counted evidence: the words it fires on and what it promotes."""
    if not words:
        return "never active on the held-out text (no evidence for a label)"
    counts = Counter(words).most_common(3)
    n = len(words)
    quote = lambda w: w if w.startswith("(") else f"'{w}'"
    shown = ", ".join(f"{quote(w)} {c}/{n}" for w, c in counts)
    hits = {name: sum(c for w, c in Counter(words).items() if base_word(w) in members) for name, members in fillers.items()}
    total = sum(hits.values())
    groups = []
    if total / n >= min_share:
        top = max(hits, key=hits.get)
        if hits[top] >= 0.75 * total:
            groups.append(f"{top} ({hits[top]}/{n} top contexts)")
        else:
            groups.append("words of both groups (" + ", ".join(f"{g} {h}/{n}" for g, h in hits.items()) + ")")
    head = "fires on " + (" and ".join(groups) + "; words " if groups else "") + shown
    if counts[0][1] / n < 0.3 and not groups:
        head = f"mixed contexts (no word in more than {counts[0][1]}/{n}): {shown}"
    tops = ", ".join(repr(t["token"]) for t in promoted[:3])
    return f"{head}; promotes {tops}"
