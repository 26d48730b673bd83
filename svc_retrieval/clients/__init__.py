"""Clients of the stores and services svc_retrieval uses: Qdrant (embedded or server), Neo4j, InferenceService."""
