"""SAE quality on held-out text with SAELens `run_evals`, plus delta loss and eval-set dead/dense counts."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..lm.env import offline


def token_rows(model: Any, texts: list[str], context_size: int, max_tokens: int) -> np.ndarray:
    """Concatenate documents (BOS-separated) and cut rows of `context_size` that each start with BOS."""
    tok = model.tokenizer
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    stream: list[int] = []
    body = context_size - 1
    for ids in tok(list(texts), add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(bos)
        if len(stream) >= max_tokens:
            break
    n_rows = max(1, min(len(stream) // body, max_tokens // context_size))
    stream = (stream + [bos] * body)[: n_rows * body]
    arr = np.asarray(stream, dtype=np.int64).reshape(n_rows, body)
    return np.concatenate([np.full((n_rows, 1), bos, dtype=np.int64), arr], axis=1)


def evaluate(model: Any, sae: Any, rows: np.ndarray, batch_prompts: int = 8) -> dict[str, float]:
    """The SAELens eval suite on `rows` (pre-tokenized, BOS first); BOS positions are excluded."""
    offline()
    import datasets
    from sae_lens import ActivationsStore, run_evals
    from sae_lens.evals import get_eval_everything_config
    from sae_lens.training.activation_scaler import ActivationScaler

    if sae.cfg.metadata.prepend_bos is None:
        sae.cfg.metadata.prepend_bos = True
    ctx = rows.shape[1]
    n_batches = max(1, rows.shape[0] // batch_prompts)
    store = ActivationsStore.from_sae(model, sae, datasets.Dataset.from_dict({"tokens": rows.tolist()}),
                                      context_size=ctx, streaming=False, store_batch_size_prompts=batch_prompts,
                                      n_batches_in_buffer=2, train_batch_size_tokens=batch_prompts * ctx)
    cfg = get_eval_everything_config(batch_size_prompts=batch_prompts, n_eval_reconstruction_batches=n_batches,
                                     n_eval_sparsity_variance_batches=n_batches)
    bos = model.tokenizer.bos_token_id
    metrics, feature_metrics = run_evals(sae, store, model, ActivationScaler(), eval_config=cfg,
                                         exclude_special_tokens=[bos] if bos is not None else False)
    flat: dict[str, float] = {}
    for group in metrics.values():
        flat.update({k: float(v) for k, v in group.items() if isinstance(v, (int, float))})
    density = np.asarray(feature_metrics.get("feature_density", []), dtype=float)
    out = {k: flat.get(k, float("nan")) for k in (
        "l0", "l1", "explained_variance", "mse", "cossim", "l2_ratio", "relative_reconstruction_bias",
        "ce_loss_score", "ce_loss_without_sae", "ce_loss_with_sae", "ce_loss_with_ablation",
        "kl_div_score", "kl_div_with_sae", "kl_div_with_ablation")}
    out["delta_loss"] = out["ce_loss_with_sae"] - out["ce_loss_without_sae"]
    if density.size:
        out["dead_fraction"] = float(np.mean(density == 0))
        out["dense_fraction"] = float(np.mean(density > 0.1))
        out["dead_features"] = float(np.sum(density == 0))
        out["dense_features"] = float(np.sum(density > 0.1))
    out["d_sae"] = float(sae.cfg.d_sae)
    out["eval_tokens"] = float(flat.get("total_tokens_eval_sparsity_variance", n_batches * batch_prompts * ctx))
    return out
