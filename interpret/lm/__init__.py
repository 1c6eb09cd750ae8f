"""Language models for the SAE probes: the bundled planted-bias LM and loaders for local models.

Nothing here downloads: the Hugging Face Hub and wandb are switched offline on import.
"""
from .env import offline

offline()
