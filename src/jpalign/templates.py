"""Chat templates rendered to segments: text pieces, BOS/EOS markers and which of them the loss supervises.

Rendering to segments (not to one string) is what makes the labels exact: the tokenizer encodes each text piece
with add_special_tokens=False and the special tokens are inserted by id, so there is never a second BOS, an EOS
hidden by padding, or a prompt/response split inside a token. Each template also carries the equivalent Jinja
`chat_template` (with {% generation %} markers) so `tokenizer.apply_chat_template` renders the same text at
evaluation time.
"""

from __future__ import annotations

from dataclasses import dataclass

INSTRUCTION_PREAMBLE = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"
)
LLAMA_JA_DEFAULT_SYSTEM = "あなたは誠実で優秀な日本人のアシスタントです。"


class DataError(ValueError):
    """A training example that cannot be encoded; `reason` is a short key counted by the dataset encoders."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class Segment:
    text: str = ""
    special: str | None = None  # "bos" or "eos": inserted by token id, never from text
    train: bool = False  # supervised by the loss (assistant content and its EOS)
    response: bool = False  # part of the last assistant turn's supervised span (truncation keeps its start)


def validate_messages(messages: object, roles: tuple[str, ...], *, allow_open: bool) -> list[dict]:
    """Check a conversation: a list of {"role", "content"} with string content, known roles, turn order.

    Order: an optional system message first, then user turns each followed (for the instruction template,
    after an optional "input") by an assistant turn. allow_open: the conversation may end before the last
    assistant turn (generation prompts). Raises DataError with reason unknown_role, non_string_content,
    empty_response, bad_turn_order or no_response.
    """
    if not isinstance(messages, list) or not messages:
        raise DataError("bad_turn_order", "messages must be a non-empty list of {'role', 'content'} dicts")
    expected = "user"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DataError("bad_turn_order", f"message {i} is not a dict with 'role' and 'content'")
        role, content = m["role"], m["content"]
        if role not in roles:
            raise DataError("unknown_role", f"message {i} has role {role!r}; this template knows {roles}")
        if not isinstance(content, str):
            raise DataError("non_string_content", f"message {i} ({role}) content is {type(content).__name__}")
        if role == "assistant" and not content.strip():
            raise DataError("empty_response", f"message {i} is an empty assistant response")
        if role == "system" and i == 0:
            continue
        allowed = {"user": ("user",), "assistant": ("assistant", "input"), "after_input": ("assistant",)}[expected]
        if role not in allowed:
            raise DataError("bad_turn_order", f"message {i} is {role!r}, expected {' or '.join(allowed)}")
        expected = {"user": "assistant", "input": "after_input", "assistant": "user"}[role]
    if len(messages) == 1 and messages[0]["role"] == "system" and not allow_open:
        raise DataError("no_response", "the conversation is a system message alone: nothing to learn")
    if expected != "user" and not allow_open:
        raise DataError("no_response", "the conversation does not end with an assistant response")
    if expected == "user" and allow_open:
        raise DataError("bad_turn_order", "a generation prompt needs a conversation ending with a user turn")
    return messages


def _assistant(content: str, *, last: bool) -> list[Segment]:
    return [Segment(content, train=True, response=last), Segment(special="eos", train=True, response=last)]


@dataclass(frozen=True)
class ChatTemplate:
    """One chat format: `render(messages)` -> segments, plus the same format as a Jinja chat_template."""

    name: str
    roles: tuple[str, ...]
    jinja: str

    def render(self, messages: list[dict], *, add_generation_prompt: bool = False) -> list[Segment]:
        validate_messages(messages, self.roles, allow_open=add_generation_prompt)
        if self.name == "llama2-ja":
            return _render_llama2(messages, add_generation_prompt)
        return _render_instruction(messages, add_generation_prompt)

    def text(self, messages: list[dict], *, bos: str, eos: str, add_generation_prompt: bool = False) -> str:
        """The rendered string (special tokens spelled out), e.g. to compare with apply_chat_template."""
        pieces = self.render(messages, add_generation_prompt=add_generation_prompt)
        return "".join({"bos": bos, "eos": eos}.get(s.special, s.text) for s in pieces)


def _last_assistant(messages: list[dict]) -> int:
    return max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)


def _render_llama2(messages: list[dict], add_generation_prompt: bool) -> list[Segment]:
    """ELYZA / Llama-2 chat: <s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {answer}</s><s>[INST] ..."""
    system = messages[0]["content"] if messages[0]["role"] == "system" else LLAMA_JA_DEFAULT_SYSTEM
    out: list[Segment] = []
    last = _last_assistant(messages)
    first_user = True
    for i, m in enumerate(messages):
        if m["role"] == "user":
            sys_block = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if first_user else ""
            out += [Segment(special="bos"), Segment(f"[INST] {sys_block}{m['content']} [/INST] ")]
            first_user = False
        elif m["role"] == "assistant":
            out += _assistant(m["content"], last=i == last)
    return out  # the generation prompt is the user segment itself (it ends with "[/INST] ")


def _render_instruction(messages: list[dict], add_generation_prompt: bool) -> list[Segment]:
    """Unified Japanese instruction format (GENIAC / llm-jp-eval v1 / llm-jp-3 instruct):

    <s>{preamble}\\n\\n### 指示:\\n{user}[\\n\\n### 入力:\\n{input}]\\n\\n### 応答:\\n{answer}</s>
    [\\n\\n### 指示:\\n{user 2} ...]
    The preamble is the system message when there is one, else INSTRUCTION_PREAMBLE.
    """
    preamble = messages[0]["content"] if messages[0]["role"] == "system" else INSTRUCTION_PREAMBLE
    out: list[Segment] = [Segment(special="bos"), Segment(preamble)]
    last = _last_assistant(messages)
    for i, m in enumerate(messages):
        if m["role"] == "user":
            out.append(Segment(f"\n\n### 指示:\n{m['content']}"))
        elif m["role"] == "input":
            out.append(Segment(f"\n\n### 入力:\n{m['content']}"))
        elif m["role"] == "assistant":
            out += [Segment("\n\n### 応答:\n"), *_assistant(m["content"], last=i == last)]
    if add_generation_prompt:
        out.append(Segment("\n\n### 応答:\n"))
    return out


_LLAMA2_JINJA = (
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set loop_messages = messages[1:] %}{% else %}{% set system = '" + LLAMA_JA_DEFAULT_SYSTEM + "' %}"
    "{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' }}"
    "{% if loop.first %}{{ '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}{% endif %}"
    "{{ message['content'] + ' [/INST] ' }}{% elif message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{% endif %}{% endfor %}"
)

_INSTRUCTION_JINJA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}"
    "{% else %}{{ '" + INSTRUCTION_PREAMBLE + "' }}{% endif %}"
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ '\\n\\n### 指示:\\n' + message['content'] }}"
    "{% elif message['role'] == 'input' %}{{ '\\n\\n### 入力:\\n' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '\\n\\n### 応答:\\n' }}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n\\n### 応答:\\n' }}{% endif %}"
)

LLAMA2_JA = ChatTemplate("llama2-ja", ("system", "user", "assistant"), _LLAMA2_JINJA)
INSTRUCTION_JA = ChatTemplate("instruction-ja", ("system", "user", "input", "assistant"), _INSTRUCTION_JINJA)
CHAT_TEMPLATES = {t.name: t for t in (LLAMA2_JA, INSTRUCTION_JA)}


def instruction_messages(instruction: str, output: str | None = None, input: str = "") -> list[dict]:
    """Messages of one instruction example for INSTRUCTION_JA (the 入力 section only when `input` is non-empty)."""
    msgs = [{"role": "user", "content": instruction}]
    if input:
        msgs.append({"role": "input", "content": input})
    if output is not None:
        msgs.append({"role": "assistant", "content": output})
    return msgs
