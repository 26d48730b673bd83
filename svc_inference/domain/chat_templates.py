"""Chat templates: a chat becomes prompt segments, markup kept apart from what people wrote.

A rendered prompt is a list of segments. Markup segments (turn markers) are
tokenized with special tokens parsed; message contents are tokenized as plain
text, so a user who types ``<end_of_turn>`` cannot forge a turn. No template
adds the beginning-of-sequence token: the backend's tokenizer does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from mesh.errors import FieldViolation, InvalidArgument
from svc_inference.domain.model import ChatMessage, ChatRole


@dataclasses.dataclass(frozen=True)
class Segment:
    """A piece of prompt text; ``markup`` segments may contain special tokens."""

    text: str
    markup: bool


def raw_prompt(prompt: str) -> tuple[Segment, ...]:
    """A raw prompt goes to the model as is, special tokens included (the caller owns the format)."""
    return (Segment(prompt, markup=True),)


def render(template: str, messages: Sequence[ChatMessage]) -> tuple[Segment, ...]:
    """Renders ``messages`` with ``template`` and opens the assistant's turn."""
    if template == "gemma":
        return _gemma(messages)
    if template == "llama3":
        return _header_template(messages, "<|start_header_id|>{role}<|end_header_id|>\n\n", "<|eot_id|>", "assistant")
    if template == "chatml":
        return _header_template(messages, "<|im_start|>{role}\n", "<|im_end|>\n", "assistant")
    raise ValueError(f"unknown chat template {template!r}")


def prompt_text(segments: Sequence[Segment]) -> str:
    """The segments joined (for logs and for backends that take text)."""
    return "".join(s.text for s in segments)


def check_not_empty(prompt: str, messages: Sequence[ChatMessage]) -> None:
    """Refuses a prompt or chat with nothing but whitespace in it."""
    if messages:
        if not any(m.content.strip() for m in messages):
            raise InvalidArgument(
                "the chat has no text: every message is empty or whitespace",
                reason="EMPTY_PROMPT",
                violations=[FieldViolation("messages", "at least one message must contain non-whitespace text")],
            )
        return
    if not prompt.strip():
        raise InvalidArgument(
            "the prompt is empty or whitespace",
            reason="EMPTY_PROMPT",
            violations=[FieldViolation("prompt", "must contain non-whitespace text")],
        )


def _gemma(messages: Sequence[ChatMessage]) -> tuple[Segment, ...]:
    # Gemma has no system role: system text opens the first user turn, as Google's template does.
    system = "\n\n".join(m.content for m in messages if m.role is ChatRole.SYSTEM)
    turns = [m for m in messages if m.role is not ChatRole.SYSTEM]
    out: list[Segment] = []
    pending_system = system
    if not turns:
        turns = [ChatMessage(ChatRole.USER, "")]
    for message in turns:
        role = "model" if message.role is ChatRole.ASSISTANT else "user"
        content = message.content
        if pending_system and role == "user":
            content = f"{pending_system}\n\n{content}" if content else pending_system
            pending_system = ""
        out.append(Segment(f"<start_of_turn>{role}\n", markup=True))
        out.append(Segment(content, markup=False))
        out.append(Segment("<end_of_turn>\n", markup=True))
    out.append(Segment("<start_of_turn>model\n", markup=True))
    return tuple(s for s in out if s.text)


def _header_template(
    messages: Sequence[ChatMessage], header: str, end_of_turn: str, assistant: str
) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for message in messages:
        out.append(Segment(header.format(role=message.role.value), markup=True))
        out.append(Segment(message.content, markup=False))
        out.append(Segment(end_of_turn, markup=True))
    out.append(Segment(header.format(role=assistant), markup=True))
    return tuple(s for s in out if s.text)
