"""Explanations and evidence of how far to trust them (EU AI Act Art. 13(3)(b)(iv), (vii); Art. 86).

SHAP (global ranking with stratified-bootstrap CIs, per protected group, local waterfalls),
LIME for selected decisions, plain-language reason codes (English, Korean), and quality
findings: additivity, LIME seed stability, SHAP–LIME agreement, deletion faithfulness and
background-size sensitivity.  Top-k overlaps are judged chance-corrected on an effective
k = min(top_k, floor(p / 2)) for p features, so that two random top-k sets need not overlap; with
fewer than `min_topk_features` features they are reported as not informative.  A protected
attribute or a proxy reported by the fairness check that the model uses (share of mean |SHAP| at
least `min_driver_share`, within the effective top-k globally or for a group) is a finding.  The
explaining itself lives in `interpret/`.
"""
from __future__ import annotations

import json
import re
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from interpret import quality as q
from interpret.encoding import TabularEncoder, display_value
from interpret.importance import FeatureImportance, group_rankings, rank_features
from interpret.lime_explain import explain_rows
from interpret.models import ModelAdapter
from interpret.reason_codes import reason_codes
from interpret.sampling import SamplePlan, stratified_sample
from interpret.shap_explain import ShapExplainer

from risk.catalogue import citations

from ..findings import Finding, Severity, Status
from .base import AuditContext, Check, CheckConfig, CheckResult

NAME = "explanations"
R = citations(NAME)
REF_INTERPRET = [R["interpret"], R["interpret_output"]]
REF_LOCAL = [*REF_INTERPRET, R["explanation"]]
REF_QUALITY = [*REF_INTERPRET, R["explanation"]]
REF_FAIR = [*REF_INTERPRET, R["bias"]]
SCALE_WORDS = {"log_odds": "log-odds", "probability": "probability", "margin": "margin", "raw": "model output"}


class ExplanationsConfig(CheckConfig):
    sample_size: int = Field(10_000, ge=50, le=1_000_000, description="Rows explained for the global ranking (stratified sample); the default policy screens with 2,000.")
    min_per_stratum: int = Field(30, ge=0, description="Rows at least drawn from each stratum (protected group x decision).")
    background_size: int = Field(300, ge=10, le=100_000, description="Rows in the SHAP/LIME background (explicit masker, no silent cap).")
    background_source: Literal["train", "audit"] = Field("train", description="Draw the background from the training split when there is one.")
    feature_perturbation: Literal["auto", "interventional", "tree_path_dependent"] = "auto"
    permutations: int = Field(3, ge=1, le=100, description="Antithetic permutations per row for the Permutation explainer.")
    permutation_background: int = Field(100, ge=10, le=10_000)
    permutation_budget: int = Field(3_000_000, ge=10_000, description="Model evaluations for the Permutation explainer's global sample.")
    n_boot: int = Field(200, ge=20, le=10_000)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    top_k: int = Field(5, ge=1, le=50, description="Top drivers compared (quality measures, proxy link); capped at half "
                       "the feature count, so that two random top-k sets need not overlap.")
    min_topk_features: int = Field(4, ge=2, le=1000, description="With fewer features, top-k overlaps (LIME seed "
                                   "stability, SHAP–LIME agreement, background redraw) are reported as not informative.")
    n_local: int = Field(5, ge=1, le=100, description="Decisions per kind: most adverse, nearest the threshold, random.")
    decision_threshold: float | None = Field(None, description="Score threshold of the decision; default 0.5 (binary) or the median prediction.")
    lime_num_samples: int = Field(2000, ge=100, le=100_000)
    lime_seeds: int = Field(5, ge=5, le=50)
    deletion_rows: int = Field(200, ge=10, le=100_000)
    deletion_steps: int = Field(8, ge=1, le=100)
    deletion_background_draws: int = Field(12, ge=1, le=1000)
    deletion_random_orders: int = Field(3, ge=1, le=100)
    sensitivity_sizes: list[int] = Field(default_factory=lambda: [50, 100], description="Smaller background sizes compared with the configured one.")
    sensitivity_rows: int = Field(300, ge=10, le=100_000)
    additivity_atol: float = Field(1e-3, gt=0)
    additivity_rtol: float = Field(1e-3, ge=0)
    min_lime_jaccard: float = Field(0.5, ge=0, le=1, description="Mean seed-to-seed top-k Jaccard, chance-corrected: "
                                    "(J − E[J]) / (1 − E[J]), E[J] the overlap of two random top-k sets; 0 = no better "
                                    "than random, 1 = the same top-k at every seed.")
    min_shap_lime_tau: float = Field(0.3, ge=-1, le=1, description="Mean Kendall τ of |SHAP| and |LIME| on the union of "
                                     "their top-k; unrelated rankings give τ ≤ 0 on average.")
    min_deletion_ratio: float = Field(1.2, ge=0)
    min_background_jaccard: float = Field(0.6, ge=0, le=1, description="Top-k Jaccard of the global ranking between two "
                                          "independent backgrounds, chance-corrected as for min_lime_jaccard.")
    max_background_change: float = Field(0.10, gt=0, description="Relative L1 change of global mean |SHAP| between two independent backgrounds.")
    group_ratio: float = Field(2.0, gt=1, description="A feature's mean |SHAP| this many times higher in one group is reported.")
    min_group_rows: int = Field(30, ge=1)
    min_group_share: float = Field(0.05, ge=0, le=1, description="Only features with at least this share of a group's total mean |SHAP| are compared.")
    min_driver_share: float = Field(0.05, ge=0, le=1, description="A protected attribute or proxy is a top driver only "
                                    "with at least this share of total mean |SHAP| (globally, or of a group's total) "
                                    "and a rank within the effective top-k there.")
    favourable: Literal["positive", "negative"] = Field("positive", description="Whether the positive label is the favourable outcome.")
    favourable_by_domain: dict[str, Literal["positive", "negative"]] = Field(
        default_factory=lambda: {"justice": "negative"},
        description="Per-domain override of `favourable`; in justice the positive label is usually the risk event.")
    target_class: str | None = Field(None, description="Multiclass: the class whose output is explained (default: the last).")
    languages: list[Literal["en", "ko"]] = Field(default_factory=lambda: ["en", "ko"])
    n_reasons: int = Field(4, ge=1, le=20)
    min_reason_share: float = Field(0.05, ge=0, lt=1, description="Contributions below this share of the total are not given as reasons.")
    feature_labels: dict[str, dict[str, str]] = Field(default_factory=dict, description="language -> column -> label in reason codes.")
    plots: bool = True
    dependence_plots: int = Field(3, ge=0, le=20)
    quality_severity: Severity = Severity.medium
    protected_severity: Severity = Severity.high
    proxy_severity: Severity = Severity.medium
    group_severity: Severity = Severity.low


