"""The ICL prompt builder (zero-shot / fixed / dynamic examples, the example token budget, the one default
template) and the ICL collator and datamodule (which passes every other argument to its parent)."""

from __future__ import annotations

import ast
import inspect
import json
import logging
import os

import pytest
from transformers import AutoTokenizer

import embedlight
from embedlight.data.datamodule import ContrastiveDataModule
from embedlight.data.icl import ICLCollator, ICLDataModule
from embedlight.data.mixture import Source
from embedlight.prompts.examples import Example
from embedlight.prompts.icl import (
    DEFAULT_ICL_TEMPLATE,
    ICL_TEMPLATES,
    ICLPromptBuilder,
    icl_prompt,
    icl_suffix,
)

TASK = "find similar text"
EXAMPLES = [Example("the cat", "a cat"), Example("the dog", "a dog"), Example("red fish", "blue fish")]


@pytest.fixture(scope="module")
def tok(tiny_llama):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.pad_token = tokenizer.unk_token
    tokenizer.padding_side = "left"
    return tokenizer


def rows(n: int = 6, prompt: str | None = TASK) -> list[dict]:
    words = ["cat", "dog", "bird", "fish", "bank", "film", "game", "team"]
    return [
        {"query": f"the {words[i]}", "pos": [f"a {words[i]}"], "neg": [f"big {words[i]}"], "prompt": prompt}
        for i in range(n)
    ]


def batch_rows(data: list[dict], source: int = 0) -> list[dict]:
    return [
        {"source": source, "query": r["query"], "docs": [r["pos"][0], *r["neg"]], "prompt": r["prompt"]}
        for r in data
    ]


def test_zero_shot_prompt_is_instruction_query_response():
    p = ICLPromptBuilder().build(TASK, "the cat")
    assert p.prefix == f"<instruct>{TASK}\n<query>"
    assert p.text == "the cat\n<response>"
    assert p.full == f"<instruct>{TASK}\n<query>the cat\n<response>"


def test_examples_come_before_the_instruction_in_order():
    p = ICLPromptBuilder().build(TASK, "big bird", EXAMPLES[:2])
    expected = (
        f"<instruct>{TASK}\n<query>the cat\n<response>a cat\n\n"
        f"<instruct>{TASK}\n<query>the dog\n<response>a dog\n\n"
        f"<instruct>{TASK}\n<query>big bird\n<response>"
    )
    assert p.full == expected
    assert p.examples == EXAMPLES[:2] and p.dropped == 0


def test_e5_mistral_template_has_no_suffix():
    p = ICLPromptBuilder(template="e5_mistral").build("t", "q")
    assert p.full == "Instruct: t\nQuery: q"
    assert icl_suffix("e5_mistral") == "" and icl_suffix() == "\n<response>"


def test_icl_prompt_helper_for_sentence_transformers():
    prefix = icl_prompt(TASK, [{"query": "the cat", "response": "a cat"}])
    assert prefix == f"<instruct>{TASK}\n<query>the cat\n<response>a cat\n\n<instruct>{TASK}\n<query>"


def test_budget_drops_examples_one_at_a_time_last_first(tok):
    full = ICLPromptBuilder(tok).build(TASK, "big bird", EXAMPLES)
    n_full = len(tok(full.full)["input_ids"]) + 1
    per_example = len(
        tok(ICLPromptBuilder(tok).render_example(TASK, EXAMPLES[0]), add_special_tokens=False)["input_ids"]
    )
    builder = ICLPromptBuilder(tok, max_length=n_full - 1, min_truncated_tokens=10_000)
    p = builder.build(TASK, "big bird", EXAMPLES)
    assert p.examples == EXAMPLES[:2] and p.dropped == 1
    assert len(tok(p.full)["input_ids"]) + 1 <= n_full - 1
    builder = ICLPromptBuilder(tok, max_length=n_full - per_example - 1, min_truncated_tokens=10_000)
    p = builder.build(TASK, "big bird", EXAMPLES)
    assert p.examples == EXAMPLES[:1] and p.dropped == 2
    assert builder.stats.all_dropped == 0


def test_budget_never_drops_all_examples_silently(tok, caplog):
    builder = ICLPromptBuilder(tok, max_length=12, min_truncated_tokens=10_000)
    with caplog.at_level(logging.WARNING, logger="embedlight.prompts.icl"):
        p = builder.build(TASK, "big bird", EXAMPLES)
    assert p.examples == [] and p.dropped == 3
    assert builder.stats.all_dropped == 1 and builder.stats.dropped == 3 and builder.stats.requested == 3
    assert any("every example dropped" in r.message for r in caplog.records)


