"""Verification, torch-free: the sample texts (`samples`), comparisons of outputs (`compare`), and the checks of a
deployed model against its export (`check_in_cluster`) or of a local encoder against a deployed model."""

from opensearch_kit.verify.cluster import check_in_cluster, check_local_encoder
from opensearch_kit.verify.samples import PROBE, RERANK_QUERIES, SAMPLE_TEXTS

__all__ = ["PROBE", "RERANK_QUERIES", "SAMPLE_TEXTS", "check_in_cluster", "check_local_encoder"]
