"""What the CLI prints: a findings summary that reads at 80 columns, a verdict that says what blocks
release and who acts, and progress that works both on a terminal and in a CI log."""
from __future__ import annotations

import textwrap
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.markup import escape

from .findings import Severity

STATUS_LABEL = {"passed": "PASSED", "needs_review": "NEEDS REVIEW", "failed": "GATE FAILED", "signed_off": "SIGNED OFF"}
ORDER = {"fail": 0, "error": 1, "warn": 2, "pass": 3}
COLOUR = {"fail": "red", "error": "magenta", "warn": "yellow", "pass": "green"}


def _number(x: float | None) -> str:
    return "" if x is None else f"{x:.3g}"


def _measures(f: Any) -> list[str]:
    """The value with its CI and threshold, then shorter forms, then nothing."""
    if f.value is None:
        return [""]
    value = _number(f.value)
    ci = f" ({_number(f.ci[0])}–{_number(f.ci[1])})" if f.ci is not None else ""
    threshold = f" vs {_number(f.threshold)}" if f.threshold is not None else ""
    return list(dict.fromkeys([value + ci + threshold, value + ci, value, ""]))


def _title(f: Any) -> str:
    return f.title + (f" [{f.group}]" if f.group and f.group not in f.title else "")


def _fit(text: str, room: int) -> str:
    """Cut at a word boundary with an ellipsis, never mid-word unless one word is wider than the room."""
    if len(text) <= room:
        return text
    cut = text[:room - 1].rsplit(" ", 1)[0] if " " in text[:room - 1] else text[:room - 1]
    return cut.rstrip(" ,;:·-") + "…"


SEVERITY_SHORT = {"critical": "crit", "medium": "med"}


def finding_line(f: Any, width: int, full: bool = False) -> list[str]:
    """One line per finding: status, severity, check, title [group] and as much of value (CI) vs threshold
    as leaves the title readable; `full` wraps the whole title and measure instead."""
    head = f"{f.status.value.upper():<5} {SEVERITY_SHORT.get(f.severity.value, f.severity.value):<4} {f.check[:15]:<15} "
    title, room = _title(f), max(width - len(head), 24)
    if full:
        measure = _measures(f)[0]
        lines = textwrap.wrap(title + (f": {measure}" if measure else ""), room) or [""]
        return [head + lines[0]] + [" " * len(head) + rest for rest in lines[1:]]
    for measure in _measures(f):
        title_room = room - len(measure) - 2 if measure else room
        if title_room >= min(len(title), 36) or not measure:
            break
    if not measure:
        return [head + _fit(title, room)]
    return [head + _fit(title, title_room).ljust(title_room) + "  " + measure]


def verdict(result: Any) -> str:
    """One paragraph: is release blocked, by what, and who must act next."""
    from .review import needs_disposition
    counts = Counter(f.status.value for f in result.findings)
    fail_on = Severity(result.policy.fail_on)
    gating = [f for f in result.findings if f.gates(fail_on)]
    review = [f for f in result.findings if needs_disposition(f) and not f.gates(fail_on)]
    advisory = [f for f in result.findings if f.status.value in ("warn", "fail") and not needs_disposition(f)
                and not f.gates(fail_on)]
    names = lambda fs: "; ".join(_title(f) for f in fs[:3]) + (  # noqa: E731
        f"; and {len(fs) - 3} more" if len(fs) > 3 else "")
    parts = []
    if gating and getattr(result, "kind", "audit") == "monitor":
        parts.append(f"Monitoring breach (exit {result.exit_code}): {len(gating)} finding(s) failed a gate at "
                     f"severity {result.policy.fail_on} or above: {names(gating)}. The provider investigates the "
                     "cause (Art. 72) and re-audits the model on current data, or a reviewer records a justified "
                     "disposition for each; if the system caused harm, record a serious incident (aiaudit incident).")
    elif gating:
        parts.append(f"Release is blocked (exit {result.exit_code}): {len(gating)} finding(s) failed a gate at "
                     f"severity {result.policy.fail_on} or above: {names(gating)}. The provider's engineers fix the "
                     "cause and re-audit; otherwise a reviewer records a justified disposition for each before a "
                     "compliance officer can sign off.")
    elif review:
        parts.append(f"No gate failed (exit {result.exit_code}), but release waits for review: {len(review)} high or "
                     f"critical finding(s) need a recorded decision before sign-off: {names(review)}. A reviewer "
                     "records a disposition for each in the review app (aiaudit app); then a compliance officer "
                     "signs off.")
    else:
        parts.append(f"All gates passed (exit {result.exit_code}) and no high or critical finding is open; a "
                     "compliance officer can sign off in the review app (aiaudit app).")
    if gating and review:
        parts.append(f"{len(review)} further high or critical finding(s) also need a decision.")
    if counts.get("error"):
        parts.append(f"{counts['error']} check(s) could not run (status error): their evidence is missing until "
                     "the cause is fixed and the audit is re-run.")
    if advisory:
        fails = sum(f.status.value == "fail" for f in advisory)
        parts.append(f"{len(advisory)} lower-severity finding(s) ({fails} failed, {len(advisory) - fails} warnings) "
                     "are advisory: they do not block sign-off.")
    return " ".join(parts)


