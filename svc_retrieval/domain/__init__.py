"""Domain of svc_retrieval: plain Python, no transport or store imports."""
