"""Integration tests of svc_inference against the real packaged models and Ray Serve."""
