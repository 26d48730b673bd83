variable "name" {
  description = "Name of this deployment; prefixes every resource and is the EKS cluster's name (kustomize's terraform-outputs.env cluster_name)."
  type        = string
  default     = "ragmesh-prod"
}

variable "region" {
  description = "AWS region of everything here."
  type        = string
  default     = "us-east-1"
}

variable "az_count" {
  description = "Availability zones to spread subnets, nodes, Aurora and Redis over (3 for zone-strict spreading in the prod overlay)."
  type        = number
  default     = 3
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; the network policies of kustomize/ allow database traffic to this range."
  type        = string
  default     = "10.40.0.0/16"
}

variable "kubernetes_version" {
  description = "EKS control plane version."
  type        = string
  default     = "1.34"
}

variable "cluster_endpoint_public_cidrs" {
  description = "CIDRs allowed to reach the EKS API endpoint from outside the VPC (the operators' networks)."
  type        = list(string)

  validation {
    condition     = length(var.cluster_endpoint_public_cidrs) > 0 && !contains(var.cluster_endpoint_public_cidrs, "0.0.0.0/0")
    error_message = "Name the operators' networks; 0.0.0.0/0 would open the Kubernetes API to the internet."
  }
}

variable "system_node_instance_types" {
  description = "Instance types of the small managed node group that runs Karpenter, CoreDNS and the operators; Karpenter brings every other node."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "kubernetes_namespace" {
  description = "Namespace of the ragmesh workloads (kustomize/ overlays); the IRSA trust policies name its service accounts."
  type        = string
  default     = "ragmesh"
}

variable "karpenter_namespace" {
  description = "Namespace the Karpenter controller is installed in."
  type        = string
  default     = "kube-system"
}

variable "aurora_min_acu" {
  description = "Aurora Serverless v2 minimum capacity in ACUs."
  type        = number
  default     = 0.5
}

variable "aurora_max_acu" {
  description = "Aurora Serverless v2 maximum capacity in ACUs."
  type        = number
  default     = 16
}

variable "postgres_version" {
  description = "Aurora PostgreSQL engine version (the local stack runs PostgreSQL 15)."
  type        = string
  default     = "15.10"
}

variable "redis_node_type" {
  description = "ElastiCache node type of the Redis replication group."
  type        = string
  default     = "cache.r7g.large"
}

variable "documents_noncurrent_days" {
  description = "Days an overwritten or deleted document version is kept before it expires."
  type        = number
  default     = 90
}

variable "secrets_prefix" {
  description = "Prefix of the Secrets Manager entries; kustomize/components/external-secrets reads <prefix>/postgres, /redis, /neo4j, /jwt-signing-key and /ray-auth-token."
  type        = string
  default     = "ragmesh"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
