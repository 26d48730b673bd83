# The outputs scripts/terraform_outputs_env.py turns into
# kustomize/overlays/prod/namespaced/terraform-outputs.env, and what the install steps of
# docs/DEPLOY.md need.
output "aws_region" {
  description = "Region of the stack (the External Secrets store's region)."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster name; also the karpenter.sh/discovery tag on its subnets and security group."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "URL of the EKS API server."
  value       = aws_eks_cluster.this.endpoint
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster (IRSA)."
  value       = aws_iam_openid_connect_provider.eks.arn
}

output "documents_bucket" {
  description = "Name of the S3 bucket ingest reads documents from (s3://<bucket>/<prefix> in an ingest request)."
  value       = aws_s3_bucket.documents.bucket
}

output "document_events_queue_url" {
  description = "SQS queue that receives the documents bucket's ObjectCreated events."
  value       = aws_sqs_queue.document_events.url
}

output "ingest_role_arn" {
  description = "IAM role of the svc-ingest service account (reads the documents bucket and its events)."
  value       = aws_iam_role.ingest.arn
}

output "external_secrets_role_arn" {
  description = "IAM role of the ragmesh-external-secrets service account (reads the stack's Secrets Manager entries)."
  value       = aws_iam_role.external_secrets.arn
}

output "karpenter_controller_role_arn" {
  description = "IAM role for the Karpenter controller's service account (Helm value serviceAccount.annotations)."
  value       = aws_iam_role.karpenter.arn
}

output "karpenter_node_role_name" {
  description = "IAM role of the nodes Karpenter launches (EC2NodeClass spec.role)."
  value       = aws_iam_role.node.name
}

output "karpenter_interruption_queue" {
  description = "SQS queue of EC2 interruption events for Karpenter (Helm value settings.interruptionQueue)."
  value       = aws_sqs_queue.karpenter_interruptions.name
}

output "models_file_system_id" {
  description = "EFS file system holding the production model weights (the ragmesh-models-efs StorageClass)."
  value       = aws_efs_file_system.models.id
}

output "postgres_endpoint" {
  description = "Aurora writer endpoint (also inside the postgres Secrets Manager entry)."
  value       = aws_rds_cluster.postgres.endpoint
}

output "redis_endpoint" {
  description = "ElastiCache primary endpoint (also inside the redis Secrets Manager entry)."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "ecr_repositories" {
  description = "Image name -> ECR repository URL, for `kustomize edit set image`."
  value       = { for name, repo in aws_ecr_repository.images : name => repo.repository_url }
}
