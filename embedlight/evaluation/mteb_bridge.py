"""MTEB 2.x bridge: any embedlight ``TextEncoder`` as an mteb encoder, and local files as mteb tasks.

This module imports mteb; ``embedlight.evaluation`` does not import it.

* :class:`MTEBEncoder` implements mteb's encoder protocol (``mteb.models.abs_encoder.AbsEncoder``) over an
  :class:`~embedlight.models.embedder.Embedder` or an export loaded by sentence-transformers
  (:class:`embedlight.models.sentence_transformer.SentenceTransformerEncoder`). Prompts: ``prompts`` maps
  ``"<Task>-<query|document>"``, ``"<Task>"``, ``"<TaskType>-<query|document>"``, ``"<TaskType>"`` or
  ``"<query|document>"`` to an instruction (mteb's priority order); with no match the encoder's own
  default for the kind applies, i.e. the same prompts as training. For ICL models (an Embedder) with
  ``icl_examples_dir``, each task gets its few-shot examples from ``<dir>/<Task>.json`` (FlagEmbedding's
  ``icl_examples/MTEB`` layout; bge-en-icl, Li et al., 2024) through
  :class:`~embedlight.evaluation.icl.ICLEncoder`.
* :func:`local_sts_task` / :func:`local_retrieval_task` build mteb task objects (subclasses of
  ``AbsTaskSTS`` / ``AbsTaskRetrieval`` with their own ``TaskMetadata``) from the same files and readers as
  :class:`~embedlight.evaluation.STSEvaluator` / :class:`~embedlight.evaluation.RetrievalEvaluator`, for
  offline checks; they go through the same ``mteb.evaluate`` call as hub tasks from ``mteb.get_tasks``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from mteb.models.abs_encoder import AbsEncoder

from embedlight.evaluation.base import TextEncoder
from embedlight.prompts.examples import find_examples, load_examples
from embedlight.prompts.icl import DEFAULT_ICL_TEMPLATE, DEFAULT_SEPARATOR

log = logging.getLogger(__name__)

__all__ = ["MTEBEncoder", "local_retrieval_task", "local_sts_task", "run_mteb", "scores_of"]

_LOCAL_ARGS = dict(
    reference=None,
    category="t2t",
    eval_splits=["test"],
    date=None,
    dialect=None,
    domains=None,
    task_subtypes=None,
    license=None,
    annotations_creators=None,
    modalities=["text"],
    sample_creation=None,
    bibtex_citation=None,
)


def _lang(language: str) -> list[str]:
    return {"en": ["eng-Latn"], "zh": ["cmn-Hans"]}.get(language, [language])


class MTEBEncoder(AbsEncoder):
    """mteb encoder over an embedlight ``TextEncoder`` (see the module docstring).

    Args:
        encoder: An Embedder, a SentenceTransformerEncoder or any ``TextEncoder``.
        name: Model name recorded in mteb's results (``org/name``).
        prompts: Instruction per task / task type / kind (mteb's keys); None: the encoder's defaults.
        icl_examples_dir: Folder of ``<Task>.json`` few-shot examples (ICL Embedders only).
        icl_template: ICL template name (:data:`~embedlight.prompts.icl.ICL_TEMPLATES`) or
            ``{example, query}`` mapping: the one the model was trained with.
        icl_separator: Between examples and before the query.
        n_examples: Few-shot examples per task (None: all in the file).
        query_max_len: Token limit of ICL query prompts.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        name: str = "embedlight/model",
        prompts: Mapping[str, str] | None = None,
        icl_examples_dir: str | None = None,
        icl_template: str | Mapping[str, str] = DEFAULT_ICL_TEMPLATE,
        icl_separator: str = DEFAULT_SEPARATOR,
        n_examples: int | None = None,
        query_max_len: int = 512,
    ) -> None:
        from mteb.models.model_meta import ModelMeta, ScoringFunction

        self.model = encoder
        if "/" not in name:
            name = f"embedlight/{name}"
        self.mteb_model_meta = ModelMeta.create_empty(
            overwrites={"name": name, "revision": "local", "similarity_fn_name": ScoringFunction.COSINE}
        )
        self.prompts = dict(prompts or {})
        self.icl_examples_dir = icl_examples_dir
        if icl_examples_dir and not hasattr(encoder, "embed_texts"):
            raise ValueError(
                "icl_examples_dir needs an ICL Embedder (an embedlight Embedder), not a loaded export"
            )
        self.icl_template, self.icl_separator = icl_template, icl_separator
        self.n_examples, self.query_max_len = n_examples, query_max_len
        self.calls: list[tuple[str, str, str | None, int]] = []  # (task, kind, instruction, n) for inspection

    def instruction_for(self, task_name: str, task_type: str, kind: str) -> str | None:
        """The configured instruction for this task and kind, in mteb's priority order (None: default)."""
        for key in (f"{task_name}-{kind}", task_name, f"{task_type}-{kind}", task_type, kind):
            if key in self.prompts:
                return self.prompts[key]
        return None

    def _icl_encoder(self, task_name: str, instruction: str | None) -> TextEncoder:
        from embedlight.evaluation.icl import ICLEncoder

        path = find_examples(self.icl_examples_dir, task_name)
        examples = load_examples(path)[: self.n_examples] if path else []
        if not path:
            log.warning("no ICL examples for %s in %s: zero-shot", task_name, self.icl_examples_dir)
        mode = "few_shot" if examples else "zero_shot"
        return ICLEncoder(
            self.model,
            mode,
            instruction or "",
            examples,
            self.icl_template,
            self.icl_separator,
            query_max_len=self.query_max_len,
        )

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Embed the texts of mteb's dataloader -> ``(N, D)`` float32."""
        texts = [t for batch in inputs for t in batch["text"]]
        kind = (
            "document"
            if prompt_type is not None and str(getattr(prompt_type, "value", prompt_type)) == "document"
            else "query"
        )
        instruction = self.instruction_for(task_metadata.name, task_metadata.type, kind)
        encoder = self.model
        if self.icl_examples_dir:
            encoder = self._icl_encoder(task_metadata.name, instruction)
        self.calls.append((task_metadata.name, kind, instruction, len(texts)))
        emb = encoder.encode(
            texts, kind=kind, instruction=instruction, batch_size=int(kwargs.get("batch_size", 32))
        )
        return torch.as_tensor(emb).detach().float().cpu().numpy()


