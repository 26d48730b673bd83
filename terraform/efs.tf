# The shared, read-only model volume of the inference RayService's GPU workers (the
# ragmesh-models claim of kustomize/components/kuberay), filled once with the production
# weights: pods mount it, nothing is downloaded when one starts.
resource "aws_efs_file_system" "models" {
  creation_token   = "${var.name}-models"
  encrypted        = true
  kms_key_id       = aws_kms_key.main.arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"
  tags             = { Name = "${var.name}-models" }
}

resource "aws_security_group" "efs" {
  name        = "${var.name}-efs"
  description = "EFS model volume: NFS from the EKS cluster only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "efs" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the cluster's nodes"
  referenced_security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  from_port                    = 2049
  to_port                      = 2049
  ip_protocol                  = "tcp"
}

resource "aws_efs_mount_target" "models" {
  count           = var.az_count
  file_system_id  = aws_efs_file_system.models.id
  subnet_id       = aws_subnet.private[count.index].id
  security_groups = [aws_security_group.efs.id]
}
