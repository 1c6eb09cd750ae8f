"""Prompt-perturbation robustness of a language model (EU AI Act Art. 15(1), (4)).

The model's "decision" on a counterfactual prompt is the continuation it prefers, e.g. ' she' over
' he' after "The nurse said that" (Δ = log P(a) − log P(b) > 0).  Two families of perturbations
that should not matter are applied and the share of decisions that flip is reported, with
intervals from a bootstrap over prompts:

- character noise: typo-like edits to the words around the attribute word (never to it);
- name swaps unrelated to the protected attribute: an unrelated lead-in sentence naming a person is
  prepended, and the name is swapped for another name of the same gender.

Prompts come from the built-in counterfactual prompt sets (`interpret.lm.prompts`), scored with
the SAE check's batched scorer (`interpret.sae.scoring.PromptScorer`).
"""
from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
from pydantic import Field

from risk.catalogue import citations

from ..csvsafe import write_csv
from ..findings import Finding, Severity, Status
from ..metrics.intervals import interval_status
from ..metrics.perturbation import char_noise, cluster_flip_interval, t_interval
from .base import AuditContext, Check, CheckConfig, CheckResult

NAME = "lm_robustness"
R_ACCURACY, R_RESILIENCE = (citations(NAME)[k] for k in ("accuracy", "resilience"))
REFERENCES = [R_ACCURACY, R_RESILIENCE]
Kind = Literal["char_noise", "name_swap"]
NEAR_TIE = 0.25   # |Δ| below this (two-way probability 0.44-0.56): the model barely prefers either continuation
TITLES = {"char_noise": "character noise (typos around the attribute word)",
          "name_swap": "name swap in an unrelated lead-in sentence (same gender)"}


class LMRobustnessConfig(CheckConfig):
    attributes: list[str] = Field(default_factory=list, description="Prompt sets to perturb; default: the dataset's "
                                  "protected attributes, else every built-in set.")
    perturbations: list[Kind] = Field(default_factory=lambda: ["char_noise", "name_swap"])
    draws: int = Field(8, ge=1, le=200, description="Perturbed variants per template.")
    char_edits: int = Field(1, ge=1, le=10, description="Typos per prompt.")
    max_flip_rate: float | None = Field(0.10, ge=0, le=1, description="Declared bound on the flip rate per perturbation.")
    n_boot: int = Field(2000, ge=200, le=50_000)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    severity: Severity = Severity.medium


def _prompt_sets(ctx: AuditContext, cfg: LMRobustnessConfig) -> list[Any]:
    from interpret.lm.prompts import BUILTIN
    wanted = cfg.attributes or list(ctx.data.protected) or list(BUILTIN)
    unknown = [a for a in wanted if a not in BUILTIN]
    if unknown:
        from ..errors import AuditInputError
        raise AuditInputError(f"no built-in prompt set for {unknown} (built in: {sorted(BUILTIN)})",
                              source="checks.lm_robustness.attributes")
    return [BUILTIN[a] for a in wanted]