def test_single_example_is_truncated_when_it_alone_does_not_fit(tok):
    core = len(tok(ICLPromptBuilder().build(TASK, "big bird").full)["input_ids"]) + 1
    builder = ICLPromptBuilder(tok, max_length=core + 6, min_truncated_tokens=4)
    p = builder.build(TASK, "big bird", [Example("the cat is big and red", "a cat is big and red and blue")])
    assert p.truncated and len(p.examples) == 1 and builder.stats.truncated == 1
    assert len(tok(p.full)["input_ids"]) + 1 <= core + 6
    assert p.full.endswith("big bird\n<response>")


def test_query_max_len_512_keeps_examples(tok):
    """FlagEmbedding #1158: a ``query_max_len - 512`` budget drops every example at 512; ours does not."""
    p = ICLPromptBuilder(tok, max_length=512).build(TASK, "big bird", EXAMPLES)
    assert p.examples == EXAMPLES and p.dropped == 0


def _collator(
    tok, mode: str, example_source: str = "pool", data: list[dict] | None = None, **kw
) -> ICLCollator:
    data = data or rows()
    source = Source("s", data)
    pools = {0: {TASK: [Example(r["query"], r["pos"][0]) for r in data]}}
    return ICLCollator(
        tok,
        [source],
        ICLPromptBuilder(tok, max_length=256),
        mode,
        pools=pools,
        example_source=example_source,
        query_max_len=256,
        **kw,
    )


def _decoded(tok, batch: dict) -> list[str]:
    return [
        tok.decode(ids[mask.bool()], skip_special_tokens=True)
        for ids, mask in zip(batch.query["input_ids"], batch.query["attention_mask"])
    ]


def test_zero_shot_mode_collates_without_examples(tok):
    coll = _collator(tok, "zero_shot")
    batch = coll(batch_rows(rows(4)))
    assert batch.icl.kept == 0
    for text in _decoded(tok, batch):
        assert text.count("instruct") == 1
    assert batch.docs["input_ids"].size(0) == 8  # documents raw: 4 queries x (pos + neg)
    assert tok.decode(batch.docs["input_ids"][0], skip_special_tokens=True).strip().startswith("a")


def test_fixed_mode_uses_the_task_list(tok):
    fixed = [Example("big bank", "bank"), Example("old film", "film")]
    coll = _collator(tok, "fixed", fixed={0: fixed}, max_examples=5)
    b = batch_rows(rows(3))
    prompts = [coll.builder.build(TASK, r["query"], coll.draw(r, TASK, b)) for r in b]
    assert all(p.examples == fixed for p in prompts)
    coll = _collator(tok, "fixed", fixed={0: fixed}, max_examples=1)
    assert coll.draw(b[0], TASK, b) == fixed[:1]


def test_dynamic_pool_draws_same_task_examples_excluding_the_query(tok):
    data = rows(8)
    coll = _collator(tok, "dynamic", data=data, min_examples=0, max_examples=3)
    b = batch_rows(data)
    counts = set()
    for r in b:
        ex = coll.draw(r, TASK, b)
        counts.add(len(ex))
        assert len(ex) <= 3 and all(e.query != r["query"] for e in ex)
        assert all(Example(e.query, e.response) in coll.pools[0][TASK] for e in ex)
        assert ex == coll.draw(r, TASK, b)  # deterministic per (seed, row)
    assert len(counts) > 1  # 0..n, not a constant


def test_dynamic_batch_draws_other_rows_of_the_batch(tok):
    data = rows(4)
    coll = _collator(tok, "dynamic", "batch", data=data, min_examples=3, max_examples=3)
    b = batch_rows(data)
    for r in b:
        ex = coll.draw(r, TASK, b)
        others = {Example(o["query"], o["docs"][0]) for o in b if o is not r}
        assert len(ex) == 3 and set(ex) == others


def test_dynamic_examples_never_cross_tasks(tok):
    data = rows(4, prompt="task a") + rows(4, prompt="task b")
    coll = _collator(tok, "dynamic", "batch", data=data, min_examples=3, max_examples=3)
    b = batch_rows(data)
    for r in b:
        task = r["prompt"]
        ex = coll.draw(r, task, b)
        same = {o["query"] for o in b if o["prompt"] == task}
        assert {e.query for e in ex} <= same


def test_datamodule_fixed_mode_reads_examples_dir(tok, tmp_path):
    train = tmp_path / "s.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows(6, prompt=None)) + "\n")
    ex_dir = tmp_path / "ex"
    ex_dir.mkdir()
    (ex_dir / "s.json").write_text(json.dumps([{"query": "big bank", "response": "bank"}]))
    dm = ICLDataModule(
        tok,
        sources={"s": {"files": [str(train)], "task": TASK}},
        mode="fixed",
        examples_dir=str(ex_dir),
        batch_size=2,
        group_size=2,
        query_max_len=128,
    )
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch.icl.kept == 2
    assert all("big bank" in t and TASK in t for t in _decoded(tok, batch))


