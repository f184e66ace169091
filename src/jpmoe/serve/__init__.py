"""Serving jpmoe and Hugging Face Llama/Mixtral models: an OpenAI-compatible HTTP app (`create_app`, needs the
`serve` extra: fastapi, uvicorn), the batching `Engine` behind it, the request checks (`protocol`, torch-free) and
`load_chat_model` (weights + tokenizer + stop ids + chat template) shared with the terminal chat."""

from jpmoe.serve.host import ChatModel, NoChatTemplate, load_chat_model
from jpmoe.serve.textstream import TextStream

__all__ = ["ChatModel", "NoChatTemplate", "TextStream", "load_chat_model"]
