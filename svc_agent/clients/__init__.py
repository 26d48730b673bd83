"""Clients of the services (inference, retrieval, sandbox) and stores (Postgres, Redis, vectors) the agent uses."""
