"""Ingestion: corpus readers (`corpus`), bulk sending with retries and bisection (`bulk`), client-side encoding
(`encode`), the report (`report`), and the in-process run (`ingest`)."""

from opensearch_kit.ingest.corpus import Corpus, Doc, Rejected
from opensearch_kit.ingest.report import IngestReport
from opensearch_kit.ingest.run import ingest

__all__ = ["Corpus", "Doc", "IngestReport", "Rejected", "ingest"]
