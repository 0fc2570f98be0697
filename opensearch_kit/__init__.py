"""opensearch-kit: Hugging Face retrieval models into OpenSearch, end to end."""

__version__ = "0.3.0"