def test_datamodule_dynamic_end_to_end(tok, tmp_path):
    train = tmp_path / "s.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows(8)) + "\n")
    dm = ICLDataModule(
        tok,
        sources={"s": {"files": [str(train)]}},
        mode="dynamic",
        max_examples=2,
        batch_size=4,
        group_size=2,
        query_max_len=128,
    )
    dm.setup()
    batches = list(dm.train_dataloader())
    assert len(batches) == 2
    assert all(b.query["input_ids"][:, -1].eq(tok.eos_token_id).all() for b in batches)  # left padding


# ICLDataModule takes its own arguments and passes every other one to ContrastiveDataModule


def _parent_params() -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(ContrastiveDataModule.__init__).parameters)
    params.pop("self")
    return params


def test_every_parent_argument_reaches_the_parent(monkeypatch):
    seen: dict = {}

    def record(self, **kwargs):
        seen.clear()
        seen.update(kwargs)

    params = _parent_params()
    assert "group_by_length" in params
    monkeypatch.setattr(ContrastiveDataModule, "__init__", record)
    for name in params:
        value = {"s": {"files": ["x.jsonl"]}} if name == "sources" else object()
        ICLDataModule(**{name: value})
        assert seen[name] == value if name == "sources" else seen[name] is value, name
    ICLDataModule(sources={"s": {"files": ["x.jsonl"], "task": "t", "examples": "e.json"}})
    assert seen["sources"] == {"s": {"files": ["x.jsonl"]}}  # the ICL keys stay here


def test_defaults_are_the_parents_except_three(tok):
    own = {"query_max_len": 512, "one_source_per_batch": True, "append_eos": True}  # decoder ICL recipe
    dm = ICLDataModule(tok, sources={"s": {"files": ["x.jsonl"]}})
    for name, param in _parent_params().items():
        if name in ("tokenizer", "train_files", "sources"):
            continue
        want = own.get(name, param.default)
        if name in dm.defaults:  # the instruction defaults of every source
            assert dm.defaults[name] == (dict(want or {}) if name == "instruction_fields" else want), name
        else:
            assert getattr(dm, name) == want, name


def test_group_by_length_and_instruction_fields_work_for_icl(tok, tmp_path):
    train = tmp_path / "s.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows(8, prompt=None)) + "\n")
    dm = ICLDataModule(
        tok,
        sources={"s": {"files": [str(train)]}},
        mode="zero_shot",
        batch_size=4,
        group_size=2,
        query_max_len=128,
        group_by_length=True,
        instruction_fields={"task": TASK},  # the parent's default fields: the sources' task
    )
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert dm.batch_sampler.group_by_length is True
    assert all(t.startswith(f"instruct {TASK} query") for t in _decoded(tok, batch))  # not default_task


def test_one_named_default_icl_template():
    """Every ``template=`` / ``icl_template=`` default in the package is ``DEFAULT_ICL_TEMPLATE``, and the
    name ``"bge_icl"`` is written only in ``prompts/icl.py`` (the template table and the default)."""
    package = os.path.dirname(embedlight.__file__)
    defaults, literals = [], []
    for root, _, files in os.walk(package):
        for file in files:
            if not file.endswith(".py"):
                continue
            path = os.path.join(root, file)
            rel = os.path.relpath(path, package)
            tree = ast.parse(open(path, encoding="utf-8").read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and node.value == DEFAULT_ICL_TEMPLATE:
                    literals.append(f"{rel}:{node.lineno}")
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    args = node.args.args + node.args.kwonlyargs
                    values = node.args.defaults + node.args.kw_defaults
                    for arg, value in zip(args[len(args) - len(values) :], values, strict=True):
                        if arg.arg in ("template", "icl_template") and value is not None:
                            defaults.append((f"{rel}:{node.name}", ast.unparse(value)))
    assert len(defaults) >= 8  # builder, icl_prompt, icl_suffix, data, module, 2 evaluators, MTEB
    assert {v for _, v in defaults} == {"DEFAULT_ICL_TEMPLATE"}, defaults
    where = os.path.join("prompts", "icl.py")
    assert len(literals) == 2 and all(x.startswith(where) for x in literals), literals
    assert ICLPromptBuilder().query_template == ICL_TEMPLATES[DEFAULT_ICL_TEMPLATE]["query"]
