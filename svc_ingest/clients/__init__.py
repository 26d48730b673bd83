"""Clients of the services and stores svc_ingest talks to (InferenceService, IndexService, Postgres, S3)."""
