"""Ray Serve application builders for clusters whose Serve config names them (KubeRay's RayService)."""
