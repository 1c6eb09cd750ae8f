"""The probe suite for one model + SAE: behaviour first, then features, causal tests and baselines.

Per attribute (a counterfactual prompt set):
  1. behaviour: the gap in next-token log-odds between the two groups, two-way bootstrap CI
     (templates × fillers), exact permutation p-value, implied stereotype rate vs the corpus rate;
  2. how much of the gap the SAE reconstruction carries (error-term share);
  3. features ranked by attribution (activation × gradient, error term kept) and, for comparison,
     by correlation with the group at the decision position;
  4. ablation of the top attribution features vs density-matched random sets of the same size,
     and vs the correlation-selected set; steering dose-response along the top feature's decoder;
  5. linear baselines on raw activations: a leave-one-filler-out probe and a difference-of-means
     direction projected out (the same causal test, one dense direction).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..lm.prompts import PromptSet
from . import features as feat
from . import plots, stats
from .scoring import Deltas, PromptScorer
from .splice import add_direction_hook, project_out_hook, sae_edit_hook, zero_latents


@dataclass(frozen=True)
class ProbeSettings:
    n_features: int = 16
    n_random_sets: int = 20
    n_boot: int = 1000
    confidence: float = 0.95
    alpha: float = 0.05
    steering_alphas: tuple[float, ...] = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)
    n_contexts: int = 8
    n_tokens: int = 8
    features_when_not_significant: bool = False
    seed: int = 0


@dataclass
class ProbeInputs:
    model: Any
    sae: Any | None
    hook: str
    heldout: feat.HeldoutActs | None
    corpus_rates: dict[str, float] | None = None
    out_dir: Path | None = None
    rel_prefix: str = ""
    progress: Callable[[str], None] = lambda m: None


def _ci(samples: np.ndarray, conf: float) -> list[float]:
    return list(stats.interval(samples, conf))


def _deltas_table(pset: PromptSet, d: Deltas) -> list[dict[str, Any]]:
    rows = []
    for g, (name, fillers, arr) in enumerate(((pset.group_names[0], pset.group1, d.g1),
                                             (pset.group_names[1], pset.group2, d.g2),
                                             ("neutral", pset.neutral, d.neutral))):
        for f, filler in enumerate(fillers):
            for t, template in enumerate(pset.templates):
                rows.append({"group": name, "filler": filler, "template": template,
                             "prompt": pset.prompt(template, filler), "delta": round(float(arr[t, f]), 4)})
    return rows


def _cohen_d(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    v = (x1.var(0, ddof=1) * (len(x1) - 1) + x2.var(0, ddof=1) * (len(x2) - 1)) / max(1, len(x1) + len(x2) - 2)
    return np.where(v > 1e-12, (x1.mean(0) - x2.mean(0)) / np.sqrt(np.maximum(v, 1e-12)), 0.0)


def _auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    s = np.r_[pos, neg]
    return float(roc_auc_score(y, s)) if np.ptp(s) > 0 else 0.5


def _loo_filler_accuracy(X: np.ndarray, y: np.ndarray, fillers: np.ndarray) -> float:
    """Leave-one-filler-out accuracy of a logistic probe (generalisation to unseen names/jobs)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    if X.shape[1] == 0:
        return float("nan")
    correct = 0
    for key in np.unique(fillers):
        test = fillers == key
        if len(np.unique(y[~test])) < 2:
            continue
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        clf.fit(X[~test], y[~test])
        correct += int((clf.predict(X[test]) == y[test]).sum())
    return correct / len(y)


def _random_control_sets(selected: list[int], density: np.ndarray, exclude: set[int], n_sets: int,
                         rng: np.random.Generator, window: int = 10) -> list[list[int]]:
    """Random latents of the same count, each matched to a selected latent's held-out density rank."""
    alive = np.flatnonzero(density > 0)
    pool = np.array([i for i in alive if i not in exclude]) if alive.size else np.zeros(0, dtype=int)
    if pool.size < len(selected):
        pool = np.array([i for i in range(density.size) if i not in exclude])
    order = pool[np.argsort(density[pool], kind="stable")]
    rank_density = density[order]
    sets = []
    for _ in range(n_sets):
        chosen: list[int] = []
        for f in selected:
            r = int(np.searchsorted(rank_density, density[f]))
            lo, hi = max(0, r - window), min(order.size, r + window)
            cands = [int(c) for c in order[lo:hi] if int(c) not in chosen] or [int(c) for c in order if int(c) not in chosen]
            chosen.append(int(rng.choice(cands)))
        sets.append(chosen)
    return sets


