# One customer-managed key for the data at rest here: EKS secrets, Aurora, Redis, the
# documents bucket, its queue, Secrets Manager entries and the VPC flow logs.
resource "aws_kms_key" "main" {
  description             = "${var.name}: data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

data "aws_iam_policy_document" "kms" {
  # A key policy's "*" resource is the key itself, and the account root administering it is
  # AWS's default key policy (IAM policies then decide who may use it).
  #checkov:skip=CKV_AWS_109:key policy: the account administers its own key
  #checkov:skip=CKV_AWS_111:key policy: the account administers its own key
  #checkov:skip=CKV_AWS_356:key policy: "*" is this key
  # The account administers the key through IAM policies, as AWS's default key policy does.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
  # S3 publishes ObjectCreated events to the encrypted queue, and CloudWatch Logs writes the flow logs.
  statement {
    sid       = "ServicesUseTheKey"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com", "logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}
