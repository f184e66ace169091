"""A multi-turn conversation with one model, for the terminal chat: history through the chat template, sampling
settings, streaming replies that can be interrupted, oldest turns dropped when the context would overflow, and
the conversation saved as an SFT `messages` record."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch

from jpmoe.decoder import Decoder, Row
from jpmoe.sampling import SamplingParams
from jpmoe.serve.host import ChatModel
from jpmoe.serve.textstream import TextStream


@dataclass(frozen=True)
class Sampling:
    """What /set changes; checked through SamplingParams."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 0
    repetition_penalty: float = 1.1
    max_tokens: int = 256

    def params(self, stop_ids: tuple[int, ...]) -> SamplingParams:
        return SamplingParams(max_new_tokens=self.max_tokens, temperature=self.temperature, top_k=self.top_k,
                              top_p=self.top_p, repetition_penalty=self.repetition_penalty,
                              stop_token_ids=stop_ids)

    def set(self, key: str, value: str) -> Sampling:
        kinds = {f.name: f.type for f in fields(self)}
        if key not in kinds:
            raise ValueError(f"unknown setting {key!r}; one of {', '.join(kinds)}")
        try:
            new = replace(self, **{key: (int if kinds[key] == "int" else float)(value)})
        except ValueError:
            raise ValueError(f"{key} needs a number, got {value!r}") from None
        new.params(())  # raises for out-of-range values
        return new


class ChatSession:
    def __init__(self, host: ChatModel, *, system: str = "", sampling: Sampling = Sampling(), seed: int = 0):
        self.host, self.system, self.sampling = host, system, sampling
        self.messages: list[dict] = []
        self.decoder = Decoder(host.model, max_batch=1)
        self.generator = torch.Generator(device=self.decoder.device).manual_seed(seed)

    def conversation(self) -> list[dict]:
        return ([{"role": "system", "content": self.system}] if self.system else []) + self.messages

    def reset(self) -> None:
        self.messages = []

    def fit(self, max_tokens: int) -> tuple[list[int], int]:
        """Prompt ids for the conversation, dropping the oldest (user, assistant) turns until prompt + max_tokens
        fits the context; -> (ids, number of messages dropped). Raises ValueError when the newest message alone
        is too long."""
        dropped = 0
        while True:
            ids = self.host.encode_chat(self.conversation())
            if len(ids) + max_tokens <= self.host.max_len:
                return ids, dropped
            if len(self.messages) <= 1:
                raise ValueError(f"the message is {len(ids)} tokens; with max_tokens {max_tokens} it does not fit "
                                 f"the context of {self.host.max_len} tokens")
            cut = 2 if len(self.messages) > 2 and self.messages[1]["role"] == "assistant" else 1
            self.messages = self.messages[cut:]
            dropped += cut

    def reply(self, user: str, on_text: Callable[[str], None], on_trim: Callable[[int], None] = lambda n: None,
              interrupted: Callable[[], bool] = lambda: False) -> tuple[str, str]:
        """Add the user's message, stream the answer through `on_text`, add it to the history; -> (answer, finish
        reason). `interrupted()` true between two steps, or a KeyboardInterrupt, stops the answer: what was
        generated so far is kept, finish "interrupted"."""
        self.messages.append({"role": "user", "content": user})
        try:
            ids, dropped = self.fit(self.sampling.max_tokens)
        except ValueError:
            self.messages.pop()
            raise
        if dropped:
            on_trim(dropped)
        row = Row(ids, self.sampling.params(self.host.stop_ids), self.generator)
        stream, finish = TextStream(self.host.tokenizer), "interrupted"
        try:
            self.decoder.add([row])
            while True:
                if not (row.finish == "stop" and row.tokens[-1] in self.host.stop_ids):
                    on_text(stream.push(row.tokens[-1]))
                if row.finish is not None:
                    finish = row.finish
                    break
                if interrupted():
                    break
                self.decoder.step()
        except KeyboardInterrupt:
            pass
        for r in list(self.decoder.rows):
            self.decoder.finish(r, "interrupted")
        on_text(stream.flush())
        self.messages.append({"role": "assistant", "content": stream.text})
        return stream.text, finish

    def save(self, path: str | Path) -> Path:
        """Append the conversation as one JSON line {"messages": [...]} (the SFT format)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"messages": self.conversation()}, ensure_ascii=False) + "\n")
        return path
