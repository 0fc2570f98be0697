"""Evaluation on BEIR-format data: metrics with trec_eval's conventions (`metrics`), every mode over every
judged query (`evaluate`), and the chart (`chart`)."""

from opensearch_kit.evaluate.metrics import METRICS, score_run
from opensearch_kit.evaluate.run import EvalReport, evaluate

__all__ = ["METRICS", "EvalReport", "evaluate", "score_run"]
