"""embedlight-synth end to end against a scripted OpenAI-compatible server on 127.0.0.1.

The server answers a bounded number of requests and stops by itself. Its script injects HTTP 429 and
500, malformed JSON, a truncated answer, a duplicate and an invalid example; the run must retry or
count each, write valid training JSONL, and resume without redoing finished work.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from hydra import compose, initialize_config_module

from embedlight.data import ContrastiveDataModule
from embedlight.engine.synth.backends import BackendError, OpenAIChatBackend
from embedlight.engine.synth.parsing import ReplyError, parse_example, parse_json, parse_tasks
from embedlight.engine.synth.pipeline import SynthPipeline
from embedlight.engine.synth.run import run as synthesize

SECRET = "sk-test-0123456789-secret"


class ScriptedServer:
    """``/v1/chat/completions`` on 127.0.0.1; ``faults[n]`` overrides the answer to request ``n`` (1-based)."""

    def __init__(self, faults: dict[int, str] | None = None, max_requests: int = 40, tag: str = "") -> None:
        self.faults = dict(faults or {})
        self.tag = tag
        self.requests: list[dict] = []
        self.auth: list[str | None] = []
        self.last_query = "none"
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(body)
                owner.auth.append(self.headers.get("Authorization"))
                status, payload, headers = owner.answer(len(owner.requests), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 0.2
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        deadline = time.monotonic() + 60

        def serve():  # bounded: stops after max_requests or 60 s
            while len(self.requests) < max_requests and time.monotonic() < deadline and not self.stop:
                self.server.handle_request()
            self.server.server_close()

        self.stop = False
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop = True
        self.thread.join(timeout=5)

    @staticmethod
    def reply(text: str, finish: str = "stop") -> dict:
        return {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": finish}]}

    def answer(self, n: int, body: dict) -> tuple[int, dict, dict]:
        fault = self.faults.get(n)
        if fault == "429":
            return 429, {"error": "rate limited"}, {"Retry-After": "0"}
        if fault == "500":
            return 500, {"error": "boom"}, {}
        if fault == "malformed":
            return 200, self.reply('{"query": "broken", "positive": "x", "hard_negative": "y"'), {}
        if fault == "truncated":
            return 200, self.reply('{"query": "cut off", "positive": "This passage stops mid', "length"), {}
        if fault == "invalid":
            return 200, self.reply('{"query": "only a query"}'), {}
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("Brainstorm"):
            tasks = '["Retrieve news articles about a company.", "Find recipes for a dish.", "retrieve NEWS articles about a company."]'
            return 200, self.reply(f"```json\n{tasks}\n```"), {}
        if fault != "duplicate":
            self.last_query = f"query number {self.tag}{n}"
        example = {
            "query": self.last_query,
            "positive": f"A passage that answers {self.last_query}.",
            "hard_negative": f"A passage that looks related to {self.last_query} but is not.",
        }
        return 200, self.reply("Here you go:\n" + json.dumps(example)), {}


# request number -> fault, traced against the unit order (brainstorm, short-long x2 tasks x3, sts x3)
FAULTS = {
    1: "429",  # brainstorm attempt 0; attempt 1 (request 2) succeeds
    3: "500",  # short-long/0#0: 500, malformed, ok (request 5)
    4: "malformed",
    6: "truncated",  # short-long/0#1: truncated, ok (7)
    8: "duplicate",  # short-long/0#2: duplicate, invalid, ok (10)
    9: "invalid",
    11: "malformed",  # short-long/1#0: three malformed replies -> the unit fails
    12: "malformed",
    13: "malformed",
}


def _cfg(url: str, out: str, extra: list[str] | None = None):
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        return compose(
            config_name="synth",
            overrides=[
                "synth_backend=openai",
                f"backend.base_url={url}",
                "backend.model=scripted",
                "backend.api_key_env=EMBEDLIGHT_TEST_SYNTH_KEY",
                "backend.timeout_s=10",
                f"output_dir={out}",
                "families=[short-long,sts]",
                "tasks_per_family=2",
                "examples_per_task=3",
                "backoff_s=0",
                "max_backoff_s=0.01",
                *(extra or []),
            ],
        )


def _rows(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def test_synth_end_to_end_with_faults_and_resume(tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv("EMBEDLIGHT_TEST_SYNTH_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "synth"
    server = ScriptedServer(FAULTS)
    try:
        summary = synthesize(_cfg(server.url, str(out)))
    finally:
        server.close()
    assert len(server.requests) == 18
    assert set(server.auth) == {f"Bearer {SECRET}"}
    run = summary["this_run"]
    assert run["requests"] == 18 and run["retries"] == 8
    assert (run["http_429"], run["http_500"], run["truncated"], run["duplicate"], run["invalid"]) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert run["malformed_json"] == 4
    assert (run["units_ok"], run["units_failed"], run["rows_written"]) == (9, 1, 8)
    tasks = _rows(out / "tasks.jsonl")
    assert [t["task"] for t in tasks if t["family"] == "short-long"] == [
        "Retrieve news articles about a company.",
        "Find recipes for a dish.",
    ]  # fence stripped, the case-variant duplicate dropped
    rows = _rows(out / "train.jsonl")
    assert len(rows) == 8 and len({r["query"] for r in rows}) == 8
    assert {r["type"] for r in rows} == {"short-long", "sts"}
    assert all(len(r["pos"]) == 1 and len(r["neg"]) == 1 and r["prompt"] for r in rows)
    assert len(_rows(out / "rejects.jsonl")) == 7  # 4 malformed + truncated + duplicate + invalid

    # resume after a crash mid-line: the partial line is trimmed, only the failed unit is redone
    with open(out / "train.jsonl", "a") as fh:
        fh.write('{"query": "half a li')
    server = ScriptedServer(tag="b")
    try:
        second = synthesize(_cfg(server.url, str(out), ["resume=true"]))
    finally:
        server.close()
    assert len(server.requests) == 1
    assert second["this_run"]["skipped_finished"] == 9 and second["totals"]["rows"] == 9

    # more examples per task: only the new units are requested
    server = ScriptedServer(tag="c")
    try:
        third = synthesize(_cfg(server.url, str(out), ["resume=true", "examples_per_task=4"]))
    finally:
        server.close()
    assert len(server.requests) == 3 and third["totals"]["rows"] == 12

    # the output trains as it is
    dm = ContrastiveDataModule(train_files=[str(out / "train.jsonl")], batch_size=2)
    dm.setup("fit")
    assert len(dm.sources[0]) == 12

    # the key is never written or logged
    written = "".join(p.read_text() for p in out.iterdir())
    assert SECRET not in written and SECRET not in caplog.text and SECRET not in capsys.readouterr().out


def test_fatal_status_stops_the_run_and_bad_requests_fail_the_unit(tmp_path):
    class Fixed:
        def __init__(self, status):
            self.status = status

        def chat(self, messages):
            raise BackendError("nope", self.status, retryable=False)

    with pytest.raises(RuntimeError, match="401"):
        SynthPipeline(Fixed(401), str(tmp_path / "a"), families=["sts"], sleep=lambda s: None).run()
    summary = SynthPipeline(Fixed(400), str(tmp_path / "b"), families=["sts"], sleep=lambda s: None).run()
    assert summary["this_run"]["http_400"] == 2 and summary["this_run"]["units_failed"] == 2


def test_unreachable_server_is_retried_then_counted(tmp_path):
    backend = OpenAIChatBackend(base_url="http://127.0.0.1:9/v1", timeout_s=2)  # discard port: refused
    summary = SynthPipeline(
        backend, str(tmp_path), families=["sts"], examples_per_task=1, max_attempts=2, sleep=lambda s: None
    ).run()
    assert summary["this_run"]["transport_error"] == 2 and summary["totals"]["rows"] == 0


def test_parsing_is_strict():
    assert parse_json('```json\n{"a": 1}\n```', "{") == {"a": 1}
    assert parse_json('Sure! {"a": [1, 2]} Hope it helps.', "{") == {"a": [1, 2]}
    for bad in ("{'a': 1}", '{"a": 1,}', "no json here", '{"a": 1} {"b": 2}'):
        with pytest.raises(ReplyError) as err:
            parse_json(bad, "{")
        assert err.value.reason == "malformed_json"
    ok = '{"query": "q", "positive": "p", "hard_negative": "n"}'
    assert parse_example(ok, 100) == {"query": "q", "positive": "p", "hard_negative": "n"}
    for bad in (
        '{"query": "q", "positive": "p"}',
        '{"query": "q", "positive": "Q", "hard_negative": "n"}',
        '{"query": "q", "positive": 3, "hard_negative": "n"}',
        '["q", "p", "n"]',
    ):
        with pytest.raises(ReplyError) as err:
            parse_example(bad, 100)
        assert err.value.reason in ("invalid", "malformed_json")
    with pytest.raises(ReplyError, match="max_chars"):
        parse_example('{"query": "q", "positive": "a long positive", "hard_negative": "n"}', 5)
    assert parse_tasks('["A", "a", 3, "B", "C"]', limit=2) == ["A", "B"]


def test_a_copy_of_the_demonstration_is_rejected(tmp_path):
    from embedlight.engine.synth.backends import Reply

    class Copier:
        def __init__(self):
            self.calls = 0

        def chat(self, messages):
            assert messages[1]["role"] == "assistant"  # the demonstration precedes the request
            self.calls += 1
            query = "How long to boil an EGG?" if self.calls == 1 else "a new query"
            return Reply(json.dumps({"query": query, "positive": "p text", "hard_negative": "n text"}))

    summary = SynthPipeline(Copier(), str(tmp_path), families=["sts"], examples_per_task=1).run()
    assert summary["this_run"]["copied_demonstration"] == 1 and summary["totals"]["rows"] == 1
    assert _rows(tmp_path / "train.jsonl")[0]["query"] == "a new query"


def test_rate_limiter_spaces_requests():
    from embedlight.engine.synth.backends import RateLimiter

    limiter = RateLimiter(requests_per_minute=600)  # one request per 0.1 s
    start = time.monotonic()
    for _ in range(4):
        limiter.wait()
    assert time.monotonic() - start >= 0.3 - 1e-3  # the first goes at once, then 3 gaps
    unlimited = RateLimiter(0)
    start = time.monotonic()
    for _ in range(100):
        unlimited.wait()
    assert time.monotonic() - start < 0.1
