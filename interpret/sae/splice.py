"""Interventions at one hook point, written as plain forward hooks so that a HookedTransformer and a
TransformerBridge take the same code path.

Every SAE edit keeps the SAE error term: the hook returns x + decode(edited) − decode(acts), so an
empty edit reproduces the model exactly and only the edited latents change anything. Position 0
(BOS) is never edited.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

START = 1  # first edited position (skip BOS)


@dataclass
class Capture:
    """Holds the SAE activations of one forward pass (leaf tensors when gradients are wanted)."""

    grad: bool = False
    acts: list[torch.Tensor] = field(default_factory=list)


def sae_edit_hook(sae: Any, edit: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  keep_error: bool = True, capture: Capture | None = None) -> Callable:
    def hook(x: torch.Tensor, hook: Any = None) -> torch.Tensor:
        xs = x[:, START:]
        acts = sae.encode(xs)
        if capture is not None:
            if capture.grad:
                acts = acts.detach().requires_grad_(True)
            capture.acts.append(acts)
        recon = sae.decode(acts)
        new = sae.decode(edit(acts)) if edit is not None else recon
        out = new + (xs - recon).detach() if keep_error else new
        return torch.cat([x[:, :START], out.to(x.dtype)], dim=1)
    return hook


def zero_latents(indices: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    idx = torch.as_tensor(indices, dtype=torch.long)

    def edit(acts: torch.Tensor) -> torch.Tensor:
        out = acts.clone()
        out[..., idx] = 0.0
        return out
    return edit


def add_direction_hook(direction: torch.Tensor, alpha: float) -> Callable:
    """Steering: x + α·d at every edited position (no SAE in the forward pass)."""
    def hook(x: torch.Tensor, hook: Any = None) -> torch.Tensor:
        out = x.clone()
        out[:, START:] = out[:, START:] + alpha * direction.to(x.dtype)
        return out
    return hook


def project_out_hook(unit: torch.Tensor, center: torch.Tensor) -> Callable:
    """Linear baseline: remove the component along `unit` (about `center`), keep everything else."""
    def hook(x: torch.Tensor, hook: Any = None) -> torch.Tensor:
        out = x.clone()
        xs = out[:, START:]
        coef = (xs - center.to(x.dtype)) @ unit.to(x.dtype)
        out[:, START:] = xs - coef[..., None] * unit.to(x.dtype)
        return out
    return hook


def capture_hook(store: list[torch.Tensor]) -> Callable:
    def hook(x: torch.Tensor, hook: Any = None) -> torch.Tensor:
        store.append(x.detach())
        return x
    return hook
