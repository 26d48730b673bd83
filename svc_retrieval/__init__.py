"""svc_retrieval: the index owner (IndexService) and hybrid search (RetrievalService)."""
