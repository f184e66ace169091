"""Chat in the terminal with a jpmoe checkpoint or a Hugging Face Llama/Mixtral directory; tokens stream as they
are generated.

    python apps/chat.py --model runs/demo/sft/hf
    python apps/chat.py --model runs/demo/sft/hf --system "あなたは誠実なアシスタントです。" --temperature 0
    python apps/chat.py --model runs/demo/sft/hf --prompt "日本の首都は？"      # one answer, then exit

Commands: /reset (forget the conversation), /system TEXT, /show (sampling settings), /set KEY VALUE
(temperature, top_p, top_k, repetition_penalty, max_tokens), /save FILE.jsonl (append the conversation as an SFT
`messages` record), /help, /exit. Ctrl-C stops the answer being written, not the session; Ctrl-D exits. When the
conversation would overflow the context, the oldest turns are dropped and a line says so.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import asdict, dataclass

import torch

from jpmoe.serve import load_chat_model
from jpmoe.serve.session import ChatSession, Sampling
from jpmoe.train import parse_args


@dataclass
class Args:
    config: str = ""  # TOML file with any of these keys
    model: str = ""  # jpmoe export / HF directory / training checkpoint or run directory
    prompt: str = ""  # answer this one message and exit
    system: str = ""  # system prompt
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 0
    repetition_penalty: float = 1.1
    max_tokens: int = 256
    seed: int = 0
    device: str = "auto"  # "auto": cuda when available, else cpu
    dtype: str = "auto"  # "auto": bfloat16 on cuda, float32 on cpu


HELP = ("/reset  /system TEXT  /show  /set KEY VALUE  /save FILE.jsonl  /help  /exit   "
        "(Ctrl-C stops an answer, Ctrl-D exits)")


def say(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def command(session: ChatSession, line: str) -> bool:
    """Run a /command; False to end the session."""
    name, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    if name in ("exit", "quit"):
        return False
    if name == "reset":
        session.reset()
        say("[conversation reset]\n")
    elif name == "system":
        session.system = rest
        say(f"[system prompt {'set' if rest else 'cleared'}]\n")
    elif name == "show":
        say(" ".join(f"{k}={v}" for k, v in asdict(session.sampling).items()) + "\n")
    elif name == "set":
        key, _, value = rest.partition(" ")
        try:
            session.sampling = session.sampling.set(key, value.strip())
            say(f"[{key} = {getattr(session.sampling, key)}]\n")
        except ValueError as e:
            say(f"[error: {e}]\n")
    elif name == "save" and rest:
        say(f"[saved {len(session.conversation())} messages to {session.save(rest)}]\n")
    else:
        say(HELP + "\n")
    return True


def answer(session: ChatSession, text: str) -> None:
    def trimmed(n: int) -> None:
        say(f"[history trimmed: dropped the {n} oldest messages to fit the context of {session.host.max_len} "
            "tokens]\n")

    stop = []  # Ctrl-C while answering: a flag the decoding loop reads between steps
    previous = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    try:
        _, finish = session.reply(text, say, trimmed, interrupted=lambda: bool(stop))
    except ValueError as e:
        say(f"[error: {e}]\n")
        return
    finally:
        signal.signal(signal.SIGINT, previous)
    say("\n[stopped]\n" if finish == "interrupted" else "\n")


def main(args: Args) -> None:
    if not args.model:
        raise SystemExit("error: --model PATH is required")
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = None if args.dtype == "auto" and device == "cpu" else getattr(
        torch, "bfloat16" if args.dtype == "auto" else args.dtype)
    try:
        host = load_chat_model(args.model, device=device, dtype=dtype)
        sampling = Sampling(args.temperature, args.top_p, args.top_k, args.repetition_penalty, args.max_tokens)
        sampling.params(host.stop_ids)
        session = ChatSession(host, system=args.system, sampling=sampling, seed=args.seed)
        if args.prompt:
            host.encode_chat([{"role": "user", "content": args.prompt}])  # no chat template: the error, no banner
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.prompt:
        answer(session, args.prompt)
        return
    say(f"chat with {host.name} ({host.config.num_params() / 1e6:.1f}M params, context {host.max_len} tokens). "
        f"{HELP}\n")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            say("\n")
            return
        except KeyboardInterrupt:
            say("\n(Ctrl-D or /exit to quit)\n")
            continue
        if not line:
            continue
        if line.startswith("/"):
            if not command(session, line):
                return
            continue
        say("assistant> ")
        answer(session, line)


if __name__ == "__main__":
    main(parse_args(Args))
