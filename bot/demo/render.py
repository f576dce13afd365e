"""Slack messages as plain text for the demo console: mrkdwn cleaned up, Block Kit made compact.

Pure functions. Buttons are numbered by a callback the console passes in, so a person can
`click N`; the rendering shows them as `[1 Approve] [2 Reject]`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Block = Mapping[str, Any]
# (block_id, element) -> the number shown for that button
NumberButton = Callable[[str, Mapping[str, Any]], int]
# a user or channel id -> a friendly name without @ or #
Names = Callable[[str], str]

INDENT = "    "
FIELDS_PER_LINE = 3

_MENTION = re.compile(r"<([@#!])([^<>|]+)(?:\|([^<>]*))?>")
_LINK = re.compile(r"<((?:https?://|mailto:)[^<>|]*)(?:\|([^<>]*))?>")


def mrkdwn(text: str, names: Names) -> str:
    """Slack's markup as a person reads it: `<@U1>` → `@alice`, `<#C1|ops>` → `#ops`, links → labels."""

    def mention(match: re.Match[str]) -> str:
        kind, ident, label = match.group(1), match.group(2), match.group(3)
        if kind == "!":
            return "@" + (label or ident.split("^")[0])
        if label:
            return f"{kind}{label}"
        return kind + names(ident)

    def link(match: re.Match[str]) -> str:
        url, label = match.group(1), match.group(2)
        return label if label else url.removeprefix("mailto:")

    text = _MENTION.sub(mention, text)
    text = _LINK.sub(link, text)
    return html.unescape(text)


def _text_of(obj: Any, names: Names) -> str:
    """The text of a text object (plain_text or mrkdwn), or of a string."""
    if isinstance(obj, str):
        return mrkdwn(obj, names)
    if isinstance(obj, Mapping):
        text = str(obj.get("text", ""))
        return mrkdwn(text, names) if obj.get("type") == "mrkdwn" else text
    return ""


def _field(obj: Any, names: Names) -> str:
    """A section field, "*Key*\\nvalue", as "Key: value"."""
    text = _text_of(obj, names)
    key, sep, value = text.partition("\n")
    if sep and key.startswith("*") and key.endswith("*") and len(key) > 2:
        return f"{key[1:-1]}: {value.replace(chr(10), ' ')}"
    return text.replace("\n", " ")


def _element(element: Mapping[str, Any], block_id: str, number: NumberButton, names: Names) -> str:
    kind = element.get("type")
    if kind == "button":
        label = _text_of(element.get("text"), names)
        return f"[{number(block_id, element)} {label}]"
    if kind in (
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "multi_static_select",
    ):
        placeholder = _text_of(element.get("placeholder"), names) or "choose"
        options = [
            _text_of(o.get("text"), names) for o in element.get("options") or [] if isinstance(o, Mapping)
        ]
        shown = f": {', '.join(options[:5])}{' …' if len(options) > 5 else ''}" if options else ""
        return f"<{placeholder}{shown}>"
    if kind in ("plain_text_input", "number_input", "email_text_input", "url_text_input"):
        return "[________]"
    if kind == "checkboxes":
        options = [
            _text_of(o.get("text"), names) for o in element.get("options") or [] if isinstance(o, Mapping)
        ]
        return " ".join(f"[ ] {o}" for o in options)
    if kind == "image":
        return f"(image: {element.get('alt_text', '')})"
    if kind in ("mrkdwn", "plain_text"):
        return _text_of(element, names)
    return f"<{kind}>"


def _indent(text: str, prefix: str = INDENT) -> list[str]:
    return [prefix + line if line else prefix.rstrip() for line in text.split("\n")]


def _rich_text(elements: Iterable[Any], names: Names) -> str:
    """rich_text blocks, flattened to their text."""
    out: list[str] = []
    for element in elements:
        if not isinstance(element, Mapping):
            continue
        kind = element.get("type")
        if kind == "text":
            out.append(str(element.get("text", "")))
        elif kind == "user":
            out.append("@" + names(str(element.get("user_id", ""))))
        elif kind == "channel":
            out.append("#" + names(str(element.get("channel_id", ""))))
        elif kind == "link":
            out.append(str(element.get("text") or element.get("url", "")))
        elif kind == "emoji":
            out.append(f":{element.get('name', '')}:")
        elif "elements" in element:
            sep = "\n" if kind in ("rich_text_list",) else ""
            out.append(_rich_text(element["elements"], names) + sep)
    return "".join(out)


def blocks_lines(blocks: Iterable[Block], number: NumberButton, names: Names) -> list[str]:
    """Each block as one or more indented lines."""
    lines: list[str] = []
    for index, block in enumerate(blocks):
        kind = block.get("type")
        block_id = str(block.get("block_id") or f"b{index}")
        if kind == "section":
            if block.get("text"):
                lines += _indent(_text_of(block["text"], names))
            fields = [_field(f, names) for f in block.get("fields") or []]
            for start in range(0, len(fields), FIELDS_PER_LINE):
                lines.append(INDENT + "  ·  ".join(fields[start : start + FIELDS_PER_LINE]))
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping):
                lines.append(INDENT + _element(accessory, block_id, number, names))
        elif kind == "header":
            lines.append(INDENT + "== " + _text_of(block.get("text"), names) + " ==")
        elif kind == "divider":
            lines.append(INDENT + "-" * 20)
        elif kind == "context":
            texts = [_element(e, block_id, number, names) for e in block.get("elements") or []]
            lines += _indent("  ".join(texts), INDENT + "› ")
        elif kind == "actions":
            elements = block.get("elements") or []
            lines.append(INDENT + " ".join(_element(e, block_id, number, names) for e in elements))
        elif kind == "input":
            label = _text_of(block.get("label"), names)
            element = block.get("element")
            shown = _element(element, block_id, number, names) if isinstance(element, Mapping) else ""
            optional = " (optional)" if block.get("optional") else ""
            lines.append(f"{INDENT}{label}{optional}: {shown}")
        elif kind == "rich_text":
            lines += _indent(_rich_text(block.get("elements") or [], names).rstrip("\n"))
        elif kind == "image":
            lines.append(f"{INDENT}(image: {block.get('alt_text', '')})")
        else:
            lines.append(f"{INDENT}<{kind} block>")
    return lines


def message_lines(
    text: str | None, blocks: Iterable[Block] | None, number: NumberButton, names: Names
) -> list[str]:
    """What Slack shows for a message: its blocks if it has any, else its text."""
    blocks = list(blocks or [])
    if blocks:
        return blocks_lines(blocks, number, names)
    return _indent(mrkdwn(text or "", names))


def view_lines(view: Mapping[str, Any], number: NumberButton, names: Names) -> list[str]:
    """A modal or Home tab: its title, blocks and submit/close labels."""
    lines = []
    title = _text_of(view.get("title"), names)
    if title:
        lines.append(INDENT + f"== {title} ==")
    lines += blocks_lines(view.get("blocks") or [], number, names)
    buttons = [_text_of(view.get(name), names) for name in ("close", "submit") if view.get(name)]
    if buttons:
        lines.append(INDENT + " ".join(f"({b})" for b in buttons))
    return lines
