"""YAML read with bounds: a document whose aliases expand past a node budget, that
repeats a key or whose alias contains itself is refused before anything walks it; and
values quoted in messages are shortened, so a bad value never makes a huge message.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["MAX_YAML_NODES", "parse_yaml", "shorten"]

MAX_YAML_NODES = 20_000
_QUOTED = 80  # characters of a quoted value in a message


def shorten(value: Any, limit: int = _QUOTED) -> str:
    """``repr(value)``, cut to ``limit`` characters with the full length said."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"


def parse_yaml(text: str, display: str, *, what: str, needs: str = "a few hundred") -> Any:
    """The document in ``text`` (None if empty); ValueError naming ``display`` for a parse
    error, a duplicate key, a self-containing alias or more than ``MAX_YAML_NODES`` nodes
    once aliases are expanded. ``what``/``needs``: ``"a search space"``, ``"a few hundred"``
    (what the document is and how many nodes one needs), for the messages."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_nodes(root, display, what, needs)
        return loader.construct_document(root)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ValueError(f"cannot parse {display}{line}: {problem}") from None
    except RecursionError:
        raise ValueError(f"{display}: nested too deeply to be {what}") from None
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, display: str, what: str, needs: str) -> None:
    """Reject repeated keys, self-containing aliases and over-large documents.

    ``safe_load`` keeps the last of two equal keys silently; a repeated param is a
    typo. An alias stands for its whole anchored node, so the document a later step
    walks can be exponentially larger than the text: its size (aliases expanded) is
    counted here while each node is visited once, so the check itself stays linear.
    """
    sizes: dict[int, int] = {}  # id(node) -> nodes in it, aliases expanded; -1: being counted

    def count(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known == -1:
            line = node.start_mark.line + 1
            raise ValueError(f"{display} (line {line}): an alias refers to a node containing it")
        if known is not None:
            return known
        sizes[id(node)] = -1
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        line = key.start_mark.line + 1
                        raise ValueError(f"{display} (line {line}): duplicate key {key.value!r}")
                    seen.add(key.value)
                total += count(key) + count(value)
                _check_size(total, display, what, needs)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += count(item)
                _check_size(total, display, what, needs)
        sizes[id(node)] = total
        return total

    count(root)


def _check_size(nodes: int, display: str, what: str, needs: str) -> None:
    if nodes > MAX_YAML_NODES:
        raise ValueError(
            f"{display}: the document expands to more than {MAX_YAML_NODES} YAML nodes "
            f"(anchors and aliases repeat what they point to); {what} needs {needs}"
        )
