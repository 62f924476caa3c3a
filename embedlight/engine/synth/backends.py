"""Chat backends for ``embedlight-synth``: a local Hugging Face causal LM, or an OpenAI-compatible API.

A backend is an object with ``chat(messages) -> Reply``. Transport failures raise
:class:`BackendError` (``retryable`` for HTTP 429/5xx, timeouts and refused connections).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Reply:
    """A model reply: its text and why generation stopped (``stop`` or ``length`` = truncated)."""

    text: str
    finish_reason: str = "stop"


class BackendError(RuntimeError):
    """A failed request.

    Attributes:
        status: HTTP status (0 for transport errors).
        retryable: Worth retrying (429, 5xx, timeouts, connection errors).
        retry_after: Seconds the server asked to wait, if it said.
    """

    def __init__(
        self, message: str, status: int = 0, retryable: bool = True, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status, self.retryable, self.retry_after = status, retryable, retry_after


class RateLimiter:
    """At most ``requests_per_minute`` calls to :meth:`wait` per minute, evenly spaced (0 = no limit)."""

    def __init__(self, requests_per_minute: float = 0.0) -> None:
        self.interval = 60.0 / requests_per_minute if requests_per_minute > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may go."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            time.sleep(delay)


class OpenAIChatBackend:
    """Any OpenAI-compatible ``/v1/chat/completions`` endpoint, over the standard library's urllib.

    Args:
        base_url: Server root, e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``.
        model: Model name sent in the request.
        api_key_env: Environment variable holding the key (sent as a Bearer token, never logged).
            Unset or empty: no Authorization header (local servers).
        temperature: Sampling temperature.
        max_tokens: Reply token limit.
        timeout_s: Per-request timeout.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000/v1",
        model: str = "gpt-4o-mini",
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 1.0,
        max_tokens: int = 1024,
        timeout_s: float = 60.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChatBackend(url={self.url!r}, model={self.model!r}, key from ${self.api_key_env})"

    def chat(self, messages: list[dict[str, str]]) -> Reply:
        """Send one chat request and return the first choice."""
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as err:
            retry_after = _retry_after(err.headers.get("Retry-After") if err.headers else None)
            retryable = err.code == 429 or err.code >= 500
            raise BackendError(f"HTTP {err.code} from {self.url}", err.code, retryable, retry_after) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
            raise BackendError(f"request to {self.url} failed: {type(err).__name__}", 0, True) from None
        try:
            choice = json.loads(payload)["choices"][0]
            return Reply(str(choice["message"]["content"] or ""), str(choice.get("finish_reason") or "stop"))
        except (ValueError, KeyError, IndexError, TypeError):
            raise BackendError(f"unexpected response body from {self.url}", 200, True) from None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class HFChatBackend:
    """A local causal LM with a chat template (default: the bundled SmolLM2-135M-Instruct).

    Args:
        model: Bundled name (``smollm2``), local folder or hub id.
        max_new_tokens: Reply token limit; a reply that hits it is reported as truncated.
        temperature: Sampling temperature (0 = greedy).
        top_p: Nucleus sampling.
        seed: Torch seed, set once at load.
        device: ``cpu``, ``cuda`` or null (cuda when available).
        trust_remote_code: Run model code shipped with the checkpoint (off by default).
    """

    def __init__(
        self,
        model: str = "smollm2",
        max_new_tokens: int = 384,
        temperature: float = 0.7,
        top_p: float = 0.95,
        seed: int = 0,
        device: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from embedlight.backbones.resolve import resolve_pretrained

        path = resolve_pretrained(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(seed)
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.model.to(self.device).eval()
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.name = model

    def __repr__(self) -> str:
        return f"HFChatBackend(model={self.name!r}, max_new_tokens={self.max_new_tokens}, temperature={self.temperature})"

    def chat(self, messages: list[dict[str, str]]) -> Reply:
        """Generate one reply with the model's chat template."""
        import torch

        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        sample = self.temperature > 0
        kwargs = {"do_sample": sample, "temperature": self.temperature, "top_p": self.top_p} if sample else {}
        with torch.no_grad():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                **kwargs,
            )
        new = out[0, inputs["input_ids"].shape[1] :]  # (T,)
        ended = new.numel() < self.max_new_tokens or int(new[-1]) == self.tokenizer.eos_token_id
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Reply(text, "stop" if ended else "length")
