"""The models in ML Commons: list them, undeploy or delete one."""

from __future__ import annotations

from dataclasses import dataclass

from opensearchpy import OpenSearch

from opensearch_kit.opensearch.transport import Transport

LISTED = ("model_id", "name", "model_state", "algorithm", "model_format", "model_content_hash_value")


@dataclass
class ModelList:
    """Every registered model (not its chunks), newest first."""

    models: list[dict]

    def to_dict(self) -> list[dict]:
        return self.models

    def summary(self) -> str:
        rows = [
            f"{m['model_id']:<22} {m['model_state'] or '':<18} {m['algorithm'] or '':<18} "
            f"{m['model_format'] or '':<13} {m['name']}"
            for m in self.models
        ]
        return "\n".join(rows) or "no models"


@dataclass
class ModelAction:
    """What was done to a model."""

    model_id: str
    action: str  # undeployed | deleted

    def to_dict(self) -> dict:
        return {"model_id": self.model_id, self.action: True}

    def summary(self) -> str:
        return f"{self.action} {self.model_id}"


def list_models(cluster: Transport | OpenSearch) -> ModelList:
    found = Transport.of(cluster).ml.list_models()
    return ModelList([{k: m.get(k) for k in LISTED} for m in found])


def undeploy_model(cluster: Transport | OpenSearch, model_id: str) -> ModelAction:
    """Unload a model that must exist from every node (it stays registered)."""
    ml = Transport.of(cluster).ml
    ml.get(model_id)
    ml.undeploy(model_id)
    return ModelAction(model_id, "undeployed")


def delete_model(cluster: Transport | OpenSearch, model_id: str) -> ModelAction:
    """Undeploy and delete a model that must exist."""
    ml = Transport.of(cluster).ml
    ml.get(model_id)
    ml.delete(model_id)
    return ModelAction(model_id, "deleted")