# -- helpers ------------------------------------------------------------------------------

def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, FeatureImportance):
        return _jsonable(obj.as_dict())
    return obj


def _write_json(ctx: AuditContext, name: str, payload: Any) -> str:
    path, rel = ctx.evidence_path(NAME, name)
    path.write_text(json.dumps(_jsonable(payload), indent=1, ensure_ascii=False))
    return rel


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))[:80]


def _finite(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _class_index(ctx: AuditContext, cfg: ExplanationsConfig) -> int:
    classes = [str(c) for c in ctx.model.classes]
    if ctx.model.task == "binary":
        return classes.index(str(ctx.positive_label))
    if ctx.model.task == "multiclass":
        return classes.index(cfg.target_class) if cfg.target_class in classes else len(classes) - 1
    return 0


def _adapter(ctx: AuditContext, k: int) -> ModelAdapter:
    m = ctx.model
    return ModelAdapter(estimator=m.estimator, feature_names=list(m.feature_names), task=m.task, class_index=k,
                        prepare=m.prepare, predict_proba=None if m.task == "regression" else m.predict_proba,
                        predict=m.predict if m.task == "regression" else None,
                        categories={f.name: list(f.categories or []) for f in m.meta.features if f.kind == "categorical"})


def _scores(ctx: AuditContext, k: int) -> np.ndarray:
    p = ctx.predictions
    return np.asarray(p.y_pred, dtype=float) if ctx.model.task == "regression" else np.asarray(p.proba[:, k], dtype=float)


def _select_decisions(adverse_score: np.ndarray, scores: np.ndarray, threshold: float, n: int,
                      rng: np.random.Generator) -> list[tuple[int, str]]:
    chosen: list[tuple[int, str]] = []
    taken: set[int] = set()
    for kind, order in (("most_adverse", np.argsort(-adverse_score, kind="stable")),
                        ("near_threshold", np.argsort(np.abs(scores - threshold), kind="stable"))):
        picked = [int(i) for i in order if int(i) not in taken][:n]
        taken.update(picked)
        chosen += [(i, kind) for i in picked]
    rest = np.array([i for i in range(len(scores)) if i not in taken])
    if len(rest):
        chosen += [(int(i), "random") for i in rng.choice(rest, size=min(n, len(rest)), replace=False)]
    return chosen


def _strata(ctx: AuditContext, scores: np.ndarray, decision: np.ndarray) -> pd.DataFrame:
    frame = ctx.data.frame
    cols = {c: frame[c].astype(str).where(frame[c].notna(), "<missing>") for c in ctx.data.protected}
    if ctx.model.task == "regression":
        cols["__prediction_quartile"] = pd.qcut(pd.Series(scores).rank(method="first"), 4, labels=False).astype(str)
    else:
        cols["__decision"] = pd.Series(np.where(decision, "positive", "other"))
    return pd.DataFrame(cols).reset_index(drop=True)


def _background(ctx: AuditContext, cfg: ExplanationsConfig, size: int, purpose: str,
                exclude: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray, str]:
    train = ctx.data.train
    use_train = cfg.background_source == "train" and train is not None and len(train) >= 10
    source = train if use_train else ctx.data.frame
    label = ctx.data.label
    strata = source[[label]].astype(str) if label and label in source else pd.DataFrame(index=source.index)
    strata = strata.reset_index(drop=True)
    if exclude is not None and len(source) - len(exclude) < size:
        exclude = None
    plan = stratified_sample(strata, min(size, len(source)), ctx.rng(purpose), exclude=exclude, purpose=purpose)
    rows = source.iloc[plan.indices][ctx.model.feature_names].reset_index(drop=True)
    return rows, plan.indices, "train" if use_train else "audit"


def _explain_in_chunks(explainer: ShapExplainer, X: pd.DataFrame, ctx: AuditContext, label: str, chunk: int = 1000):
    from interpret.shap_explain import ShapResult
    parts = []
    for start in range(0, len(X), chunk):
        ctx.progress(f"explanations: SHAP {label} rows {start + 1}-{min(start + chunk, len(X))} of {len(X)}")
        parts.append(explainer.explain(X.iloc[start:start + chunk]))
    checks = {p.shap_additivity_check for p in parts}
    return ShapResult(values=np.vstack([p.values for p in parts]), base_values=np.concatenate([p.base_values for p in parts]),
                      output=np.concatenate([p.output for p in parts]), feature_names=parts[0].feature_names,
                      shap_additivity_check="failed" if "failed" in checks else parts[0].shap_additivity_check)


def _topk_scope(cfg: ExplanationsConfig, p: int) -> dict[str, Any]:
    """The one k every top-k statistic uses, its chance level, and whether top-k overlaps say anything."""
    k = max(1, q.effective_k(cfg.top_k, p))
    informative = p >= cfg.min_topk_features
    return {"top_k": cfg.top_k, "effective_k": k, "features": p,
            "rule": f"k = min(top_k, floor(p / 2)) = min({cfg.top_k}, {p // 2}): two random top-k sets need not overlap",
            "chance_jaccard": q.chance_jaccard(k, p), "informative": informative,
            "reason": None if informative else (f"only {p} feature(s), fewer than min_topk_features = "
                                                f"{cfg.min_topk_features}: top-k sets of so few features agree or "
                                                "disagree largely by chance")}


# -- the check ----------------------------------------------------------------------------

def run(ctx: AuditContext, cfg: ExplanationsConfig) -> CheckResult:
    frame = ctx.data.frame.reset_index(drop=True)
    features = list(ctx.model.feature_names)
    task = ctx.model.task
    k = _class_index(ctx, cfg)
    adapter = _adapter(ctx, k)
    scores = _scores(ctx, k)
    threshold = cfg.decision_threshold if cfg.decision_threshold is not None else (
        float(np.median(scores)) if task == "regression" else 0.5)
    positive = scores >= threshold if task != "multiclass" else \
        (pd.Series(ctx.predictions.y_pred).astype(str) == str(ctx.model.classes[k])).to_numpy()
    favourable = cfg.favourable_by_domain.get(ctx.domain or "", cfg.favourable)
    adverse_is_positive = favourable == "negative"
    adverse = positive if adverse_is_positive else ~positive
    adverse_score = scores if adverse_is_positive else -scores
    target = str(ctx.model.classes[k]) if task != "regression" else "prediction"
    result = CheckResult()
    evidence: dict[str, str] = {}

    # 1. samples ---------------------------------------------------------------------
    strata = _strata(ctx, scores, positive)
    plan = stratified_sample(strata, cfg.sample_size, ctx.rng("explanations.sample"),
                             min_per_stratum=cfg.min_per_stratum, purpose="explanations.sample")
    background, bg_rows, bg_source = _background(ctx, cfg, cfg.background_size, "explanations.background")
    encoder = TabularEncoder.fit([frame[features], background], features, adapter.categories)
    ctx.progress(f"explanations: choosing the explainer ({len(background)} background rows)")
    explainer = ShapExplainer(adapter, background, feature_perturbation=cfg.feature_perturbation,
                              permutations=cfg.permutations, max_background_agnostic=cfg.permutation_background,
                              seed=ctx.seed, encoder=encoder)
    prov = explainer.provenance()
    scale = prov["output_scale"]
    if explainer.route.kind == "permutation":
        budget_rows = max(50, cfg.permutation_budget // explainer.cost_per_row)
        if plan.size > budget_rows:
            plan = stratified_sample(strata, budget_rows, ctx.rng("explanations.sample"),
                                     min_per_stratum=min(cfg.min_per_stratum, 5), purpose="explanations.sample")
            prov["notes"].append(f"Permutation budget of {cfg.permutation_budget:,} model evaluations allows "
                                 f"{budget_rows} explained rows ({explainer.cost_per_row:,} evaluations per row)")
    used_bg = background.iloc[explainer.background_positions]
    bg_ids = bg_rows[explainer.background_positions] if explainer.background_size else np.array([], dtype=int)

    # 2. SHAP: global sample and selected decisions ----------------------------------
    X_sample = frame.iloc[plan.indices][features].reset_index(drop=True)
    shap_s = _explain_in_chunks(explainer, X_sample, ctx, "sample")
    decisions = _select_decisions(adverse_score, scores, threshold, cfg.n_local, ctx.rng("explanations.local"))
    local_rows = np.array([i for i, _ in decisions], dtype=int)
    X_local = frame.iloc[local_rows][features].reset_index(drop=True)
    shap_l = explainer.explain(X_local)

    ranking = rank_features(shap_s.values, features, weights=plan.weights, strata=plan.stratum,
                            rng=ctx.rng("explanations.bootstrap"), n_boot=cfg.n_boot, confidence=cfg.confidence)
    groups: dict[str, dict[str, Any]] = {}
    for attr in ctx.data.protected:
        labels = frame[attr].astype(str).where(frame[attr].notna(), "<missing>").to_numpy()[plan.indices]
        groups[attr] = group_rankings(shap_s.values, features, labels, weights=plan.weights, strata=plan.stratum,
                                      rng=ctx.rng(f"explanations.bootstrap.{attr}"), n_boot=cfg.n_boot,
                                      confidence=cfg.confidence)

    # 3. LIME on the selected decisions ----------------------------------------------
    bg_enc = encoder.encode(used_bg)
    lime_bg = encoder.encode(background)

    predict_enc = explainer.output_encoded

    lime_base = int(ctx.rng("explanations.lime").integers(0, 2**31 - 1 - cfg.lime_seeds))
    seeds = [lime_base + i for i in range(cfg.lime_seeds)]
    ctx.progress(f"explanations: LIME {len(decisions)} decisions x {len(seeds)} seeds")
    lime = explain_rows(encoder.encode(X_local), predict_enc, lime_bg, encoder, seeds=seeds,
                        num_samples=cfg.lime_num_samples)

    # 4. quality -----------------------------------------------------------------------
    ctx.progress("explanations: quality measures")
    all_vals = np.vstack([shap_s.values, shap_l.values])
    add = q.additivity(all_vals, np.concatenate([shap_s.base_values, shap_l.base_values]),
                       np.concatenate([shap_s.output, shap_l.output]), atol=cfg.additivity_atol, rtol=cfg.additivity_rtol)
    scope = _topk_scope(cfg, len(features))
    stab = q.seed_stability(lime.weights, scope["effective_k"])
    agree = q.agreement(shap_l.values, lime.mean_weights, scope["effective_k"])
    del_rng = ctx.rng("explanations.deletion")
    del_pos = np.sort(del_rng.choice(plan.size, size=min(cfg.deletion_rows, plan.size), replace=False))
    deletion = q.deletion_curves(predict_enc, encoder.encode(X_sample.iloc[del_pos]), shap_s.values[del_pos], bg_enc,
                                 steps=cfg.deletion_steps, rng=del_rng, background_draws=cfg.deletion_background_draws,
                                 random_orders=cfg.deletion_random_orders)
    local_enc = encoder.encode(X_local)
    del_local_shap = q.deletion_curves(predict_enc, local_enc, shap_l.values, bg_enc, steps=cfg.deletion_steps,
                                       rng=ctx.rng("explanations.deletion.local"), background_draws=cfg.deletion_background_draws,
                                       random_orders=cfg.deletion_random_orders)
    del_local_lime = q.deletion_curves(predict_enc, local_enc, lime.mean_weights, bg_enc, steps=cfg.deletion_steps,
                                       rng=ctx.rng("explanations.deletion.local"), background_draws=cfg.deletion_background_draws,
                                       random_orders=cfg.deletion_random_orders)
    sensitivity = _background_sensitivity(ctx, cfg, explainer, adapter, encoder, X_sample, plan, shap_s, bg_rows,
                                          scope["effective_k"])

    # 5. evidence ----------------------------------------------------------------------
    global_table = [r.as_dict() for r in ranking]
    group_tables = {attr: [{"group": g, "rows": v["rows"], "weighted_rows": v["weighted_rows"],
                            "ranking": [r.as_dict() for r in v["ranking"]]} for g, v in gr.items()]
                    for attr, gr in groups.items()}
    local = _local_records(ctx, cfg, decisions, scores, positive, adverse, adverse_is_positive, X_local, shap_l, lime,
                           stab, agree, features, threshold, target)
    if cfg.plots:
        evidence.update(_plots(ctx, cfg, global_table, group_tables, shap_s, X_sample, encoder, local, shap_l,
                               deletion, features, scale))
        for rec in local:
            rec["waterfall"] = evidence.get(f"waterfall_{rec['row']}")
    sampling = {"explained_sample": plan.describe(),
                "explained_rows": plan.indices, "weights": plan.weights,
                "background": {"source": bg_source, "rows_drawn": len(background),
                               "shap_rows_used": explainer.background_size, "row_positions": bg_rows,
                               "shap_row_positions": bg_ids, "used_by": "SHAP masker (interventional routes), LIME "
                               "training data, deletion-curve replacement values",
                               "stratified_by": [ctx.data.label] if ctx.data.label else [],
                               "note": "positions in the training split" if bg_source == "train" else "positions in the audited rows"},
                "local_decisions": [{"row": i, "kind": kind} for i, kind in decisions]}
    quality = {"additivity": {kk: v for kk, v in add.items() if kk != "errors"},
               "shap_additivity_check": shap_s.shap_additivity_check,
               "top_k": scope,
               "lime_stability": {"per_row_jaccard": stab["jaccard"], "per_row_jaccard_kappa": stab["jaccard_kappa"],
                                  "chance_jaccard": stab["chance_jaccard"], "per_row_kendall": stab["kendall"],
                                  "seeds": seeds, "num_samples": cfg.lime_num_samples, "top_k": scope["effective_k"]},
               "shap_lime_agreement": {kk: v for kk, v in agree.items()},
               "deletion": {kk: v for kk, v in deletion.items() if kk != "per_row_ratio"},
               "deletion_local": {"shap": {kk: v for kk, v in del_local_shap.items() if kk != "per_row_ratio"},
                                  "lime": {kk: v for kk, v in del_local_lime.items() if kk != "per_row_ratio"}},
               "background_sensitivity": sensitivity}
    evidence["global_json"] = _write_json(ctx, "global_importance.json", {"provenance": prov, "scale": scale,
                                                                            "ranking": global_table})
    evidence["groups_json"] = _write_json(ctx, "group_importance.json", group_tables)
    evidence["local_json"] = _write_json(ctx, "local_explanations.json", local)
    evidence["quality_json"] = _write_json(ctx, "quality.json", quality)
    evidence["sampling_json"] = _write_json(ctx, "sampling_plan.json", sampling)

    # 6. findings and metrics ------------------------------------------------------------
    _global_findings(result, cfg, ranking, prov, plan, scale, target, evidence)
    _group_findings(result, cfg, groups, ranking, evidence, scale)
    _local_findings(result, local, evidence, len(seeds), cfg)
    _quality_findings(result, cfg, add, shap_s, stab, agree, deletion, del_local_shap, del_local_lime, sensitivity, local,
                      evidence, scope)
    _fairness_findings(result, ctx, cfg, ranking, groups, features, evidence, scope)
    m = result.metrics
    for r in ranking[:100]:
        m[f"explanations.shap.mean_abs.{r.feature}"] = r.mean_abs
        m[f"explanations.shap.mean_abs.{r.feature}.ci_low"] = r.ci_low
        m[f"explanations.shap.mean_abs.{r.feature}.ci_high"] = r.ci_high
    m["explanations.shap.background_size"] = explainer.background_size
    m["explanations.shap.sample_size"] = float(plan.size)
    m["explanations.shap.population_rows"] = float(plan.population)
    m["explanations.shap.base_value"] = float(np.mean(shap_s.base_values))
    m["explanations.lime.background_size"] = float(len(background))
    m["explanations.lime.num_samples"] = float(cfg.lime_num_samples)
    m["explanations.lime.seeds"] = float(len(seeds))
    m["explanations.lime.decisions"] = float(len(decisions))
    m["explanations.lime.mean_r2"] = _finite(float(np.mean(lime.scores)))

    details_local = [{kk: v for kk, v in rec.items() if kk not in ("shap", "lime")} for rec in local]
    result.details = _jsonable({
        "explainer": prov, "scale": scale, "explained_output": f"{SCALE_WORDS.get(scale, scale)} of {target}",
        "favourable_outcome": "other than " + target if adverse_is_positive else target,
        "decision_threshold": threshold, "sampling": plan.describe(),
        "background": {k_: v for k_, v in sampling["background"].items() if k_ != "row_positions"},
        "global": global_table, "groups": {a: [{"group": g["group"], "rows": g["rows"], "top": g["ranking"][:cfg.top_k]}
                                               for g in t] for a, t in group_tables.items()},
        "lime": {"num_samples": cfg.lime_num_samples, "seeds": seeds, "mode": "regression on the SHAP output scale",
                 "discretize_continuous": True, "background_rows": len(background),
                 "imputed_missing_values": lime.imputed_values},
        "local": details_local,
        "quality": {"additivity": quality["additivity"], "shap_additivity_check": shap_s.shap_additivity_check,
                    "top_k": scope, "lime_topk_jaccard_mean": float(np.mean(stab["jaccard"])),
                    "lime_topk_jaccard_kappa_mean": float(np.mean(stab["jaccard_kappa"])),
                    "shap_lime_kendall_tau_mean": float(np.nanmean(agree["kendall"])) if np.isfinite(agree["kendall"]).any() else None,
                    "deletion": quality["deletion"], "deletion_local": quality["deletion_local"],
                    "background_sensitivity": sensitivity},
        "evidence": evidence})
    for f in result.findings:
        f.data = _jsonable(f.data)
    ctx.shared["explanations"] = {"ranking": [(r.feature, r.mean_abs) for r in ranking], "scale": scale,
                                  "top": [r.feature for r in ranking[:cfg.top_k]]}
    return result


def _background_sensitivity(ctx: AuditContext, cfg: ExplanationsConfig, explainer: ShapExplainer, adapter: ModelAdapter,
                            encoder: TabularEncoder, X_sample: pd.DataFrame, plan: SamplePlan, shap_s: Any,
                            bg_rows: np.ndarray, k: int) -> dict[str, Any]:
    size = explainer.background_size
    if not size:
        return {"applicable": False,
                "reason": "path-dependent TreeSHAP uses the trees' training cover, not a background sample; "
                          "its values do not depend on a background size"}
    rows = min(cfg.sensitivity_rows, plan.size)
    sizes = sorted({s for s in cfg.sensitivity_sizes if s < size})
    if explainer.route.kind == "permutation":
        rows = min(rows, max(20, cfg.permutation_budget // (explainer.cost_per_row * (len(sizes) + 1))))
    pos = np.sort(ctx.rng("explanations.sensitivity").choice(plan.size, size=rows, replace=False))
    w = plan.weights[pos]
    ref = (w[:, None] * np.abs(shap_s.values[pos])).sum(0) / w.sum()
    table = []
    for s, label in [(size, "redraw"), *[(s, "smaller") for s in sizes]]:
        ctx.progress(f"explanations: background sensitivity, {s} rows ({label})")
        bg, _, _ = _background(ctx, cfg, s, f"explanations.background.{label}.{s}", exclude=bg_rows)
        other = ShapExplainer(adapter, bg, feature_perturbation=explainer.route.feature_perturbation,
                              permutations=cfg.permutations, max_background_agnostic=s, seed=ctx.seed + 1, encoder=encoder)
        if other.route.kind != explainer.route.kind:
            continue
        vals = other.explain(X_sample.iloc[pos]).values
        mean_abs = (w[:, None] * np.abs(vals)).sum(0) / w.sum()
        agree = q.ranking_agreement(ref, mean_abs, k)
        table.append({"background_size": other.background_size, "draw": label, **agree})
    redraw = next((t for t in table if t["draw"] == "redraw"), None)
    return {"applicable": True, "rows": rows, "reference_size": size, "comparisons": table, "k": k,
            "redraw_kendall_topk": redraw["kendall_topk"] if redraw else None,
            "redraw_jaccard_topk": redraw["jaccard_topk"] if redraw else None,
            "redraw_jaccard_topk_kappa": redraw["jaccard_topk_kappa"] if redraw else None,
            "chance_jaccard": redraw["chance_jaccard"] if redraw else None,
            "redraw_relative_l1": redraw["relative_l1"] if redraw else None}


def _local_records(ctx: AuditContext, cfg: ExplanationsConfig, decisions, scores, positive, adverse, adverse_is_positive,
                   X_local: pd.DataFrame, shap_l, lime, stab, agree, features, threshold, target) -> list[dict[str, Any]]:
    out = []
    for j, (row, kind) in enumerate(decisions):
        phi = shap_l.values[j]
        adverse_contrib = phi if adverse_is_positive else -phi
        raw = {f: X_local.iloc[j][f] for f in features}
        codes = reason_codes(adverse_contrib, raw, features, adverse=bool(adverse[row]), n_reasons=cfg.n_reasons,
                             domain=ctx.domain, languages=tuple(cfg.languages), labels=cfg.feature_labels,
                             min_share=cfg.min_reason_share)
        order = np.argsort(-np.abs(phi), kind="stable")
        lime_w = lime.mean_weights[j]
        out.append({
            "row": int(row), "kind": kind, "score": float(scores[row]), "threshold": threshold,
            "decision": "adverse" if adverse[row] else "favourable", "predicted_positive": bool(positive[row]),
            "reason_codes": codes.text, "reasons": [r.__dict__ for r in codes.reasons],
            "values": {f: display_value(raw[f]) for f in features},
            "base_value": float(shap_l.base_values[j]), "output": float(shap_l.output[j]),
            "top_shap": [{"feature": features[i], "value": display_value(raw[features[i]]), "shap": float(phi[i])}
                         for i in order[:cfg.top_k]],
            "top_lime": [{"feature": features[i], "weight": float(lime_w[i])}
                         for i in np.argsort(-np.abs(lime_w), kind="stable")[:cfg.top_k]],
            "lime_conditions": lime.conditions[j][0][:cfg.top_k],
            "lime_seed_jaccard": float(stab["jaccard"][j]), "lime_seed_jaccard_kappa": _finite(float(stab["jaccard_kappa"][j])),
            "shap_lime_kendall_tau": _finite(float(agree["kendall"][j])),
            "shap_lime_top3_overlap": int(agree["top3_overlap"][j]),
            "shap": {f: float(v) for f, v in zip(features, phi)},
            "lime": {"seeds": lime.seeds, "weights": lime.weights[j].tolist(), "r2": lime.scores[j].tolist()},
        })
    return out


def _plots(ctx, cfg, global_table, group_tables, shap_s, X_sample, encoder, local, shap_l, deletion, features,
           scale) -> dict[str, str]:
    """Figures saved as data (`audit.figures`): drawn when the app or a document shows them."""
    ev: dict[str, str] = {}
    word = SCALE_WORDS.get(scale, scale)

    def figure(key: str, name: str, kind: str, **data) -> None:
        ev[key] = ctx.figure(NAME, name, kind, **data)

    figure("global_bar", "global_bar", "shap.global_bar", table=global_table, scale=word)
    figure("beeswarm", "beeswarm", "shap.beeswarm", values=np.round(shap_s.values, 6),
           data=encoder.encode(X_sample), features=features)
    for r in global_table[:cfg.dependence_plots]:
        f = r["feature"]
        figure(f"dependence_{f}", f"dependence_{_safe(f)}", "shap.dependence", feature=f,
               x=([display_value(v) for v in X_sample[f].tolist()] if f in encoder.categories
                  else pd.to_numeric(X_sample[f], errors="coerce").to_numpy(float)),
               phi=np.round(shap_s.values[:, features.index(f)], 6), categorical=f in encoder.categories, scale=word)
    order = [r["feature"] for r in global_table]
    for attr, table in group_tables.items():
        if table:
            figure(f"groups_{attr}", f"groups_{_safe(attr)}", "shap.group_bars",
                   groups={f"{g['group']} (n={g['rows']})": g["ranking"] for g in table}, order=order,
                   attribute=attr, scale=word)
    figure("deletion", "deletion", "explanations.deletion",
           result={k: v for k, v in deletion.items() if k != "per_row_ratio"})
    for j, rec in enumerate(local):
        figure(f"waterfall_{rec['row']}", f"waterfall_row{rec['row']}", "shap.waterfall",
               values=shap_l.values[j], base=float(shap_l.base_values[j]),
               shown=[rec["values"][f] for f in features], features=features,
               title=f"Row {rec['row']}: {rec['kind'].replace('_', ' ')}, {rec['decision']} decision", scale=word)
    return ev


# -- findings -------------------------------------------------------------------------------

def _fmt_rank(r: FeatureImportance) -> str:
    return f"{r.feature} {r.mean_abs:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]"


def _global_findings(result, cfg, ranking, prov, plan, scale, target, evidence) -> None:
    top = ranking[:cfg.top_k]
    word = SCALE_WORDS.get(scale, scale)
    plots = [evidence[k] for k in evidence if k in ("global_bar", "beeswarm") or k.startswith("dependence_")]
    result.findings.append(Finding.make(
        NAME, "Global drivers of the model's output", status=Status.passed, severity=Severity.info,
        metric=f"explanations.shap.mean_abs.{top[0].feature}", value=top[0].mean_abs, ci=(top[0].ci_low, top[0].ci_high),
        references=REF_INTERPRET, evidence=[*plots, evidence["global_json"], evidence["sampling_json"]],
        detail=(f"Mean |SHAP| ({word} of {target}) over {plan.size:,} of {plan.population:,} rows "
                f"(stratified by {', '.join(c.lstrip('_') for c in plan.strata_columns) or 'nothing'}, design-weighted, "
                f"{cfg.confidence:.0%} stratified-bootstrap CI): " + "; ".join(_fmt_rank(r) for r in top) + "."),
        data={"top": [r.as_dict() for r in top]}))
    bg = prov["background_size"]
    detail = (f"{prov['explainer']} ({prov['feature_perturbation']}"
              + (f", background of {bg} rows read back from the explainer's masker" if bg else ", no background")
              + f"); explained output: {word}. " + " ".join(n.rstrip(".") + "." for n in prov["notes"]))
    result.findings.append(Finding.make(
        NAME, "SHAP explainer and background" if bg else "SHAP explainer (needs no background)",
        status=Status.passed, severity=Severity.info,
        metric="explanations.shap.background_size", value=float(bg) if bg else None, references=REF_INTERPRET,
        evidence=[evidence["sampling_json"]], detail=detail.strip(),
        data={k: v for k, v in prov.items() if k != "pipeline_map"}))


def _group_findings(result, cfg, groups, ranking, evidence, scale) -> None:
    top_feats = [r.feature for r in ranking[:cfg.top_k]]
    for attr, gr in groups.items():
        big = {g: v for g, v in gr.items() if v["rows"] >= cfg.min_group_rows}
        flagged = []
        for f in top_feats:
            vals = {g: next(r for r in v["ranking"] if r.feature == f) for g, v in big.items()}
            if len(vals) < 2:
                continue
            hi_g = max(vals, key=lambda g: vals[g].mean_abs)
            lo_g = min(vals, key=lambda g: vals[g].mean_abs)
            hi, lo = vals[hi_g], vals[lo_g]
            ratio = hi.mean_abs / lo.mean_abs if lo.mean_abs > 0 else float("inf")
            if ratio >= cfg.group_ratio and hi.ci_low > lo.ci_high and hi.share >= cfg.min_group_share:
                flagged.append({"feature": f, "higher_group": hi_g, "lower_group": lo_g, "ratio": ratio,
                                "higher": hi.mean_abs, "lower": lo.mean_abs})
        tops = {g: [r.feature for r in v["ranking"][:3]] for g, v in gr.items()}
        top_text = "; ".join(f"{g} (n={gr[g]['rows']}): {', '.join(t)}" for g, t in tops.items())
        ev = [e for e in (evidence.get(f"groups_{attr}"), evidence["groups_json"]) if e]
        if flagged:
            worst = max(flagged, key=lambda d: d["ratio"])
            detail = (f"By {attr}, " + "; ".join(f"{d['feature']} drives the output {d['ratio']:.1f}x more for "
                                                  f"{d['higher_group']} than for {d['lower_group']}" for d in flagged)
                      + f" (non-overlapping CIs). Top drivers per group: {top_text}.")
            result.findings.append(Finding.make(
                NAME, f"A feature drives decisions more for one {attr} group", status=Status.warn,
                severity=cfg.group_severity, metric="explanations.shap.group_ratio", group=attr,
                value=_finite(worst["ratio"]), threshold=cfg.group_ratio, references=REF_FAIR, evidence=ev,
                detail=detail, data={"flagged": flagged, "top_by_group": tops}))
        else:
            result.findings.append(Finding.make(
                NAME, f"Drivers by {attr}", status=Status.passed, severity=Severity.info,
                metric="explanations.shap.group_ratio", group=attr, threshold=cfg.group_ratio, references=REF_FAIR,
                evidence=ev, detail=f"No top-{cfg.top_k} feature is {cfg.group_ratio}x more important for one {attr} "
                                    f"group with non-overlapping CIs. Top drivers per group: {top_text}.",
                data={"top_by_group": tops}))


def _local_findings(result, local, evidence, n_seeds, cfg) -> None:
    example = next((r for r in local if r["decision"] == "adverse"), local[0])
    texts = " / ".join(example["reason_codes"].values())
    waterfalls = [r["waterfall"] for r in local if r.get("waterfall")]
    kinds = {k: sum(1 for r in local if r["kind"] == k) for k in ("most_adverse", "near_threshold", "random")}
    result.findings.append(Finding.make(
        NAME, "Local explanations and reason codes", status=Status.passed, severity=Severity.info,
        metric="explanations.lime.decisions", value=float(len(local)), references=REF_LOCAL,
        evidence=[*waterfalls, evidence["local_json"]],
        detail=(f"{len(local)} decisions explained ({kinds['most_adverse']} most adverse, {kinds['near_threshold']} "
                f"nearest the threshold, {kinds['random']} random) with a SHAP waterfall, LIME over {n_seeds} seeds "
                f"and reason codes in {', '.join(cfg.languages)}. Example, row {example['row']}: {texts}"),
        data={"rows": [{"row": r["row"], "kind": r["kind"], "decision": r["decision"], "reason_codes": r["reason_codes"]}
                       for r in local]}))


def _quality_findings(result, cfg, add, shap_s, stab, agree, deletion, del_shap, del_lime, sens, local, evidence,
                      scope) -> None:
    sev = cfg.quality_severity
    qev = [evidence["quality_json"]]
    m = result.metrics
    row_ids = [r["row"] for r in local]

    # additivity
    bad = add["rows_over_tolerance"]
    n_sample = shap_s.values.shape[0]
    bad_rows = [f"sample #{i}" if i < n_sample else f"row {row_ids[i - n_sample]}" for i in bad[:20]]
    m["explanations.quality.additivity_max_error"] = add["max"]
    m["explanations.quality.additivity_p95_error"] = add["p95"]
    ok = not bad
    result.findings.append(Finding.make(
        NAME, "SHAP additivity", status=Status.passed if ok else Status.warn, severity=Severity.info if ok else sev,
        metric="explanations.quality.additivity_max_error", value=add["max"], threshold=cfg.additivity_atol,
        references=REF_QUALITY, evidence=qev,
        detail=(f"max |Σφ + φ₀ − f(x)| = {add['max']:.3g} (95th percentile {add['p95']:.3g}) on "
                f"{len(add['errors'])} explained rows; tolerance {cfg.additivity_atol:g} + {cfg.additivity_rtol:g}·|f(x)|"
                + ("." if ok else f". {len(bad)} row(s) exceed it — do not rely on the SHAP values of: "
                   + ", ".join(bad_rows) + ".")
                + ("" if shap_s.shap_additivity_check != "failed" else " shap's own additivity check failed.")),
        data={"rows_over_tolerance": len(bad), "shap_additivity_check": shap_s.shap_additivity_check}))

    # LIME stability
    k, p = scope["effective_k"], scope["features"]
    topk_text = (f"top-{k} (top_k {scope['top_k']} capped at half the {p} features)" if k < scope["top_k"]
                 else f"top-{k} of {p} features")
    not_informative = f"Not informative: {scope['reason']}." if not scope["informative"] else ""
    jac, kap = stab["jaccard"], stab["jaccard_kappa"]
    chance = stab["chance_jaccard"]
    m["explanations.quality.top_k_effective"] = float(k)
    m["explanations.quality.lime_topk_jaccard"] = float(jac.mean())
    m["explanations.quality.lime_topk_jaccard_min"] = float(jac.min())
    m["explanations.quality.lime_topk_jaccard_chance"] = _finite(chance)
    m["explanations.quality.lime_topk_jaccard_kappa"] = _finite(float(kap.mean()))
    m["explanations.quality.lime_seed_kendall_tau"] = _finite(float(np.nanmean(stab["kendall"]))) \
        if np.isfinite(stab["kendall"]).any() else None
    unstable = [row_ids[i] for i in np.flatnonzero(kap < cfg.min_lime_jaccard)] if scope["informative"] else []
    ok = not scope["informative"] or kap.mean() >= cfg.min_lime_jaccard
    stats = (f"Mean pairwise {topk_text} Jaccard across {len(local[0]['lime']['seeds'])} seeds: {jac.mean():.2f} "
             f"(min {jac.min():.2f}); two random top-{k} sets give {chance:.2f}, so chance-corrected "
             f"{kap.mean():.2f} (min {kap.min():.2f}; 0 = no better than random, 1 = the same top-{k} at every seed), "
             f"with {cfg.lime_num_samples} samples per explanation. ")
    result.findings.append(Finding.make(
        NAME, "LIME stability across seeds", status=Status.passed if ok else Status.warn,
        severity=Severity.info if ok else sev, metric="explanations.quality.lime_topk_jaccard_kappa",
        value=_finite(float(kap.mean())) if scope["informative"] else None,
        threshold=cfg.min_lime_jaccard, references=REF_QUALITY, evidence=qev,
        detail=stats + (not_informative or (
            f"Do not rely on the LIME explanation of row(s) {', '.join(map(str, unstable))}: their top features "
            "change with the seed." if unstable else "Every explained decision is above the threshold.")),
        data={"unstable_rows": unstable, "jaccard": float(jac.mean()), "jaccard_kappa": _finite(float(kap.mean())),
              "chance_jaccard": chance, "top_k": scope, "per_row": dict(zip(map(str, row_ids), jac.tolist())),
              "per_row_kappa": dict(zip(map(str, row_ids), kap.tolist()))}))

    # SHAP-LIME agreement
    tau = agree["kendall"]
    tau_mean = float(np.nanmean(tau)) if np.isfinite(tau).any() else float("nan")
    jac_a, kap_a = float(np.mean(agree["jaccard"])), float(np.mean(agree["jaccard_kappa"]))
    m["explanations.quality.shap_lime_kendall_tau"] = _finite(tau_mean)
    m["explanations.quality.shap_lime_topk_jaccard"] = jac_a
    m["explanations.quality.shap_lime_topk_jaccard_kappa"] = _finite(kap_a)
    disagree = [row_ids[i] for i in np.flatnonzero(agree["top3_overlap"] < 2)]
    ok = not scope["informative"] or (np.isfinite(tau_mean) and tau_mean >= cfg.min_shap_lime_tau)
    result.findings.append(Finding.make(
        NAME, "SHAP–LIME agreement", status=Status.passed if ok else Status.warn, severity=Severity.info if ok else sev,
        metric="explanations.quality.shap_lime_kendall_tau", value=_finite(tau_mean) if scope["informative"] else None,
        threshold=cfg.min_shap_lime_tau, references=REF_QUALITY, evidence=qev,
        detail=(f"Per-decision Kendall τ of |SHAP| and |LIME| on the union of their {topk_text}: mean {tau_mean:.2f} "
                f"(unrelated rankings give τ ≤ 0 on average); top-{k} Jaccard {jac_a:.2f} against "
                f"{agree['chance_jaccard']:.2f} for random sets, chance-corrected {kap_a:.2f}. "
                + (not_informative or (
                    f"Rows whose top-3 features mostly disagree ({', '.join(map(str, disagree))}): treat their "
                    "explanations as uncertain and give reasons from SHAP only with caution." if disagree
                    else "Every decision shares at least two of its top-3 features."))),
        data={"rows_top3_disagree": disagree, "kendall": _finite(tau_mean), "jaccard": jac_a,
              "jaccard_kappa": _finite(kap_a), "chance_jaccard": agree["chance_jaccard"], "top_k": scope}))

    # deletion faithfulness
    ratio = deletion["ratio"]
    m["explanations.quality.deletion_auc_ratio"] = _finite(ratio)
    m["explanations.quality.deletion_auc"] = deletion["auc"]
    m["explanations.quality.deletion_random_auc"] = deletion["random_auc"]
    m["explanations.quality.lime_deletion_auc_ratio"] = _finite(del_lime["ratio"])
    m["explanations.quality.local_deletion_auc_ratio"] = _finite(del_shap["ratio"])
    weak = int((deletion["per_row_ratio"] < 1).sum())
    ok = np.isfinite(ratio) and ratio >= cfg.min_deletion_ratio
    dev = [e for e in (evidence.get("deletion"),) if e] + qev
    result.findings.append(Finding.make(
        NAME, "Faithfulness (deletion curve)", status=Status.passed if ok else Status.warn,
        severity=Severity.info if ok else sev, metric="explanations.quality.deletion_auc_ratio", value=_finite(ratio),
        threshold=cfg.min_deletion_ratio, references=REF_QUALITY, evidence=dev,
        detail=(f"Replacing the top-k SHAP features (k ≤ {deletion['steps']}) by background values changes the output "
                f"{ratio:.2f}x as much as a random order (AUC {deletion['auc']:.3g} vs {deletion['random_auc']:.3g}, "
                f"{deletion['rows']} sampled rows); on the {del_shap['rows']} selected decisions SHAP "
                f"{del_shap['ratio']:.2f}x, LIME {del_lime['ratio']:.2f}x. "
                + ("" if ok else "SHAP rankings are barely better than random here: do not use them to say which "
                   "features mattered most. ") + f"{weak} row(s) score below random."),
        data={"rows_below_random": weak}))

    # background sensitivity
    if not sens.get("applicable"):
        m["explanations.quality.background_rank_tau"] = None
        result.findings.append(Finding.make(
            NAME, "Sensitivity to the background size: not applicable", status=Status.passed, severity=Severity.info,
            metric="explanations.quality.background_rank_tau", references=REF_QUALITY, evidence=qev,
            detail=f"Not applicable: {sens['reason']}.", data=sens))
        return
    tau_b, jac_b, kap_b = sens["redraw_kendall_topk"], sens["redraw_jaccard_topk"], sens["redraw_jaccard_topk_kappa"]
    k = sens["k"]
    m["explanations.quality.background_rank_tau"] = _finite(tau_b)
    m["explanations.quality.background_topk_jaccard"] = _finite(jac_b)
    m["explanations.quality.background_topk_jaccard_kappa"] = _finite(kap_b)
    m["explanations.quality.background_relative_l1"] = _finite(sens["redraw_relative_l1"])
    change = sens["redraw_relative_l1"]
    stable_rank = not scope["informative"] or (kap_b is not None and np.isfinite(kap_b) and kap_b >= cfg.min_background_jaccard)
    ok = stable_rank and change is not None and change <= cfg.max_background_change
    smaller = "; ".join(f"{t['background_size']} rows: τ {t['kendall_topk']:.2f}, chance-corrected Jaccard "
                        f"{t['jaccard_topk_kappa']:.2f}" for t in sens["comparisons"] if t["draw"] == "smaller")
    not_informative = f" The top-{k} overlap is not informative: {scope['reason']}." if not scope["informative"] else ""
    result.findings.append(Finding.make(
        NAME, "Sensitivity to the background size", status=Status.passed if ok else Status.warn,
        severity=Severity.info if ok else sev, metric="explanations.quality.background_topk_jaccard_kappa",
        value=_finite(kap_b) if scope["informative"] else None,
        threshold=cfg.min_background_jaccard, references=REF_QUALITY, evidence=qev,
        detail=(f"A second, independent background of {sens['reference_size']} rows gives the same global top-{k} "
                f"features with Jaccard {jac_b:.2f} against {sens['chance_jaccard']:.2f} for random sets, "
                f"chance-corrected {kap_b:.2f} (Kendall τ of their order {tau_b:.2f}); global mean |SHAP| moves by "
                f"{change:.1%} (relative L1; limit {cfg.max_background_change:.0%}) on {sens['rows']} rows"
                + (f". Smaller backgrounds — {smaller}" if smaller else "") + "." + not_informative + " "
                + ("" if ok else "The global ranking depends on which background rows were drawn: raise "
                   "background_size before relying on the top drivers.")),
        data=sens))


def _standing(feature: str, ranking: list[FeatureImportance]) -> FeatureImportance | None:
    return next((r for r in ranking if r.feature == feature), None)


def _fairness_findings(result, ctx: AuditContext, cfg, ranking, groups, features, evidence, scope) -> None:
    """A protected attribute or proxy the model relies on: a global share of mean |SHAP| at or above the floor and
    a global rank within the effective top-k.  Per-group standings are reported, never decisive on their own."""
    k, floor = scope["effective_k"], cfg.min_driver_share
    proxies = ctx.shared.get("proxies")
    candidates: list[dict[str, Any]] = [{"feature": a, "attribute": a, "kind": "protected attribute"}
                                        for a in ctx.data.protected if a in features]
    for p in proxies or []:
        if p.get("feature") in features:
            candidates.append({"feature": p["feature"], "attribute": p.get("attribute"), "kind": "proxy",
                               "score": p.get("score"), "method": p.get("method")})
    standings = []
    for c in candidates:
        entry = _standing(c["feature"], ranking)
        by_group = {}
        for a, gr in groups.items():
            for g, v in gr.items():
                mine = _standing(c["feature"], v["ranking"]) if v["rows"] >= cfg.min_group_rows else None
                if mine is not None:
                    by_group[f"{a}={g}"] = {"rank": mine.rank, "share": mine.share}
        standings.append({**c, "global_rank": entry.rank if entry else None,
                          "global_share": entry.share if entry else 0.0,
                          "global_share_ci": [entry.share_ci_low, entry.share_ci_high] if entry else None,
                          "global_rank_ci": [entry.rank_ci_low, entry.rank_ci_high] if entry else None,
                          "mean_abs": entry.mean_abs if entry else None, "by_group": by_group,
                          "driver": bool(entry and entry.share >= floor and entry.rank <= k)})
    rule = {"min_driver_share": floor, "effective_k": k, "features": len(features)}
    ev = [evidence["global_json"], evidence["groups_json"]]
    source = ("the fairness check reported no proxies" if proxies == [] else
              "the fairness check did not report proxies (not run or no protected attributes)" if proxies is None
              else f"{len(proxies)} proxy candidate(s) from the fairness check")
    hits = [h for h in standings if h["driver"]]
    for h in hits:
        is_attr = h["kind"] == "protected attribute"
        ci = h["global_rank_ci"]
        top_groups = {g: v for g, v in h["by_group"].items() if v["rank"] <= k and v["share"] >= floor}
        where = (f"#{h['global_rank']} of {len(features)} globally with {h['global_share']:.1%} of the total mean |SHAP|"
                 + (f" (95% rank CI {ci[0]}–{ci[1]})" if ci else ""))
        if top_groups:
            where += f"; in the top {k} for " + ", ".join(f"{g} (#{v['rank']}, {v['share']:.1%})"
                                                         for g, v in top_groups.items())
        what = (f"the protected attribute {h['feature']}" if is_attr else
                f"{h['feature']}, a proxy for {h['attribute']} ({h.get('method')}, score {h.get('score')})")
        result.findings.append(Finding.make(
            NAME, f"{'Protected attribute' if is_attr else 'Proxy'} among the top drivers: {h['feature']}",
            status=Status.warn, severity=cfg.protected_severity if is_attr else cfg.proxy_severity,
            metric="explanations.shap.protected_share" if is_attr else "explanations.shap.proxy_share",
            group=h["feature"], value=float(h["global_share"]), threshold=floor, ci=h["global_share_ci"],
            references=REF_FAIR, evidence=ev,
            detail=(f"SHAP ranks {what} {where}, at or above the {floor:.0%} floor and within the top {k}. Decisions "
                    f"may depend on {h['attribute']} " + ("directly" if is_attr else "through this feature")
                    + "; review with the fairness findings whether this is justified and documented."),
            data={**h, "rule": rule}))
    if not hits:
        result.findings.append(Finding.make(
            NAME, "No protected attribute or proxy among the top drivers", status=Status.passed, severity=Severity.info,
            metric="explanations.shap.proxy_share", references=REF_FAIR, evidence=ev,
            value=max((h["global_share"] for h in standings), default=None), threshold=floor,
            detail=(f"{len(candidates)} model input(s) are protected attributes or reported proxies "
                    f"({', '.join(c['feature'] for c in candidates) or 'none'}); none has at least {floor:.0%} of the "
                    f"total mean |SHAP| within the global top {k}"
                    + (": " + ", ".join(f"{h['feature']} #{h['global_rank']} ({h['global_share']:.1%})"
                                        for h in standings) if standings else "")
                    + f". Protected attributes that are model inputs: "
                    f"{', '.join(a for a in ctx.data.protected if a in features) or 'none'}; {source}."),
            data={"candidates": standings, "rule": rule}))


CHECK = Check(name=NAME, run=run, config=ExplanationsConfig,
              references=tuple(REF_LOCAL + [R["bias"]]),
              requires=frozenset({"tabular"}))
