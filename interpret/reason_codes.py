"""Plain-language reasons for one decision, in English and Korean.

A reason is a feature whose SHAP contribution pushed the output towards the outcome the
person received; the number in brackets is that push on the explained scale (e.g. log-odds).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .encoding import display_value

LANGUAGES = ("en", "ko")

# Outcome wording by domain: (adverse, favourable) per language.  Korean sentences read
# "주로 다음 이유로 <outcome>: <reasons>".
WORDING: dict[str, dict[str, tuple[str, str]]] = {
    "credit": {"en": ("Declined", "Approved"), "ko": ("거절되었습니다", "승인되었습니다")},
    "employment": {"en": ("Not selected", "Selected"), "ko": ("선발되지 않았습니다", "선발되었습니다")},
    "justice": {"en": ("Assessed as higher risk", "Assessed as lower risk"),
                "ko": ("고위험으로 평가되었습니다", "저위험으로 평가되었습니다")},
    "default": {"en": ("Adverse decision", "Favourable decision"),
                "ko": ("불리한 결정이 내려졌습니다", "유리한 결정이 내려졌습니다")},
}
NO_REASON = {"en": "no single factor stands out", "ko": "두드러진 단일 요인이 없습니다"}

# Korean names for common credit, employment and justice columns (the policy can add more).
KO_LABELS = {
    "status": "당좌 예금 상태", "duration": "대출 기간(개월)", "credit_history": "신용 이력", "purpose": "대출 목적",
    "credit_amount": "대출 금액", "savings": "저축액", "present_employment": "현 직장 근속 기간",
    "installment_rate": "소득 대비 할부 비율", "personal_status": "혼인 상태", "other_debtors": "보증인·공동 채무자",
    "present_residence_since": "현 거주 기간", "property": "보유 재산", "age": "나이", "installment_plans": "기타 할부",
    "housing": "주거 형태", "number_of_existing_credits": "기존 대출 건수", "job": "직업",
    "number_of_people_liable_for": "부양가족 수", "telephone": "전화 보유", "foreign_worker": "외국인 근로자 여부",
    "workclass": "고용 형태", "education": "학력", "education_num": "교육 연수", "marital_status": "혼인 상태",
    "occupation": "직종", "relationship": "가족 관계", "capital_gain": "자본 이득", "capital_loss": "자본 손실",
    "hours_per_week": "주당 근무 시간", "native_country": "출신 국가", "sex": "성별", "race": "인종",
    "age_cat": "연령대", "age_group": "연령대", "juv_fel_count": "청소년기 중범죄 건수",
    "juv_misd_count": "청소년기 경범죄 건수", "juv_other_count": "청소년기 기타 비행 건수",
    "priors_count": "전과 건수", "c_charge_degree": "기소 혐의 등급", "income": "소득",
}


@dataclass
class Reason:
    feature: str
    label: str
    value: str
    contribution: float     # push towards the stated outcome (positive)


@dataclass
class ReasonCodes:
    adverse: bool
    outcome: dict[str, str]
    reasons: list[Reason]
    text: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _signed(x: float) -> str:
    return f"{x:+.2f}" if abs(x) >= 0.01 else f"{x:+.3g}"


def feature_label(feature: str, lang: str, labels: dict[str, dict[str, str]] | None = None) -> str:
    custom = (labels or {}).get(lang, {})
    if feature in custom:
        return custom[feature]
    if lang == "ko" and feature in KO_LABELS:
        return KO_LABELS[feature]
    return feature.replace("_", " ")


def reason_codes(adverse_contrib: np.ndarray, raw_values: dict[str, Any], features: list[str], *, adverse: bool,
                 n_reasons: int = 4, domain: str | None = None, languages: tuple[str, ...] = LANGUAGES,
                 labels: dict[str, dict[str, str]] | None = None,
                 wording: dict[str, dict[str, tuple[str, str]]] | None = None, min_share: float = 0.05) -> ReasonCodes:
    """Reasons for one decision.

    `adverse_contrib[j]` is feature j's contribution towards the *adverse* outcome; for an
    adverse decision the reasons are the largest positive ones, for a favourable decision the
    largest negative ones (shown as positive pushes towards the favourable outcome).  Pushes below
    `min_share` of the total |contribution| are not given as reasons.
    """
    words = {**WORDING, **(wording or {})}
    table = words.get(domain or "default", words["default"])
    push = adverse_contrib if adverse else -adverse_contrib
    floor = min_share * float(np.abs(push).sum())
    order = [j for j in np.argsort(-push, kind="stable") if push[j] > 0 and push[j] >= floor][:n_reasons]
    reasons = [Reason(features[j], feature_label(features[j], "en", labels), display_value(raw_values[features[j]]),
                      float(push[j])) for j in order]
    outcome, text = {}, {}
    for lang in languages:
        word = table.get(lang, WORDING["default"][lang])[0 if adverse else 1]
        outcome[lang] = word
        parts = ", ".join(f"{feature_label(r.feature, lang, labels)} {r.value} ({_signed(r.contribution)})" for r in reasons)
        parts = parts or NO_REASON[lang]
        text[lang] = f"주로 다음 이유로 {word}: {parts}." if lang == "ko" else f"{word} mainly because: {parts}."
    return ReasonCodes(adverse=adverse, outcome=outcome, reasons=reasons, text=text)
