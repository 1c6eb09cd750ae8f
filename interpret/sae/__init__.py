"""Sparse-autoencoder probes: training, quality gate, attribution, ablation, steering (SAELens)."""
from ..lm.env import offline

offline()
