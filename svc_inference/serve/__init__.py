"""Ray Serve hosting: the model roles as deployments, reached through DeploymentHandles."""
