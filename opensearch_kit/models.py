"""The models in ML Commons: list them with the indexes that use them, undeploy or delete one (refused while an
index uses it, unless forced; a remote model's connector goes with it when no other model uses it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from opensearchpy import OpenSearch

from opensearch_kit.errors import ClusterError, KitError, NotFound
from opensearch_kit.index.usage import model_users
from opensearch_kit.opensearch.transport import Transport

LISTED = ("model_id", "name", "model_state", "algorithm", "model_format", "model_content_hash_value")


@dataclass
class ModelList:
    """Every registered model (not its chunks), newest first, each with `indexes`: those that use it."""

    models: list[dict]

    def to_dict(self) -> list[dict]:
        return self.models

    def summary(self) -> str:
        rows = [
            f"{m['model_id']:<22} {m['model_state'] or '':<18} {m['algorithm'] or '':<18} "
            f"{m['model_format'] or '':<13} {m['name']}  indexes: {', '.join(m['indexes']) or '-'}"
            for m in self.models
        ]
        return "\n".join(rows) or "no models"


@dataclass
class ModelAction:
    """What was done to a model, the indexes that used it (forced: they can no longer run it) and, for a deleted
    remote model, its connector: {"connector_id", "deleted"} plus "kept_because" when it stays."""

    model_id: str
    action: str  # undeployed | deleted
    broken: list[str] = field(default_factory=list)
    connector: dict | None = None

    def to_dict(self) -> dict:
        record: dict = {"model_id": self.model_id, self.action: True}
        if self.broken:
            record["broken_indexes"] = self.broken
        if self.connector:
            record["connector"] = self.connector
        return record

    def summary(self) -> str:
        line = f"{self.action} {self.model_id}"
        if self.broken:
            line += f"; ingest and neural search on {', '.join(self.broken)} now fail until the model is back"
        if self.connector and self.connector["deleted"]:
            line += f"; deleted its connector {self.connector['connector_id']}"
        elif self.connector:
            line += f"; kept its connector {self.connector['connector_id']}: {self.connector['kept_because']}"
        return line


def list_models(cluster: Transport | OpenSearch) -> ModelList:
    transport = Transport.of(cluster)
    found = transport.ml.list_models()
    users = model_users(transport)
    return ModelList([{**{k: m.get(k) for k in LISTED}, "indexes": users.get(m["model_id"], [])} for m in found])


def undeploy_model(cluster: Transport | OpenSearch, model_id: str, *, force: bool = False) -> ModelAction:
    """Unload a model that must exist from every node (it stays registered); refused while an index uses it,
    unless `force`."""
    transport = Transport.of(cluster)
    transport.ml.get(model_id)
    broken = refuse_in_use(transport, model_id, "undeploy", force)
    transport.ml.undeploy(model_id)
    return ModelAction(model_id, "undeployed", broken)


def delete_model(cluster: Transport | OpenSearch, model_id: str, *, force: bool = False) -> ModelAction:
    """Undeploy and delete a model that must exist, and its connector if it has one no other model uses; refused
    while an index uses the model, unless `force`."""
    transport = Transport.of(cluster)
    connector_id = transport.ml.get(model_id).get("connector_id")
    broken = refuse_in_use(transport, model_id, "delete", force)
    transport.ml.delete(model_id)
    connector = delete_connector(transport, connector_id) if connector_id else None
    return ModelAction(model_id, "deleted", broken, connector)


def delete_connector(transport: Transport, connector_id: str) -> dict:
    """Delete a connector (gone already counts as deleted): {"connector_id", "deleted"}, plus "kept_because" when
    ML Commons refuses it. It refuses while any model's connector_id shares a word with this id: its check is an
    analyzed match, so ids such as `AyHeTKIB--bis-jwBMli` and `DyHeTKIB--bis-jwFsns` block each other. The reason
    says which case it is: the models really using it, or only such look-alikes."""
    path = f"/_plugins/_ml/connectors/{connector_id}"
    try:
        transport.request("DELETE", path)
    except NotFound:
        pass
    except ClusterError as e:
        if e.status != 409:
            raise
        matched = transport.ml.search({"match": {"connector_id": connector_id}})
        users = [m["model_id"] for m in matched if m.get("connector_id") == connector_id]
        why = (
            f"model(s) {', '.join(users)} use it"
            if users
            else f"ML Commons matched model(s) {', '.join(m['model_id'] for m in matched)}, whose connector ids only "
            f"share a word with it; delete it once they are gone: DELETE {path}"
        )
        return {"connector_id": connector_id, "deleted": False, "kept_because": why}
    return {"connector_id": connector_id, "deleted": True}


def refuse_in_use(transport: Transport, model_id: str, action: str, force: bool) -> list[str]:
    """The indexes using `model_id`; a KitError naming them unless `force`."""
    indexes = model_users(transport).get(model_id, [])
    if indexes and not force:
        raise KitError(
            f"model {model_id} is used by index(es) {', '.join(indexes)} (their pipelines or _meta)",
            f"delete those indexes first (opensearch-kit index delete NAME), or {action} anyway with --force: "
            "their ingest and neural searches then fail",
        )
    return indexes
