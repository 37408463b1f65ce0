"""The chat template: how ``/v1/chat/completions`` turns messages into the prompt a plain language model continues.

Each message becomes one turn, a header line naming its role and the content on the lines below::

    <|system|>
    You are terse.
    <|user|>
    Name a prime.
    <|assistant|>

that is ``"<|" + role + "|>\\n" + content + "\\n"`` per message, then the assistant's header ``"<|assistant|>\\n"``,
which the model continues. The reply ends where the model starts another turn: at ``TURN_STOP`` (``"\\n<|"``,
the newline before a header), an implicit stop string of every chat request (finish reason "stop"; the text
before it is the message's content). Roles: system, developer (written as system), user, assistant. A message's
content is a string or a list of text parts (``{"type": "text", "text": ...}``, joined); a ``name`` is ignored.

The headers are ordinary text: a character-level model needs ``<``, ``|`` and ``>`` in its vocabulary (a
request whose template it cannot encode gets a 400 naming the character), and a model trained without this
format will not follow it; the template gives every model the same, documented, prompt.
"""

from __future__ import annotations

ROLES = ("system", "developer", "user", "assistant")
TURN_STOP = "\n<|"
ASSISTANT_HEADER = "<|assistant|>\n"


def turn(role: str, content: str) -> str:
    """One message as the template writes it (developer messages are written as system ones)."""
    return f"<|{'system' if role == 'developer' else role}|>\n{content}\n"


def render(messages: list[tuple[str, str]]) -> str:
    """The prompt for (role, content) messages: their turns, then the assistant's header."""
    return "".join(turn(role, content) for role, content in messages) + ASSISTANT_HEADER
