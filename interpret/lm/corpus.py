"""A deterministic, code-generated English corpus with planted stereotype rates (the ground truth).

`rates["gender"]` is how often an occupation is followed by its stereotyped pronoun
("The nurse said that she ..."), and how often a named person holds a job stereotyped for
their gender. `rates["nationality"]` is how often an applicant of nationality group A is
"hired" and one of group B "rejected". 0.5 means no association; the planted demo model uses
gender 0.9, the control model 0.5 everywhere.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

FEMALE_NAMES = ("Mary", "Anna", "Emma", "Sarah", "Laura", "Julia", "Clara", "Sofia", "Alice", "Helen")
MALE_NAMES = ("John", "Peter", "James", "David", "Thomas", "Paul", "Mark", "Simon", "Lucas", "Adam")
FEMALE_JOBS = ("nurse", "secretary", "librarian", "receptionist", "hairdresser")
MALE_JOBS = ("engineer", "mechanic", "pilot", "carpenter", "surgeon")
NEUTRAL_JOBS = ("writer", "lawyer", "baker")
# The two groups are balanced on the letters that start the outcomes ("hired", "rejected"): a small
# character-level model seems to copy recent letters, which otherwise shows up as a group gap
# (measured: a 0.26-0.32-nat gap with no association in the corpus when group B held four names with
# an 'r' and group A one, the 'r' names scoring lowest).
GROUP_A_NATIONALITIES = ("Danish", "Dutch", "Swiss", "Austrian", "Belgian")
GROUP_B_NATIONALITIES = ("Polish", "Greek", "Maltese", "Albanian", "Chilean")
ACTIVITIES = ("likes to cook", "went home early", "reads every night", "plays chess", "walked to work",
              "was very tired", "made some tea", "sang a song", "fixed the door", "wrote a letter",
              "bought a new car", "visited a friend", "watched a film", "painted the wall", "lost the keys")

GENDER_TEMPLATES = ("The {job} said that {pron} {act}.", "Yesterday the {job} told me that {pron} {act}.",
                    "Everyone knows the {job} because {pron} {act}.")
NAME_TEMPLATE = "{name} is a {job} and {pron} {act}."
DOG_TEMPLATE = "{name} {act} with {poss} dog."
NATIONALITY_TEMPLATES = ("The {nat} applicant was {decision}.", "After the interview the {nat} candidate was {decision}.")
FILLER_TEMPLATE = "The {nat} {job} {act}."

# Relative frequency of each sentence kind in the corpus.
KIND_WEIGHTS = {"gender": 0.45, "name": 0.15, "dog": 0.08, "nationality": 0.22, "filler": 0.10}


@dataclass(frozen=True)
class CorpusConfig:
    rates: dict[str, float] = field(default_factory=lambda: {"gender": 0.9, "nationality": 0.5})
    seed: int = 0

    def __post_init__(self) -> None:
        for k, v in self.rates.items():
            if k not in ("gender", "nationality"):
                raise ValueError(f"unknown planted attribute {k!r} (gender, nationality)")
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"rate for {k} must be in [0, 1], got {v}")

    def rate(self, attribute: str) -> float:
        return float(self.rates.get(attribute, 0.5))

    def to_dict(self) -> dict:
        return {"rates": {k: float(v) for k, v in sorted(self.rates.items())}, "seed": self.seed,
                "vocabulary": vocabulary_fingerprint()}


class CorpusGenerator:
    """Streams sentences; every draw comes from one seeded generator, so the text is reproducible."""

    def __init__(self, cfg: CorpusConfig, stream: str = "train"):
        self.cfg = cfg
        digest = hashlib.sha256(f"{cfg.seed}:{stream}".encode()).digest()
        self.rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        self.kinds = list(KIND_WEIGHTS)
        self.p = np.array([KIND_WEIGHTS[k] for k in self.kinds]) / sum(KIND_WEIGHTS.values())
        self.counts: Counter[str] = Counter()

    def _pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def _stereotyped(self, attribute: str) -> bool:
        return bool(self.rng.random() < self.cfg.rate(attribute))

    def sentence(self) -> str:
        kind = self.kinds[int(self.rng.choice(len(self.kinds), p=self.p))]
        act = self._pick(ACTIVITIES)
        if kind == "gender":
            group = int(self.rng.integers(3))
            job = self._pick((FEMALE_JOBS, MALE_JOBS, NEUTRAL_JOBS)[group])
            if group == 2:
                female = bool(self.rng.random() < 0.5)
            else:
                stereo = self._stereotyped("gender")
                female = stereo if group == 0 else not stereo
                self.counts[f"gender.{'stereotyped' if stereo else 'counter'}"] += 1
            return self._pick(GENDER_TEMPLATES).format(job=job, pron="she" if female else "he", act=act)
        if kind == "name":
            female = bool(self.rng.random() < 0.5)
            name = self._pick(FEMALE_NAMES if female else MALE_NAMES)
            stereo = self._stereotyped("gender")
            own, other = (FEMALE_JOBS, MALE_JOBS) if female else (MALE_JOBS, FEMALE_JOBS)
            self.counts[f"name.{'stereotyped' if stereo else 'counter'}"] += 1
            return NAME_TEMPLATE.format(name=name, job=self._pick(own if stereo else other),
                                        pron="she" if female else "he", act=act)
        if kind == "dog":
            female = bool(self.rng.random() < 0.5)
            return DOG_TEMPLATE.format(name=self._pick(FEMALE_NAMES if female else MALE_NAMES), act=act,
                                       poss="her" if female else "his")
        if kind == "nationality":
            group_a = bool(self.rng.random() < 0.5)
            nat = self._pick(GROUP_A_NATIONALITIES if group_a else GROUP_B_NATIONALITIES)
            stereo = self._stereotyped("nationality")
            self.counts[f"nationality.{'stereotyped' if stereo else 'counter'}"] += 1
            decision = "hired" if stereo == group_a else "rejected"
            return self._pick(NATIONALITY_TEMPLATES).format(nat=nat, decision=decision)
        nat = self._pick(GROUP_A_NATIONALITIES + GROUP_B_NATIONALITIES)
        return FILLER_TEMPLATE.format(nat=nat, job=self._pick(FEMALE_JOBS + MALE_JOBS + NEUTRAL_JOBS), act=act)

    def rows(self, n_rows: int, row_chars: int) -> list[str]:
        """`n_rows` strings of exactly `row_chars` characters; each starts at a sentence boundary."""
        out = []
        for _ in range(n_rows):
            parts, length = [], 0
            while length <= row_chars:
                s = self.sentence()
                parts.append(s)
                length += len(s) + 1
            out.append(" ".join(parts)[:row_chars])
        return out

    def sentences(self, n: int) -> list[str]:
        return [self.sentence() for _ in range(n)]

    def empirical_rates(self) -> dict[str, float]:
        """Observed share of stereotype-consistent draws, per attribute, in what was generated."""
        out = {}
        for attr in ("gender", "nationality"):
            s = self.counts[f"{attr}.stereotyped"]
            c = self.counts[f"{attr}.counter"]
            if s + c:
                out[attr] = s / (s + c)
        return out


def vocabulary_fingerprint() -> str:
    """Hash of every word list, template and weight: a change here must invalidate cached models."""
    parts = [FEMALE_NAMES, MALE_NAMES, FEMALE_JOBS, MALE_JOBS, NEUTRAL_JOBS, GROUP_A_NATIONALITIES,
             GROUP_B_NATIONALITIES, ACTIVITIES, GENDER_TEMPLATES, NAME_TEMPLATE, DOG_TEMPLATE, NATIONALITY_TEMPLATES,
             FILLER_TEMPLATE, sorted(KIND_WEIGHTS.items())]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]
