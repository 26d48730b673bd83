# ragmesh on AWS: the network, EKS (with IRSA and what Karpenter needs), Aurora Serverless v2
# PostgreSQL, ElastiCache Redis, the documents bucket and the Secrets Manager entries the
# cluster's External Secrets read. docs/DEPLOY.md walks through apply and what follows.

terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }

  # State in S3, encrypted, with a DynamoDB lock so two applies never interleave. The
  # bucket and the table exist before the first `init` (docs/DEPLOY.md creates them);
  # backend blocks cannot take variables, so another account overrides these with
  # `terraform init -backend-config=...`.
  backend "s3" {
    bucket         = "ragmesh-terraform-state"
    key            = "ragmesh/prod/terraform.tfstate"
    region         = "us-east-1"
    dynamodb_table = "ragmesh-terraform-locks"
    encrypt        = true
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { "ragmesh.dev/stack" = var.name })
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:subnets are made in the first var.az_count zones and kept in the state; a new zone changes nothing already created
  state = "available"
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  # The namespace and service accounts of kustomize/ that assume IAM roles (IRSA).
  ingest_service_account           = "system:serviceaccount:${var.kubernetes_namespace}:svc-ingest"
  external_secrets_service_account = "system:serviceaccount:${var.kubernetes_namespace}:ragmesh-external-secrets"
  karpenter_service_account        = "system:serviceaccount:${var.karpenter_namespace}:karpenter"
  oidc_issuer                      = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
}
