"""YAML read the way Go's YAML (kubectl, istiod: go-yaml through sigs.k8s.io/yaml) reads it.

PyYAML and Go disagree on a few plain scalars: Go reads `[a, 001:db8::]` (an IPv6 address in a flow
sequence) as two strings, libyaml refuses it and PyYAML's own parser reads `{'001:db8:': None}`.
Configuration that Istio or Kubernetes will read is parsed here, so meshctl sees what they see:
`meshctl.lint.loader` (every linted document, with line numbers) and `meshctl.validate.schemas` (the
`istio` ConfigMap's `data.mesh` string).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def compose(text: str) -> tuple[Any, Any]:
    """(node, data) of a single-document YAML text; (None, None) when it is empty.

    libyaml first (fast); when it refuses the text, PyYAML's parser with Go's reading of the plain
    scalars above. Raises libyaml's `yaml.YAMLError` (with its marks) when neither reads it."""
    import yaml

    try:
        return _compose(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        try:
            node, data = _compose(text, yaml.SafeLoader)
        except yaml.YAMLError:
            raise exc from None
        return node, _go_plain_scalars(node, data, text)


def load(text: str) -> Any:
    """The data of a single-document YAML text (None when empty), as Go reads it."""
    return compose(text)[1]


def _compose(text: str, loader_class: Any) -> tuple[Any, Any]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _go_plain_scalars(node: Any, data: Any, text: str) -> Any:
    """PyYAML reads `[a, 001:db8::]` as [a, {'001:db8:': None}]; Go's YAML reads the plain scalar
    `001:db8::`. Turn such one-pair mappings written as `x:` inside flow sequences back into strings."""
    import yaml

    if isinstance(node, yaml.SequenceNode) and isinstance(data, list):
        for i, (item_node, item) in enumerate(zip(node.value, data, strict=False)):
            if (node.flow_style and isinstance(item_node, yaml.MappingNode) and isinstance(item, dict)
                    and len(item) == 1 and next(iter(item.values())) is None):
                key = next(iter(item))
                raw = text[item_node.start_mark.index:item_node.end_mark.index].strip()
                if isinstance(key, str) and raw == key + ":":
                    data[i] = raw
                    continue
            data[i] = _go_plain_scalars(item_node, item, text)
    elif isinstance(node, yaml.MappingNode) and isinstance(data, dict):
        for key_node, value_node in node.value:
            key = node_key(key_node, data)
            if key in data:
                data[key] = _go_plain_scalars(value_node, data[key], text)
    return data


def node_key(key_node: Any, data: Mapping[Any, Any]) -> Any:
    """The key of `data` that mapping key node `key_node` was constructed into."""
    raw = getattr(key_node, "value", None)
    if not isinstance(raw, str):
        return None
    if raw in data:
        return raw
    for k in data:  # keys resolved to int/bool/float by the YAML resolver
        if str(k).lower() == raw.lower():
            return k
    return raw