def _filler_share(words: list[str], fillers: dict[str, tuple[str, ...]], neutral: tuple[str, ...]) -> dict[str, Any]:
    """Share of the top contexts that sit on one of the prompt set's fillers (e.g. occupation words)."""
    words = [feat.base_word(w) for w in words]
    everything = {w for group in fillers.values() for w in group} | set(neutral)
    hits = [w for w in words if w in everything]
    best = max(fillers, key=lambda g: sum(w in fillers[g] for w in words)) if fillers else None
    return {"filler_share": len(hits) / len(words) if words else 0.0,
            "filler_group": best if best and sum(w in fillers[best] for w in words) else None,
            "filler_words": sorted(set(hits))}


def probe_attribute(pset: PromptSet, inp: ProbeInputs, s: ProbeSettings, quality_ok: bool) -> dict[str, Any]:
    rng = np.random.default_rng([s.seed, sum(map(ord, pset.attribute))])
    scorer = PromptScorer(inp.model, pset, inp.hook)
    inp.progress(f"{pset.attribute}: behaviour on {len(scorer.seqs)} sequences")
    base = scorer.deltas()
    rs = stats.Resample.draw(rng, len(pset.templates), len(pset.group1), len(pset.group2), s.n_boot)
    gap_s = stats.gap_samples(rs, base.g1, base.g2)
    gap_ci = _ci(gap_s, s.confidence)
    p_value = stats.permutation_p(base.g1, base.g2, rng=rng)
    significant = bool((gap_ci[0] > 0 or gap_ci[1] < 0) and p_value < s.alpha)
    rate = stats.stereotype_rate(base.g1, base.g2)
    rate_ci = _ci(stats.rate_samples(rs, base.g1, base.g2), s.confidence)
    corpus_rate = (inp.corpus_rates or {}).get(pset.corpus_key) if pset.corpus_key else None
    out: dict[str, Any] = {
        "attribute": pset.attribute, "description": pset.description, "pair": pset.pair_labels,
        "group_names": list(pset.group_names), "templates": list(pset.templates),
        "n_prompts": int(base.g1.size + base.g2.size),
        "behaviour": {"gap": base.gap, "gap_ci": gap_ci, "p_value": p_value, "significant": significant,
                      "mean_delta_group1": float(base.g1.mean()), "mean_delta_group2": float(base.g2.mean()),
                      "mean_delta_neutral": float(base.neutral.mean()) if base.neutral.size else None,
                      "per_template_gap": [float(base.g1[t].mean() - base.g2[t].mean()) for t in range(len(pset.templates))],
                      "model_rate": rate, "model_rate_ci": rate_ci, "corpus_rate": corpus_rate,
                      "amplification": None if corpus_rate is None else rate - corpus_rate,
                      "amplification_ci": None if corpus_rate is None else [rate_ci[0] - corpus_rate, rate_ci[1] - corpus_rate],
                      "table": _deltas_table(pset, base)},
    }
    if inp.sae is None:
        out["features_run"] = False
        out["features_skipped_reason"] = "no SAE available for this model"
        return out
    spliced = scorer.deltas(sae_edit_hook(inp.sae))
    recon = scorer.deltas(sae_edit_hook(inp.sae, keep_error=False))
    out["splice"] = {"max_abs_change_with_error_term": float(max(np.abs(spliced.g1 - base.g1).max(), np.abs(spliced.g2 - base.g2).max())),
                     "gap_reconstruction_only": recon.gap,
                     "error_share": 1.0 - recon.gap / base.gap if significant else None}
    if not (significant or s.features_when_not_significant):
        out["features_run"] = False
        out["features_skipped_reason"] = "no significant behavioural bias to attribute"
        return out
    out["features_run"] = True
    sign = 1.0 if base.gap >= 0 else -1.0
    before = (base.g1, base.g2)

    def effect(d: Deltas) -> tuple[float, np.ndarray]:
        return 1.0 - d.gap / base.gap, stats.effect_samples(rs, before, (d.g1, d.g2))

    inp.progress(f"{pset.attribute}: attribution over {inp.sae.cfg.d_sae} latents")
    attr = scorer.attribution(inp.sae) * sign
    selected = [int(i) for i in np.argsort(-attr)[: s.n_features] if attr[i] > 0]
    acts = scorer.activations(inp.sae)
    g = acts["group"]
    last1, last2 = acts["sae_last"][g == 0], acts["sae_last"][g == 1]
    d_corr = _cohen_d(last1, last2)
    active = (acts["sae_last"][g < 2] > 0).any(0)
    corr_rank = np.argsort(-np.abs(np.where(active, d_corr, 0.0)))
    by_corr = [int(i) for i in corr_rank[: s.n_features] if active[i]]

    inp.progress(f"{pset.attribute}: ablations ({len(selected)} features, {s.n_random_sets} random sets)")
    abl = scorer.deltas(sae_edit_hook(inp.sae, zero_latents(selected))) if selected else base
    eff, eff_s = effect(abl)
    corr_abl = scorer.deltas(sae_edit_hook(inp.sae, zero_latents(by_corr))) if by_corr else base
    corr_eff, corr_eff_s = effect(corr_abl)
    density = inp.heldout.density()
    sets = _random_control_sets(selected, density, set(selected), s.n_random_sets, rng) if selected else []
    ctrl_gaps, ctrl_samples = [], []
    for cs in sets:
        d = scorer.deltas(sae_edit_hook(inp.sae, zero_latents(cs)))
        ctrl_gaps.append(d.gap)
        ctrl_samples.append(stats.effect_samples(rs, before, (d.g1, d.g2)))
    ctrl_effects = np.array([1.0 - gp / base.gap for gp in ctrl_gaps])
    ctrl_mean_s = np.nanmean(np.stack(ctrl_samples), 0) if ctrl_samples else np.full(s.n_boot, np.nan)
    excess_s = eff_s - ctrl_mean_s
    out["ablation"] = {
        "method": "zero-ablate latents at every position after BOS, SAE error term kept",
        "features": selected, "n_features": len(selected), "gap_after": abl.gap,
        "effect": eff, "effect_ci": _ci(eff_s, s.confidence),
        "control_effect": float(ctrl_effects.mean()) if ctrl_effects.size else None,
        "control_effect_ci": _ci(ctrl_mean_s, s.confidence),
        "control_effects": [round(float(e), 4) for e in ctrl_effects],
        "control_p_value": float((1 + np.sum(ctrl_effects >= eff)) / (1 + ctrl_effects.size)) if ctrl_effects.size else None,
        "control_sets": sets, "control_matching": "same count; each latent drawn among the 20 alive latents nearest in held-out density",
        "excess_effect": float(eff - ctrl_effects.mean()) if ctrl_effects.size else None,
        "excess_effect_ci": _ci(excess_s, s.confidence),
        "correlation_features": by_corr, "correlation_effect": corr_eff, "correlation_effect_ci": _ci(corr_eff_s, s.confidence),
    }
    ex_ci = out["ablation"]["excess_effect_ci"]
    out["ablation"]["localised"] = bool(selected and ex_ci[0] > 0 and eff > 0
                                        and out["ablation"]["control_p_value"] <= s.alpha)

    # linear baselines on raw activations ------------------------------------------------------
    y = (g[g < 2] == 0).astype(int)
    fill_key = np.array([f"{gg}:{ff}" for gg, ff in zip(g[g < 2], acts["filler"][g < 2])])
    raw = acts["resid_mean"][g < 2]
    u = acts["resid_mean"][g == 0].mean(0) - acts["resid_mean"][g == 1].mean(0)
    u_t = torch.tensor(u / max(np.linalg.norm(u), 1e-9), dtype=torch.float32)
    center = torch.tensor(acts["resid_mean"][g < 2].mean(0), dtype=torch.float32)
    lin = scorer.deltas(project_out_hook(u_t, center))
    lin_eff, lin_eff_s = effect(lin)
    out["baseline"] = {
        "probe_accuracy_raw": _loo_filler_accuracy(raw, y, fill_key),
        "probe_accuracy_sae_all": _loo_filler_accuracy(acts["sae_max"][g < 2], y, fill_key),
        "probe_accuracy_sae_selected": _loo_filler_accuracy(acts["sae_max"][g < 2][:, selected], y, fill_key) if selected else None,
        "probe": "logistic regression (C=0.1, standardised), leave-one-filler-out (tests generalisation to unseen "
                 "fillers); raw activations averaged over the prompt's positions, SAE features max-pooled",
        "linear_direction": "difference of group means of position-averaged activations, projected out about the mean",
        "linear_effect": lin_eff, "linear_effect_ci": _ci(lin_eff_s, s.confidence), "linear_gap_after": lin.gap,
        "sae_minus_linear_effect": eff - lin_eff,
    }

    # steering along the top feature's decoder direction ---------------------------------------
    steering = None
    if selected:
        top = selected[0]
        scale = float(inp.heldout.mean_active()[top]) or float(np.maximum(acts["sae_max"][:, top], 0).mean()) or 1.0
        direction = inp.sae.W_dec[top].detach().float() * scale
        curves, rows = [], []
        for a in s.steering_alphas:
            d = scorer.deltas(add_direction_hook(direction, float(a))) if a != 0 else base
            gs = stats.gap_samples(rs, d.g1, d.g2)
            curves.append((d.g1, d.g2))
            gci = _ci(gs, s.confidence)
            rows.append({"alpha": float(a), "mean_delta_group1": float(d.g1.mean()), "mean_delta_group2": float(d.g2.mean()),
                         "mean_delta": float((d.g1.mean() + d.g2.mean()) / 2), "gap": d.gap,
                         "gap_ci_low": gci[0], "gap_ci_high": gci[1]})
        alphas = np.array(s.steering_alphas, dtype=float)
        slope_s = stats.slope_samples(rs, alphas, curves)
        mean_curve = np.array([r["mean_delta"] for r in rows])
        am = alphas - alphas.mean()
        from scipy.stats import spearmanr
        rho = float(spearmanr(alphas, mean_curve).statistic) if np.ptp(mean_curve) > 0 else 0.0
        steering = {"feature": top, "activation_scale": scale, "alphas": [float(a) for a in alphas], "table": rows,
                    "slope": float((mean_curve - mean_curve.mean()) @ am / (am @ am)),
                    "slope_ci": _ci(slope_s, s.confidence), "spearman_rho": rho,
                    "response": f"mean log-odds {pset.pair_labels} over both groups",
                    "method": "add α × (mean held-out activation) × W_dec[f] at every position after BOS"}
    out["steering"] = steering

    # feature reports --------------------------------------------------------------------------
    fillers = {pset.group_names[0]: pset.group1, pset.group_names[1]: pset.group2}
    mean_active = inp.heldout.mean_active()
    reports, single_cache = [], {}
    for f in list(dict.fromkeys(selected + by_corr)):
        ctxs = []
        for val, r, p in inp.heldout.top(f, s.n_contexts):
            snip = feat.context_snippet(inp.model, inp.heldout.rows[r], p)
            ctxs.append({"activation": round(val, 4), **snip, "word": feat.word_at(snip)})
        tokens = feat.promoted_tokens(inp.model, inp.sae, f, s.n_tokens)
        if f in selected:
            d1 = scorer.deltas(sae_edit_hook(inp.sae, zero_latents([f])))
            single_cache[f] = 1.0 - d1.gap / base.gap
        pos, neg = acts["sae_max"][g == 0][:, f], acts["sae_max"][g == 1][:, f]
        reports.append({
            "index": f,
            "selected_by": " + ".join(m for m, lst in (("attribution", selected), ("correlation", by_corr)) if f in lst),
            "attribution": float(attr[f]), "attribution_share": float(attr[f] / attr[attr > 0].sum()) if (attr > 0).any() else None,
            "cohen_d_decision_position": float(d_corr[f]), "auroc_max_activation": _auroc(pos, neg),
            "density": float(density[f]), "mean_activation": float(mean_active[f]),
            "max_activation": float(inp.heldout.values(f).max()) if inp.heldout.values(f).size else 0.0,
            "ablation_effect_alone": single_cache.get(f),
            "contexts": ctxs, **tokens,
            "label": feat.evidence_label([c["word"] for c in ctxs], tokens["promoted"], fillers),
            **_filler_share([c["word"] for c in ctxs], fillers, pset.neutral),
        })
    out["features"] = reports
    out["quality_ok"] = quality_ok

    if inp.out_dir is not None and reports:
        shown = [r for r in reports if "attribution" in r["selected_by"]][:6] or reports[:6]
        hist = plots.feature_histograms(
            inp.out_dir / f"sae_{pset.attribute}_feature_histograms.png", shown,
            {r["index"]: inp.heldout.values(r["index"]) for r in shown},
            {r["index"]: (acts["sae_max"][g == 0][:, r["index"]], acts["sae_max"][g == 1][:, r["index"]]) for r in shown},
            pset.group_names, pset.attribute)
        out["plots"] = {"histograms": inp.rel_prefix + hist.name}
        if steering:
            dr = plots.dose_response(inp.out_dir / f"sae_{pset.attribute}_dose_response.png", steering["table"],
                                     steering["feature"], pset.attribute, pset.group_names, pset.pair_labels)
            out["plots"]["dose_response"] = inp.rel_prefix + dr.name
    return out