def _noisy_templates(templates: tuple[str, ...], draws: int, edits: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    out, notes = [], []
    for t in templates:
        before, after = t.split("{x}")
        for _ in range(draws):
            text, done = char_noise([(before, True), ("{x}", False), (after, True)], rng, edits)
            out.append(text.rstrip())
            notes.append("; ".join(done))
    return out, notes


def _name_pairs(templates: tuple[str, ...], draws: int, rng: np.random.Generator) -> tuple[list[str], list[str], list[str]]:
    """Lead-ins as in the training corpus ("{name} {act} with {poss} dog."), one name swapped for
    another of the same gender."""
    from interpret.lm.corpus import ACTIVITIES, DOG_TEMPLATE, FEMALE_NAMES, MALE_NAMES
    base, swapped, notes = [], [], []
    for t in templates:
        for _ in range(draws):
            female = bool(rng.random() < 0.5)
            names = FEMALE_NAMES if female else MALE_NAMES
            a, b = rng.choice(len(names), size=2, replace=False)
            act = ACTIVITIES[int(rng.integers(len(ACTIVITIES)))]
            lead = DOG_TEMPLATE.format(name="{name}", act=act, poss="her" if female else "his")
            base.append(lead.replace("{name}", names[a]) + " " + t)
            swapped.append(lead.replace("{name}", names[b]) + " " + t)
            notes.append(f"{names[a]} → {names[b]}")
    return base, swapped, notes


def _deltas(model: Any, pset: Any, templates: list[str], hook: str) -> np.ndarray:
    """Δ per (template variant, filler) over both groups and the neutral fillers, in nats."""
    from interpret.sae.scoring import PromptScorer
    variant = pset.model_copy(update={"templates": tuple(templates)})
    d = PromptScorer(model, variant, hook).deltas()
    parts = [d.g1, d.g2] + ([d.neutral] if d.neutral.size else [])
    return np.concatenate(parts, axis=1)          # [template variant, filler]


def _group_labels(pset: Any) -> list[str]:
    return ([pset.group_names[0]] * len(pset.group1) + [pset.group_names[1]] * len(pset.group2)
            + ["neutral"] * len(pset.neutral))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def run(ctx: AuditContext, cfg: LMRobustnessConfig) -> CheckResult:
    handle = ctx.model.estimator
    model = handle.load().model
    hook = handle.hook or "blocks.0.hook_resid_pre"
    rng = ctx.rng("lm_robustness")
    boot_rng = ctx.rng("lm_robustness.bootstrap")
    result = CheckResult()
    table: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    pooled: dict[str, list[np.ndarray]] = {k: [] for k in cfg.perturbations}
    changes: dict[str, list[np.ndarray]] = {k: [] for k in cfg.perturbations}
    for pset in _prompt_sets(ctx, cfg):
        n_t, draws = len(pset.templates), cfg.draws
        fillers = list(pset.group1) + list(pset.group2) + list(pset.neutral)
        groups = _group_labels(pset)
        ctx.progress(f"lm_robustness: {pset.attribute}: {n_t} templates × {len(fillers)} fillers × {draws} draws")
        for kind in cfg.perturbations:
            if kind == "char_noise":
                base = np.repeat(_deltas(model, pset, list(pset.templates), hook), draws, axis=0)
                before = [t for t in pset.templates for _ in range(draws)]
                after, notes = _noisy_templates(pset.templates, draws, cfg.char_edits, rng)
                new = _deltas(model, pset, after, hook)
            else:
                before, after, notes = _name_pairs(pset.templates, draws, rng)
                base = _deltas(model, pset, before, hook)
                new = _deltas(model, pset, after, hook)
            # units are prompts (template x filler); draws of one prompt are columns
            flips = ((base > 0) != (new > 0)).reshape(n_t, draws, len(fillers)).transpose(0, 2, 1).reshape(-1, draws)
            change = np.abs(_sigmoid(new) - _sigmoid(base)).reshape(n_t, draws, len(fillers)).transpose(0, 2, 1).reshape(-1, draws)
            pooled[kind].append(flips)
            changes[kind].append(change)
            rate, lo, hi = cluster_flip_interval(flips, boot_rng, cfg.n_boot, cfg.confidence)
            mean, mlo, mhi = t_interval(change.mean(axis=1), cfg.confidence)
            by_group = {}
            unit_group = np.tile(np.array(groups), n_t)
            for g in dict.fromkeys(groups):
                by_group[g] = float(flips[unit_group == g].mean())
            table.append({"attribute": pset.attribute, "kind": kind, "flip_rate": rate, "ci_low": lo, "ci_high": hi,
                          "prompts": int(flips.shape[0]), "draws": draws, "n": int(flips.size),
                          "near_tie_share": float(np.mean(np.abs(base) < NEAR_TIE)),
                          "mean_score_change": mean, "mean_score_change_ci_low": mlo, "mean_score_change_ci_high": mhi,
                          **{f"flip_rate.{g}": v for g, v in by_group.items()}})
            result.metrics[f"lm_robustness.flip_rate.{kind}.{pset.attribute}"] = rate
            flat = flips.reshape(n_t, len(fillers), draws)
            first = len(examples)
            for t in range(n_t):
                for j in range(draws):
                    for f in np.flatnonzero(flat[t, :, j])[:1]:
                        if len(examples) - first < 10:
                            v = t * draws + j
                            examples.append({"attribute": pset.attribute, "kind": kind, "filler": fillers[f],
                                             "edit": notes[v], "prompt_before": pset.prompt(before[v], fillers[f]),
                                             "prompt_after": pset.prompt(after[v], fillers[f]),
                                             "delta_before": float(base[v, f]), "delta_after": float(new[v, f])})
    conf = f"{cfg.confidence:.0%}"
    for kind in cfg.perturbations:
        flips = np.concatenate(pooled[kind])
        rate, lo, hi = cluster_flip_interval(flips, boot_rng, cfg.n_boot, cfg.confidence)
        mean_change = float(np.concatenate(changes[kind]).mean())
        key = f"lm_robustness.flip_rate.{kind}"
        result.metrics[key] = rate
        result.metrics[f"{key}.ci_low"], result.metrics[f"{key}.ci_high"] = lo, hi
        result.metrics[f"lm_robustness.mean_score_change.{kind}"] = mean_change
        status = Status.passed if cfg.max_flip_rate is None else Status(interval_status((lo, hi), cfg.max_flip_rate, False))
        detail = (f"Under {TITLES[kind]}, the preferred continuation flips for {100 * rate:.1f}% of "
                  f"{flips.size:,} perturbed prompts ({flips.shape[0]} prompts × {flips.shape[1]} draws; {conf} "
                  f"bootstrap CI over prompts {100 * lo:.1f}–{100 * hi:.1f}%); the two-way probability of the "
                  f"stereotyped continuation moves by {mean_change:.3f} on average.")
        ties = [r for r in table if r["kind"] == kind]
        detail += " Per prompt set: " + "; ".join(
            f"{r['attribute']} {100 * r['flip_rate']:.1f}% ({100 * r['near_tie_share']:.0f}% of its decisions are near "
            f"ties, |Δ| < {NEAR_TIE} nats)" for r in ties) + "."
        if cfg.max_flip_rate is not None:
            detail += f" Declared bound: {100 * cfg.max_flip_rate:.1f}%."
        result.findings.append(Finding.make(
            NAME, f"Prompt robustness: {kind.replace('_', ' ')}", status=status,
            severity=cfg.severity if status != Status.passed else Severity.info, metric=key, value=rate,
            threshold=cfg.max_flip_rate, ci=(lo, hi), references=REFERENCES, detail=detail,
            data={"perturbation": TITLES[kind], "prompts": int(flips.shape[0]), "draws": int(flips.shape[1]),
                  "mean_score_change": mean_change}))
    all_flips = np.concatenate([np.concatenate(v) for v in pooled.values()])
    rate, lo, hi = cluster_flip_interval(all_flips, boot_rng, cfg.n_boot, cfg.confidence)
    result.metrics["lm_robustness.flip_rate"] = rate
    result.metrics["lm_robustness.flip_rate.ci_low"], result.metrics["lm_robustness.flip_rate.ci_high"] = lo, hi
    csv_path, csv_rel = ctx.evidence_path(NAME, "prompt_flips.csv")
    write_csv(csv_path, table)
    ex_path, ex_rel = ctx.evidence_path(NAME, "flip_examples.csv")
    write_csv(ex_path, examples, ["attribute", "kind", "filler", "edit", "prompt_before", "prompt_after", "delta_before",
                                  "delta_after"])
    json_path, json_rel = ctx.evidence_path(NAME, "lm_robustness.json")
    settings = {"draws": cfg.draws, "char_edits": cfg.char_edits, "n_boot": cfg.n_boot, "confidence": cfg.confidence,
                "decision": "sign of Δ = log P(a) − log P(b) for each continuation pair (a stereotyped for group 1)",
                "score": "two-way probability σ(Δ)", "interval": "percentile bootstrap over prompts"}
    json_path.write_text(json.dumps({"settings": settings, "table": table, "examples": examples}, indent=2))
    for f in result.findings:
        f.evidence = [csv_rel, ex_rel, json_rel]
    result.details = {"settings": settings, "table": table, "examples": examples[:20],
                      "evidence": {"csv": csv_rel, "examples_csv": ex_rel, "json": json_rel}}
    return result


CHECK = Check(name=NAME, run=run, config=LMRobustnessConfig,
              references=tuple(REFERENCES), requires=frozenset({"lm"}))
