"""The mesh's identity material on Kubernetes: JWKS files and tokens from the cluster's signing key.

The local stack makes its key, JWKS and service tokens itself (mesh.stack.identity). On
Kubernetes the key comes from a Secret (terraform generates it; the external-secrets
component syncs it), and this module turns it into what the pods read:

- ``jwks``: the public JWKS (from the private key, or from the public key alone) for
  RAGMESH_AUTH_JWKS_FILE and Envoy's RAGMESH_EDGE_JWKS;
- ``service``: one service's own token (internal audience, role ``service``), re-minted
  before it expires, for RAGMESH_AUTH_SERVICE_TOKEN_FILE (the services re-read it when it
  changes) - run as a sidecar next to each service;
- ``issue``: a token for a person or program, printed (what ``ragmesh token issue`` does
  with the local stack's key).

Issuer and audiences come from the same RAGMESH_AUTH_* settings the services read.
"""
