"""The two-step E5-mistral pipeline: brainstorm tasks, then generate one example per work unit.

Output folder (all append-only JSONL, so a killed run loses at most the line being written, which
the next run trims):

* ``train.jsonl``: training rows in FlagEmbedding's schema ``{"query", "pos": [..], "neg": [..],
  "prompt": task, "type": family, "id": unit}``; ``data.train_files=[.../train.jsonl]`` trains on it.
* ``tasks.jsonl``: the brainstormed (and fixed symmetric) tasks.
* ``progress.jsonl``: one line per finished unit (``ok``, or ``failed`` with its last reason); a rerun
  skips ``ok`` units (and ``failed`` ones unless ``retry_failed``).
* ``rejects.jsonl``: each unusable reply with its reason (for inspecting a model's output).
* ``summary.json`` (written by :func:`embedlight.engine.synth.run.run`): this run's counters (requests,
  retries, HTTP errors, malformed, truncated, invalid, duplicates, rows written) and the totals.

Reference: Wang et al., 2024, "Improving Text Embeddings with Large Language Models" (E5-mistral).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from embedlight.engine.synth.backends import BackendError, RateLimiter
from embedlight.engine.synth.parsing import ReplyError, normalise, parse_example, parse_tasks
from embedlight.engine.synth.prompts import (
    ASYMMETRIC,
    FAMILIES,
    brainstorm_messages,
    copies_demonstration,
    generation_messages,
    sample_controls,
    symmetric_task,
    with_demonstration,
)
from embedlight.utils.io import JsonlWriter, iter_records

log = logging.getLogger("embedlight.engine.synth")

OUTPUTS = ("train", "tasks", "progress", "rejects")  # <name>.jsonl in the output folder
FATAL_STATUS = (401, 403, 404)  # wrong key, URL or model: stop instead of failing every unit


def read_lines(path: str) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of an append-only JSONL file (none if it does not exist yet); read with the
    one reader (:func:`~embedlight.utils.io.iter_records`: errors name file, line and column)."""
    if os.path.exists(path):
        for _, obj in iter_records(path, "synth output"):
            yield obj


def trim_partial_line(path: str) -> int:
    """Cut a last line left without its newline by a killed run; returns the bytes removed."""
    if not os.path.exists(path):
        return 0
    with open(path, "rb+") as fh:
        data = fh.read()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        fh.truncate(keep)
        return len(data) - keep


@dataclass
class Task:
    """One embedding task of a family, in one language."""

    id: str
    family: str
    language: str
    task: str


