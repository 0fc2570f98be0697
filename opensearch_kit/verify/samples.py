"""The texts every export is checked on: English and Korean, short and past any max length."""

LONG_EN = (
    "Neural sparse retrieval expands a passage into weighted vocabulary terms so that an inverted index "
    "can match synonyms and related words without dense vectors. "
)
LONG_KO = (
    "신경망 희소 검색은 문서를 가중치가 있는 어휘 용어로 확장하여 역색인이 동의어와 관련 단어를 찾을 수 있게 합니다. "
)
SAMPLE_TEXTS = [
    "what is neural sparse search?",
    "손해배상 청구",
    "OpenSearch hybrid search combines BM25 and dense vectors.",
    "한국어 형태소 분석과 검색 모델",
    LONG_EN * 40,  # past any max length: exercises truncation
    LONG_KO * 40,
]
# Reranker parity pairs each of these queries with every sample text. They end in a letter: the server tokenizes
# query and document apart, so a query ending in punctuation or spaces can pre-tokenize differently at its end
# than inside an LLM reranker's one-string prompt (see export.reranker).
RERANK_QUERIES = ["what is neural sparse search", "손해배상 청구 소송"]
# A probe for checking a local encoder against a deployed model before client-side ingestion.
PROBE = "OpenSearch neural sparse retrieval, 한국어 검색 probe"
