"""The inference domain: model roles, their configs, hosting and routing (no grpc imports)."""
