# Aurora Serverless v2 PostgreSQL for the jobs and chat memory (the services' Postgres DSN).
# Reached only from the cluster's nodes, encrypted, TLS required, backed up for a week.
resource "aws_db_subnet_group" "main" {
  name       = var.name
  subnet_ids = aws_subnet.database[*].id
}

resource "aws_security_group" "postgres" {
  name        = "${var.name}-postgres"
  description = "Aurora PostgreSQL: from the EKS cluster only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  security_group_id            = aws_security_group.postgres.id
  description                  = "PostgreSQL from the cluster's nodes and pods"
  referenced_security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  from_port                    = 5432
  to_port                      = 5432
  ip_protocol                  = "tcp"
}

resource "aws_rds_cluster_parameter_group" "postgres" {
  name   = "${var.name}-postgres"
  family = "aurora-postgresql15"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  # Statements slower than a second are logged; DDL always (who changed the schema).
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
}

resource "random_password" "postgres" {
  length  = 40
  special = false
}

resource "aws_rds_cluster" "postgres" {
  cluster_identifier                  = var.name
  engine                              = "aurora-postgresql"
  engine_mode                         = "provisioned"
  engine_version                      = var.postgres_version
  database_name                       = "ragmesh"
  master_username                     = "ragmesh"
  master_password                     = random_password.postgres.result
  db_subnet_group_name                = aws_db_subnet_group.main.name
  vpc_security_group_ids              = [aws_security_group.postgres.id]
  db_cluster_parameter_group_name     = aws_rds_cluster_parameter_group.postgres.name
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.main.arn
  iam_database_authentication_enabled = true
  backup_retention_period             = 7
  copy_tags_to_snapshot               = true
  deletion_protection                 = true
  final_snapshot_identifier           = "${var.name}-final"
  enabled_cloudwatch_logs_exports     = ["postgresql"]

  serverlessv2_scaling_configuration {
    min_capacity = var.aurora_min_acu
    max_capacity = var.aurora_max_acu
  }
}

# Writer and reader in different zones.
resource "aws_rds_cluster_instance" "postgres" {
  count                           = 2
  identifier                      = "${var.name}-${count.index}"
  cluster_identifier              = aws_rds_cluster.postgres.id
  instance_class                  = "db.serverless"
  engine                          = aws_rds_cluster.postgres.engine
  engine_version                  = aws_rds_cluster.postgres.engine_version
  availability_zone               = local.azs[count.index]
  performance_insights_enabled    = true
  performance_insights_kms_key_id = aws_kms_key.main.arn
  auto_minor_version_upgrade      = true
  monitoring_interval             = 60
  monitoring_role_arn             = aws_iam_role.rds_monitoring.arn
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