def print_summary(console: Console, result: Any, full: bool = False) -> None:
    """`full=False` (after a run): non-passing findings, one line each, and passes counted per check;
    `full=True` (`aiaudit show`): every finding with its whole title."""
    width = console.width
    label = STATUS_LABEL.get(result.status, result.status.upper())
    console.print(escape(f"{getattr(result, 'kind', 'audit')} {result.audit_id} · {result.model.name}/{result.model.version} · {label}"),
                  style="bold", highlight=False)
    findings = sorted(result.findings, key=lambda f: (ORDER[f.status.value], -f.severity.rank, f.check))
    shown = findings if full else [f for f in findings if f.status.value != "pass"]
    for f in shown:
        for line in finding_line(f, width, full):
            console.print(escape(line), style=COLOUR[f.status.value] if line.startswith(f.status.value.upper()) else None,
                          highlight=False, soft_wrap=True)
    passes = Counter(f.check for f in findings if f.status.value == "pass")
    if passes and not full:
        console.print(escape(_fit(f"PASS  {sum(passes.values())} findings: "
                                  + ", ".join(f"{c} {n}" for c, n in passes.items()), width)), style="green",
                      highlight=False)
    if result.risk:
        console.print(escape(f"risk tier: {result.risk.get('tier')}"), highlight=False)
    console.print(escape(f"dataset {result.dataset.path.rsplit('/', 1)[-1]} ({result.dataset.rows} rows) · policy "
                         f"{result.policy.name} {result.policy.version}"), highlight=False, soft_wrap=True)
    if extra := result.dataset.extra_columns:
        console.print(escape(_fit(f"not read by the model: {len(extra)} column(s): {', '.join(extra)}", width)),
                      highlight=False)
    for line in textwrap.wrap("Verdict: " + verdict(result), width):
        console.print(escape(line), highlight=False)
    if not full:
        console.print(escape(f"full titles and every finding: aiaudit show {result.audit_id}"), style="dim",
                      highlight=False)


class Progress:
    """A spinner on a terminal; plain time-stamped lines when stderr is a pipe (CI logs)."""

    def __init__(self, console: Console, steps: int | None = None):
        self.console, self.steps, self.done = console, steps, 0
        self.start = time.monotonic()
        self._status = None

    def _prefix(self) -> str:
        elapsed = time.monotonic() - self.start
        text = f"{_clock(elapsed)}"
        if self.steps:
            text += f" · step {min(self.done + 1, self.steps)}/{self.steps}"
            if self.done:
                text += f" · about {_clock(elapsed / self.done * (self.steps - self.done))} left"
        return text

    def __call__(self, message: str) -> None:
        line = f"[{self._prefix()}] {message}"
        if self._status is not None:
            self._status.update(escape(line))
        else:
            self.console.print(escape(line), highlight=False, soft_wrap=True)

    def finish_step(self) -> None:
        """One of `steps` is done; the time left is the mean step time so far times the steps left."""
        self.done += 1

    @contextmanager
    def live(self, message: str) -> Iterator["Progress"]:
        if self.console.is_terminal:
            with self.console.status(escape(message)) as status:
                self._status = status
                try:
                    yield self
                finally:
                    self._status = None
        else:  # in a log, the first line is the first step's (an input error stays a one-line message)
            yield self


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"
