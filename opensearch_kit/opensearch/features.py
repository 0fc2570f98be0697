"""What the cluster behind a transport can do, decided once from its version and plugins, in one place.

Every version-dependent choice the toolkit makes reads a `Features` (`features(transport)`, cached per
transport); what the cluster lacks is refused before any request with `Features.require`, naming the version
that has it. Every entry was checked on live nodes: OpenSearch 2.19.1 rejects each feature it lacks (the server's
words in the comments) and 3.6.0 serves them all; `since` is the release that brought it per the plugins'
release notes (no 3.0-3.5 node was run).
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opensearch_kit.errors import KitError

if TYPE_CHECKING:
    from opensearch_kit.opensearch.transport import Transport


@dataclass(frozen=True)
class Feature:
    """A capability, the OpenSearch version that brought it, and the way round it on older clusters."""

    what: str
    since: tuple[int, int]
    instead: str


FEATURES = {
    # neural-search 3.3: the sparse_vector field type and SEISMIC (2.19: "unknown setting [index.sparse]").
    "sparse_vector": Feature("sparse_vector fields (SEISMIC)", (3, 3), "use --sparse-type rank_features"),
    # 2.19: "provided normalization technique is not supported" (it knows min_max and l2).
    "z_score": Feature("z_score normalization", (3, 0), "use min_max or l2 normalization"),
    # Client-side hybrid fusion (Searcher fusion "client") names the `_none` search pipeline in each _msearch body,
    # so that an index's default search pipeline leaves the lone sub-queries alone; checked on 3.6 only.
    "client_fusion": Feature("client-side hybrid fusion", (3, 0), "fuse on the server (--fusion server)"),
    # 2.19: "Field is not supported by [hybrid] query".
    "hybrid_filter": Feature("the hybrid query's filter", (3, 0), "filter each sub-query"),
    # neural-search 2.19 brought the score-ranker-processor (rrf); weights in 2.19: "provided parameter for
    # combination technique is not supported. supported parameters are [rank_constant]".
    "rrf": Feature("RRF fusion (score-ranker-processor)", (2, 19), "use a normalization-processor pipeline"),
    "rrf_weights": Feature("weighted RRF", (3, 0), "use RRF without weights"),
    # TEXT_EMBEDDING pooling_mode `none` (the graph pools): 2.19 "Wrong pooling method"; without the key its
    # ONNX translator pools the pooled output again and the deploy fails.
    "graph_pooling": Feature(
        "dense models that pool in their graph (pooling_mode none)", (3, 0), "export the dense model as TorchScript"
    ),
    # 2.19 registers model_config.additional_config without error and drops it; it keeps the all_config string.
    "additional_config": Feature("model_config.additional_config", (3, 0), "carry it in model_config.all_config"),
}


@dataclass(frozen=True)
class Features:
    """The cluster's version and plugins, and what follows from them."""

    version: tuple[int, ...]
    plugins: frozenset[str]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def has(self, name: str) -> bool:
        """Whether the cluster has feature `name` (a key of FEATURES)."""
        return self.version[:2] >= FEATURES[name].since

    def require(self, name: str) -> None:
        """A KitError, before any request is sent, when the cluster lacks feature `name`."""
        if not self.has(name):
            feature = FEATURES[name]
            since = ".".join(map(str, feature.since))
            raise KitError(
                f"{feature.what} needs OpenSearch {since}+; this cluster runs {self.version_text}",
                f"{feature.instead}, or use an OpenSearch {since}+ cluster",
            )


_CACHE: weakref.WeakKeyDictionary[Transport, Features] = weakref.WeakKeyDictionary()


def parse_version(number: str) -> tuple[int, ...]:
    """ "3.6.0" (or "3.6.0-SNAPSHOT") as (3, 6, 0)."""
    return tuple(int(p) for p in number.split("-")[0].split("."))


def features(transport: Transport) -> Features:
    """The features of the cluster behind `transport`, read once (GET / and _cat/plugins) and cached."""
    found = _CACHE.get(transport)
    if found is None:
        number = transport.request("GET", "/")["version"]["number"]
        plugins = transport.request("GET", "/_cat/plugins", params={"format": "json"})
        found = Features(parse_version(number), frozenset(p["component"] for p in plugins))
        _CACHE[transport] = found
    return found


def model_config_for(feats: Features, meta: dict) -> dict | None:
    """The model_config to register `meta` (an export's register body) with on this cluster.

    Dense exports pool in their graph and say `pooling_mode: none`, which ml-commons accepts from 3.0; 2.19 has
    no such mode. Its TorchScript sentence-transformers translator takes the graph's `sentence_embedding` as is,
    so there the key is left out; its ONNX translator pools the output itself, so a dense ONNX export is refused.
    2.19 drops `additional_config` (the dense space type, the reranker kind): it goes into `all_config` (a JSON
    string 2.19 keeps), where `additional_config()` reads it back.
    """
    config = meta.get("model_config")
    if not config:
        return config
    config = dict(config)
    if config.get("pooling_mode") == "none" and not feats.has("graph_pooling"):
        if meta.get("model_format") != "TORCH_SCRIPT":
            feats.require("graph_pooling")
        del config["pooling_mode"]
    if "additional_config" in config and not feats.has("additional_config"):
        config["all_config"] = json.dumps(config.pop("additional_config"))
    return config


def additional_config(model_config: dict) -> dict:
    """A registered model's additional_config: its own (3.x), else the one `model_config_for` put in all_config
    on a 2.x cluster."""
    if model_config.get("additional_config"):
        return model_config["additional_config"]
    try:
        carried = json.loads(model_config.get("all_config") or "{}")
    except ValueError:
        return {}
    return carried if isinstance(carried, dict) else {}
