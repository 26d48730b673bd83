# The Secrets Manager entries kustomize/components/external-secrets reads. Passwords and
# keys are generated here (never written in this tree); each entry is JSON with what the
# ExternalSecret templates need, endpoint included, so the pods' DSN and Redis URL follow
# the real endpoints.
resource "random_password" "neo4j" {
  length  = 40
  special = false
}

resource "random_password" "ray_auth" {
  length  = 48
  special = false
}

# RS256 is the mesh's token algorithm (mesh/ token minting and verification).
resource "tls_private_key" "jwt" {
  algorithm = "RSA"
  rsa_bits  = 2048
}

locals {
  secret_values = {
    postgres = jsonencode({
      username = aws_rds_cluster.postgres.master_username
      password = random_password.postgres.result
      host     = aws_rds_cluster.postgres.endpoint
      port     = tostring(aws_rds_cluster.postgres.port)
      dbname   = aws_rds_cluster.postgres.database_name
    })
    redis = jsonencode({
      auth_token = random_password.redis.result
      host       = aws_elasticache_replication_group.redis.primary_endpoint_address
      port       = tostring(aws_elasticache_replication_group.redis.port)
    })
    neo4j = jsonencode({
      password = random_password.neo4j.result
    })
    "jwt-signing-key" = jsonencode({
      private_key_pem = tls_private_key.jwt.private_key_pem
      public_key_pem  = tls_private_key.jwt.public_key_pem
    })
    "ray-auth-token" = jsonencode({
      token = random_password.ray_auth.result
    })
  }
}

resource "aws_secretsmanager_secret" "app" {
  for_each                = local.secret_values
  name                    = "${var.secrets_prefix}/${each.key}"
  description             = "${var.name}: ${each.key} (read by External Secrets in namespace ${var.kubernetes_namespace})"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "app" {
  for_each      = local.secret_values
  secret_id     = aws_secretsmanager_secret.app[each.key].id
  secret_string = each.value
}
