"""Item values built from a parser's events within bounds: item sources are untrusted.

Python's own builders recurse (json's decoder, PyYAML's composer and constructor) and meet a
deeply nested value with a RecursionError, after time and memory that grow with the square of
the depth; a YAML file of a few hundred bytes whose aliases refer to aliases expands to billions
of values when its items are encoded. Here values are built from the events one at a time, and
each limit is a one-line ConfigError that names it, raised at the event that crosses it:
  MAX_DEPTH      levels of lists and mappings in one item (aliases count what they stand for);
  MAX_EXPANDED   values in one item once its aliases are expanded.
"""

from collections.abc import Iterator
from typing import Any

import ijson  # type: ignore[import-untyped]
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from wq.base.errors import ConfigError

MAX_DEPTH = 100
MAX_EXPANDED = 100_000

_STARTS = ("start_map", "start_array")
_ENDS = ("end_map", "end_array")


def too_deep(what: str, where: str) -> ConfigError:
    return ConfigError(
        f"{what} {where} is nested more than {MAX_DEPTH} levels deep (lists and mappings): "
        "items this deep are refused"
    )


def check_depth(value: Any, what: str, where: str) -> None:
    """A decoded JSON value, walked without recursion: too_deep past MAX_DEPTH levels."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise too_deep(what, where)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, list | dict))


def json_value(
    events: Iterator[tuple[str, Any]], event: str, value: Any, what: str, where: str
) -> Any:
    """The value that starts with (event, value), built from ijson.basic_parse's events;
    `what` and `where` name it in the error of a value nested too deep."""
    if event not in _STARTS:
        return value
    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth = 1
    for inner, inner_value in events:
        builder.event(inner, inner_value)
        if inner in _STARTS:
            depth += 1
            if depth > MAX_DEPTH:
                raise too_deep(what, where)
        elif inner in _ENDS:
            depth -= 1
            if depth == 0:
                break
    return builder.value


def skip_json_value(events: Iterator[tuple[str, Any]], event: str) -> None:
    """Past the value that starts with `event`, building nothing (any depth costs nothing)."""
    depth = 1 if event in _STARTS else 0
    while depth:
        event, _ = next(events)
        depth += (event in _STARTS) - (event in _ENDS)


class YamlComposer:
    """Composes YAML nodes from a PyYAML loader's events, as its composer does (anchors shared
    across the document, tags resolved by the loader) but without recursion, within MAX_DEPTH
    and MAX_EXPANDED."""

    def __init__(self, loader: Any, what: str) -> None:
        self.loader = loader
        self.what = what
        # Of each anchored node, once it is complete: (height, values) with aliases expanded.
        self.sizes: dict[int, tuple[int, int]] = {}

    def value(self, where: str) -> Any:
        """The next node, composed and constructed into a Python value."""
        return self.loader.construct_document(self.node(where))

    def node(self, where: str) -> Node:
        """The next node of the loader's events, within the limits."""
        loader = self.loader
        # Open containers: (node, its anchor, height so far, values so far).
        stack: list[list[Any]] = []
        while True:
            event = loader.get_event()
            # Marks typed Any: PyYAML's stubs give events libyaml's Mark type too.
            start: Any = event.start_mark
            if isinstance(event, yaml.AliasEvent):
                node, height, size = self._alias(event, where)
            elif isinstance(event, yaml.ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = loader.resolve(ScalarNode, event.value, event.implicit)
                end: Any = event.end_mark
                node = ScalarNode(tag, event.value, start, end, event.style)
                height, size = 0, 1
                self._anchor(event.anchor, node)
            elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                kind = SequenceNode if isinstance(event, yaml.SequenceStartEvent) else MappingNode
                tag = event.tag
                if tag is None or tag == "!":
                    tag = loader.resolve(kind, None, event.implicit)
                node = kind(tag, [], start, None, flow_style=event.flow_style)
                self._anchor(event.anchor, node)
                stack.append([node, event.anchor, 1, 1])
                if len(stack) > MAX_DEPTH:
                    raise too_deep(self.what, where)
                continue
            else:  # the end of the innermost open container
                done, anchor, height, size = stack.pop()
                done.end_mark = event.end_mark
                if isinstance(done, MappingNode):
                    pairs = done.value
                    done.value = list(zip(pairs[::2], pairs[1::2], strict=True))
                if anchor is not None:
                    self.sizes[id(done)] = (height, size)
                node = done
            if not stack:
                return node
            parent = stack[-1]
            parent[0].value.append(node)
            parent[2] = max(parent[2], height + 1)
            parent[3] += size
            if len(stack) + height > MAX_DEPTH:
                raise too_deep(self.what, where)
            if parent[3] > MAX_EXPANDED:
                raise ConfigError(
                    f"{self.what} {where} expands to more than {MAX_EXPANDED} values through "
                    "its YAML aliases: items this big are refused"
                )

    def _anchor(self, anchor: str | None, node: Node) -> None:
        if anchor is not None:
            self.loader.anchors[anchor] = node
            self.sizes.pop(id(node), None)

    def _alias(self, event: Any, where: str) -> tuple[Node, int, int]:
        node = self.loader.anchors.get(event.anchor)
        if node is None:
            raise ConfigError(f"{self.what} {where}: alias *{event.anchor} names no anchor")
        if isinstance(node, ScalarNode):
            return node, 0, 1
        if id(node) not in self.sizes:
            raise ConfigError(f"{self.what} {where}: alias *{event.anchor} is inside its anchor")
        height, size = self.sizes[id(node)]
        return node, height, size
