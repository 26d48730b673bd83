# One repository per image target of docker/Dockerfile: immutable tags, scanned on push,
# encrypted with the stack's key.
resource "aws_ecr_repository" "images" {
  for_each             = toset(["svc-inference", "svc-inference-gpu", "svc-retrieval", "svc-ingest", "svc-sandbox", "svc-agent"])
  name                 = "ragmesh/${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}