class SynthPipeline:
    """Runs brainstorm + generation against a chat backend, with retries, dedup and resume.

    Args:
        backend: Object with ``chat(messages) -> Reply`` (see :mod:`embedlight.engine.synth.backends`).
        output_dir: Output folder (created; reused on resume).
        families: Task families to generate (``short-long``, ``long-short``, ``short-short``,
            ``long-long``, ``sts``, ``bitext``).
        languages: Languages of the texts (bitext pairs two of them).
        tasks_per_family: Tasks to brainstorm per asymmetric family and language.
        examples_per_task: Examples generated per task.
        lengths: ``{query: [...], document_words: [...]}`` length controls to sample from.
        max_attempts: Requests per unit before it is recorded as failed.
        backoff_s: First retry delay; doubles per attempt (a server's Retry-After wins).
        max_backoff_s: Cap on any retry delay.
        requests_per_minute: Rate limit (0 = none).
        max_chars: Longest accepted text.
        retry_failed: On resume, retry units that failed before.
        demonstration: Show the model one worked exchange before each request (format priming).
        seed: Seed of the sampled controls (a unit's controls depend only on ``(seed, unit)``).
        sleep: Sleep function (tests pass a no-op).
    """

    def __init__(
        self,
        backend: Any,
        output_dir: str,
        families: Sequence[str] = FAMILIES,
        languages: Sequence[str] = ("English",),
        tasks_per_family: int = 4,
        examples_per_task: int = 2,
        lengths: dict[str, Sequence[Any]] | None = None,
        max_attempts: int = 3,
        backoff_s: float = 2.0,
        max_backoff_s: float = 60.0,
        requests_per_minute: float = 0.0,
        max_chars: int = 4000,
        retry_failed: bool = True,
        demonstration: bool = True,
        seed: int = 42,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"synth.families: unknown {unknown}; valid: {list(FAMILIES)}")
        if not languages:
            raise ValueError("synth.languages is empty")
        if max_attempts < 1 or tasks_per_family < 1 or examples_per_task < 0:
            raise ValueError("max_attempts and tasks_per_family must be >= 1, examples_per_task >= 0")
        self.backend = backend
        self.output_dir = output_dir
        self.families = list(families)
        self.languages = list(languages)
        self.tasks_per_family = tasks_per_family
        self.examples_per_task = examples_per_task
        self.lengths = dict(
            lengths or {"query": ["less than 5 words", "5 to 15 words"], "document_words": [50, 100]}
        )
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.limiter = RateLimiter(requests_per_minute)
        self.max_chars = max_chars
        self.retry_failed = retry_failed
        self.demonstration = demonstration
        self.seed = seed
        self.sleep = sleep
        core = ("requests", "retries", "units_ok", "units_failed", "rows_written", "skipped_finished")
        self.stats: Counter[str] = Counter(dict.fromkeys(core, 0))  # failure kinds appear when they occur
        self.paths = {name: os.path.join(output_dir, f"{name}.jsonl") for name in OUTPUTS}

    # -- one request with retries -------------------------------------------------------------
    def _attempts(
        self, unit: str, messages: list[dict[str, str]], parse: Callable[[str], Any]
    ) -> tuple[Any, str]:
        """Ask until ``parse`` accepts a reply; returns ``(value, "")`` or ``(None, last_reason)``."""
        reason = ""
        for attempt in range(self.max_attempts):
            if attempt:
                self.stats["retries"] += 1
            self.limiter.wait()
            self.stats["requests"] += 1
            try:
                reply = self.backend.chat(messages)
            except BackendError as err:
                reason = f"http_{err.status}" if err.status else "transport_error"
                self.stats[reason] += 1
                if err.status in FATAL_STATUS:
                    raise RuntimeError(
                        f"synth: HTTP {err.status}: {err} (check backend.base_url, backend.model and the key)"
                    ) from None
                if not err.retryable:
                    break
                delay = err.retry_after if err.retry_after is not None else self.backoff_s * 2**attempt
                self.sleep(min(self.max_backoff_s, delay))
                continue
            if reply.finish_reason == "length":
                reason = "truncated"
            else:
                try:
                    return parse(reply.text), ""
                except ReplyError as err:
                    reason = err.reason
            self.stats[reason] += 1
            self._rejects.write(
                {"unit": unit, "attempt": attempt, "reason": reason, "text": reply.text[:4000]}
            )
        return None, reason

    # -- step 1: tasks ------------------------------------------------------------------------
    def _tasks(self, done: dict[str, dict[str, Any]]) -> list[Task]:
        tasks = [Task(**row) for row in read_lines(self.paths["tasks"])]
        have = {t.id for t in tasks}
        for family in self.families:
            for language in self.languages:
                if family not in ASYMMETRIC:
                    tid = f"{family}/{language}/0"
                    if tid not in have:
                        tasks.append(Task(tid, family, language, symmetric_task(family)))
                        self._tasks_out.write(vars(tasks[-1]))
                    continue
                unit = f"brainstorm/{family}/{language}"
                if self._skip(done.get(unit)):
                    continue
                messages = self._prime(brainstorm_messages(family, language, self.tasks_per_family), "tasks")
                found, reason = self._attempts(
                    unit, messages, lambda t: parse_tasks(t, self.tasks_per_family)
                )
                for i, text in enumerate(found or []):
                    if f"{family}/{language}/{i}" in have:  # written before a crash, unit not yet marked
                        continue
                    tasks.append(Task(f"{family}/{language}/{i}", family, language, text))
                    self._tasks_out.write(vars(tasks[-1]))
                self._finish(unit, found is not None, reason, done)
        wanted = set(self.families) & {t.family for t in tasks}
        return [t for t in tasks if t.family in wanted and t.language in self.languages]

    # -- step 2: examples ---------------------------------------------------------------------
    def _example(self, task: Task, index: int, seen: set[str], done: dict[str, dict[str, Any]]) -> None:
        unit = f"{task.id}#{index}"
        if self._skip(done.get(unit)):
            return
        rng = random.Random(f"{self.seed}/{unit}")
        controls = sample_controls(rng, task.family, task.language, self.languages, self.lengths)
        messages = self._prime(generation_messages(task.family, task.task, controls), "example")

        def parse(text: str) -> dict[str, str]:
            example = parse_example(text, self.max_chars)
            if self.demonstration and copies_demonstration(example):
                raise ReplyError("copied_demonstration", "the reply repeats the format demonstration")
            if normalise(example["query"]) in seen:
                raise ReplyError("duplicate", "query already generated")
            return example

        example, reason = self._attempts(unit, messages, parse)
        if example is not None:
            seen.add(normalise(example["query"]))
            row = {
                "query": example["query"],
                "pos": [example["positive"]],
                "neg": [example["hard_negative"]],
                "prompt": task.task,
                "type": task.family,
                "id": unit,
            }
            self._train.write(row)
            self.stats["rows_written"] += 1
        self._finish(unit, example is not None, reason, done)

    def _prime(self, messages: list[dict[str, str]], kind: str) -> list[dict[str, str]]:
        return with_demonstration(messages, kind) if self.demonstration else messages

    def _skip(self, record: dict[str, Any] | None) -> bool:
        if record is None:
            return False
        if record["status"] == "ok" or not self.retry_failed:
            self.stats["skipped_finished"] += 1
            return True
        return False

    def _finish(self, unit: str, ok: bool, reason: str, done: dict[str, dict[str, Any]]) -> None:
        record = {"unit": unit, "status": "ok" if ok else "failed", **({} if ok else {"reason": reason})}
        self._progress.write(record)
        done[unit] = record
        self.stats["units_ok" if ok else "units_failed"] += 1

    def run(self) -> dict[str, Any]:
        """Generate everything not yet done; returns the summary (``embedlight-synth`` writes it to
        ``summary.json``: :func:`embedlight.engine.synth.run.run`)."""
        os.makedirs(self.output_dir, exist_ok=True)
        for path in self.paths.values():
            if trim_partial_line(path):
                log.warning("synth: trimmed a partial last line of %s (an interrupted run)", path)
        done = {r["unit"]: r for r in read_lines(self.paths["progress"])}
        seen = {normalise(r["query"]) for r in read_lines(self.paths["train"])}
        self._train, self._tasks_out, self._progress, self._rejects = (
            JsonlWriter(self.paths[n], append=True) for n in ("train", "tasks", "progress", "rejects")
        )
        try:
            tasks = self._tasks(done)
            for task in tasks:
                for index in range(self.examples_per_task):
                    self._example(task, index, seen, done)
        finally:
            for f in (self._train, self._tasks_out, self._progress, self._rejects):
                f.close()
        totals = Counter(r["status"] for r in done.values())
        summary = {
            "backend": repr(self.backend),
            "this_run": dict(sorted(self.stats.items())),
            "totals": {
                "rows": sum(1 for _ in read_lines(self.paths["train"])),
                "tasks": len(tasks),
                "units_ok": totals["ok"],
                "units_failed": totals["failed"],
            },
        }
        return summary