def _metadata(name: str, type_: str, main_score: str, description: str, language: str) -> Any:
    from mteb.abstasks.task_metadata import TaskMetadata

    return TaskMetadata(
        name=name,
        type=type_,
        main_score=main_score,
        description=description,
        dataset={"path": f"local/{name}", "revision": "local"},
        eval_langs=_lang(language),
        **_LOCAL_ARGS,
    )


def local_sts_task(
    name: str,
    path: str,
    split: str | None = None,
    format: str = "auto",
    max_pairs: int | None = None,
    seed: int | None = None,
    language: str = "en",
) -> Any:
    """An mteb STS task (main score ``cosine_spearman``) over the pairs :class:`STSEvaluator` reads."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.sts import AbsTaskSTS

    from embedlight.evaluation.sts import STSEvaluator

    reader = STSEvaluator(path, split, name=name, format=format, max_pairs=max_pairs, seed=seed)

    def load_data(self, **kwargs: Any) -> None:
        data = reader.data
        self.min_score, self.max_score = min(data.scores), max(data.scores)
        self.dataset = DatasetDict(
            {
                "test": Dataset.from_dict(
                    {"sentence1": data.text1, "sentence2": data.text2, "score": data.scores}
                )
            }
        )
        self.data_loaded = True

    meta = _metadata(name, "STS", "cosine_spearman", f"local STS: {path} ({split})", language)
    return type(name, (AbsTaskSTS,), {"metadata": meta, "load_data": load_data})()


def local_retrieval_task(
    name: str,
    path: str,
    split: str = "test",
    max_queries: int | None = None,
    max_corpus: int | None = None,
    language: str = "en",
) -> Any:
    """An mteb retrieval task (main score ``ndcg_at_10``) over the BEIR folder :class:`RetrievalEvaluator` reads."""
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

    from embedlight.evaluation.retrieval import load_beir

    def load_data(self, **kwargs: Any) -> None:
        data = load_beir(path, split, max_queries, max_corpus)
        split_data = RetrievalSplitData(
            queries=Dataset.from_dict({"id": data.query_ids, "text": data.query_texts}),
            corpus=Dataset.from_dict(
                {"id": data.doc_ids, "text": data.doc_texts, "title": [""] * len(data.doc_ids)}
            ),
            relevant_docs=data.qrels,
            top_ranked=None,
        )
        self.dataset = {"default": {"test": split_data}}
        self.data_loaded = True

    meta = _metadata(name, "Retrieval", "ndcg_at_10", f"local retrieval: {path} ({split})", language)
    return type(name, (AbsTaskRetrieval,), {"metadata": meta, "load_data": load_data})()


_LOCAL_BUILDERS = {"sts": local_sts_task, "retrieval": local_retrieval_task}


def build_local_tasks(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{name: {type: sts|retrieval, path: ..., ...}}`` -> ``{name: mteb task}``."""
    tasks = {}
    for name, spec in specs.items():
        spec = dict(spec)
        kind = spec.pop("type", None)
        if kind not in _LOCAL_BUILDERS:
            raise ValueError(
                f"local mteb task {name!r}: type must be one of {sorted(_LOCAL_BUILDERS)}, got {kind!r}"
            )
        tasks[name] = _LOCAL_BUILDERS[kind](name, **spec)
    return tasks


def run_mteb(
    encoder: MTEBEncoder,
    tasks: Sequence[str] = (),
    local_tasks: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 32,
    output_folder: str | None = None,
) -> dict[str, dict[str, float]]:
    """Evaluate ``encoder`` on mteb tasks by name (``mteb.get_tasks``) and on local tasks.

    Args:
        encoder: The wrapped model.
        tasks: Task names. Names of ``local_tasks`` are built locally, the rest come from ``mteb.get_tasks``
            (their data from the hub). Empty: every local task.
        local_tasks: Local task specs (see :func:`build_local_tasks`).
        batch_size: Encoding batch size.
        output_folder: Where mteb writes its per-task JSON results (None: no cache, nothing written).

    Returns:
        ``{task: {metric: value}}`` of the test split's default subset, plus ``main_score``.
    """
    import mteb

    local = build_local_tasks(local_tasks or {})
    names = list(tasks) or list(local)
    hub_names = [n for n in names if n not in local]
    objs = [local[n] for n in names if n in local]
    if hub_names:
        objs += list(mteb.get_tasks(tasks=hub_names))
    if not objs:
        raise ValueError("no mteb task selected: pass tasks=[...] or local tasks")
    cache = mteb.ResultCache(cache_path=output_folder) if output_folder else None
    result = mteb.evaluate(
        encoder,
        objs,
        cache=cache,
        encode_kwargs={"batch_size": batch_size},
        show_progress_bar=False,
        overwrite_strategy="always",
    )
    return {tr.task_name: scores_of(tr) for tr in result.task_results}


def scores_of(task_result: Any) -> dict[str, float]:
    """Numeric scores of a ``TaskResult``'s first evaluated split and subset."""
    split = next(iter(task_result.scores))
    entry = task_result.scores[split][0]
    return {k: float(v) for k, v in entry.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
