"""terraform/ parsed (python-hcl2) and checked for its wiring, since no provider can be
downloaded here for `terraform validate`: every variable declared is used and documented,
every reference names something declared, outputs are documented and cover what the prod
overlay reads, nothing secret is written in the tree, and data at rest and in transit is
encrypted everywhere it can be.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.deploy.kube import REPO

TERRAFORM = REPO / "terraform"
FILES = sorted(TERRAFORM.glob("*.tf"))


def _unq(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and block labels; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _load(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        parsed: dict[str, Any] = hcl2.load(handle)
    return parsed


@pytest.fixture(scope="module")
def parsed() -> dict[str, dict[str, Any]]:
    return {p.name: _load(p) for p in FILES}


@pytest.fixture(scope="module")
def text() -> str:
    return "\n".join(p.read_text() for p in FILES)


def _blocks(parsed: dict[str, dict[str, Any]], kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource or data block."""
    for doc in parsed.values():
        for entry in doc.get(kind, []):
            for type_, named in entry.items():
                for name, body in named.items():
                    yield _unq(type_), _unq(name), body


def _declared(parsed: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for doc in parsed.values():
        for entry in doc.get(kind, []):
            for name, body in entry.items():
                out[_unq(name)] = body
    return out


def _resources(parsed: dict[str, dict[str, Any]], type_: str) -> dict[str, dict[str, Any]]:
    return {name: body for t, name, body in _blocks(parsed, "resource") if t == type_}


def test_every_file_parses_and_the_stack_has_its_parts(parsed: dict[str, dict[str, Any]]) -> None:
    types = {t for t, _, _ in _blocks(parsed, "resource")}
    for needed in (
        "aws_vpc",
        "aws_eks_cluster",
        "aws_iam_openid_connect_provider",
        "aws_rds_cluster",
        "aws_elasticache_replication_group",
        "aws_s3_bucket",
        "aws_s3_bucket_notification",
        "aws_secretsmanager_secret",
        "aws_sqs_queue",
    ):
        assert needed in types, needed
    subnets = _resources(parsed, "aws_subnet")
    assert set(subnets) == {"public", "private", "database"}


def test_variables_are_documented_typed_and_used(parsed: dict[str, dict[str, Any]], text: str) -> None:
    variables = _declared(parsed, "variable")
    assert variables
    for name, body in variables.items():
        assert _unq(body.get("description", "")), f"variable {name} has no description"
        assert "type" in body, f"variable {name} has no type"
        assert re.search(rf"\bvar\.{name}\b", text), f"variable {name} is declared but never used"
    for used in set(re.findall(r"\bvar\.([a-z0-9_]+)", text)):
        assert used in variables, f"var.{used} is used but not declared"


def test_references_name_declared_things(parsed: dict[str, dict[str, Any]], text: str) -> None:
    resources = {(t, n) for t, n, _ in _blocks(parsed, "resource")}
    data = {(t, n) for t, n, _ in _blocks(parsed, "data")}
    locals_ = {k for doc in parsed.values() for entry in doc.get("locals", []) for k in entry}
    code = re.sub(r"#.*", "", text)
    for type_, name in set(re.findall(r"(?<![\w.])((?:aws|random|tls)_[a-z0-9_]+)\.([a-z0-9_]+)", code)):
        assert (type_, name) in resources, f"{type_}.{name} is referenced but not declared"
    for type_, name in set(re.findall(r"\bdata\.([a-z0-9_]+)\.([a-z0-9_]+)", code)):
        assert (type_, name) in data, f"data.{type_}.{name} is referenced but not declared"
    for name in set(re.findall(r"\blocal\.([a-z0-9_]+)", code)):
        assert name in locals_, f"local.{name} is referenced but not declared"


def test_outputs_are_documented_and_cover_the_overlay(parsed: dict[str, dict[str, Any]]) -> None:
    from scripts.terraform_outputs_env import OVERLAY_OUTPUTS

    outputs = _declared(parsed, "output")
    for name, body in outputs.items():
        assert _unq(body.get("description", "")), f"output {name} has no description"
        assert "value" in body
    assert set(OVERLAY_OUTPUTS) <= set(outputs)
    env = (REPO / "kustomize/overlays/prod/namespaced/terraform-outputs.env").read_text()
    keys = {line.split("=", 1)[0] for line in env.splitlines() if line and not line.startswith("#")}
    assert keys == set(OVERLAY_OUTPUTS)


_SECRET_KEY = re.compile(
    r"(password|auth_token|secret_string|private_key|private_key_pem|secret_key|access_key)$|^token$"
)


def _attributes(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _attributes(inner, f"{path}.{_unq(key)}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _attributes(inner, f"{path}[{i}]")
    else:
        yield path, value


def test_no_secret_is_written_in_the_tree(parsed: dict[str, dict[str, Any]], text: str) -> None:
    for name, doc in parsed.items():
        for path, value in _attributes(doc):
            key = path.rsplit(".", 1)[-1]
            if _SECRET_KEY.search(key) and isinstance(value, str):
                assert value.startswith("${"), f"{name}{path} is a literal: secrets must be generated, not written"
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)
    assert "PRIVATE KEY-----" not in text


def test_data_is_encrypted_at_rest_and_in_transit(parsed: dict[str, dict[str, Any]]) -> None:
    (aurora,) = _resources(parsed, "aws_rds_cluster").values()
    assert aurora["storage_encrypted"] is True and aurora["kms_key_id"].startswith("${")
    assert aurora["deletion_protection"] is True
    (redis,) = _resources(parsed, "aws_elasticache_replication_group").values()
    assert redis["at_rest_encryption_enabled"] is True and redis["transit_encryption_enabled"] is True
    assert redis["auth_token"] == "${random_password.redis.result}"
    buckets = _resources(parsed, "aws_s3_bucket")
    for kind in (
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_lifecycle_configuration",
    ):
        covered = {body["bucket"] for body in _resources(parsed, kind).values()}
        for bucket in buckets:
            assert f"${{aws_s3_bucket.{bucket}.id}}" in covered, f"{kind} missing for bucket {bucket}"
    for block in _resources(parsed, "aws_s3_bucket_public_access_block").values():
        for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            assert block[flag] is True
    for name, queue in _resources(parsed, "aws_sqs_queue").items():
        assert "kms_master_key_id" in queue, f"queue {name} is not encrypted"
    for name, secret in _resources(parsed, "aws_secretsmanager_secret").items():
        assert "kms_key_id" in secret, name
    (eks,) = _resources(parsed, "aws_eks_cluster").values()
    assert eks["encryption_config"] and eks["enabled_cluster_log_types"]
    (efs,) = _resources(parsed, "aws_efs_file_system").values()
    assert efs["encrypted"] is True
    for log_group in _resources(parsed, "aws_cloudwatch_log_group").values():
        assert "kms_key_id" in log_group
    (key,) = _resources(parsed, "aws_kms_key").values()
    assert key["enable_key_rotation"] is True


def test_state_is_remote_encrypted_and_locked(parsed: dict[str, dict[str, Any]]) -> None:
    backends = [b for doc in parsed.values() for t in doc.get("terraform", []) for b in t.get("backend", [])]
    (backend,) = backends
    s3 = backend[_unq(next(iter(backend)))] if '"s3"' not in backend else backend['"s3"']
    assert s3["encrypt"] is True
    assert _unq(s3["dynamodb_table"])


def test_ingest_reads_only_its_bucket(parsed: dict[str, dict[str, Any]]) -> None:
    policies = {n: b for t, n, b in _blocks(parsed, "data") if t == "aws_iam_policy_document"}
    for statement in policies["ingest"]["statement"]:
        for action in statement["actions"]:
            assert not _unq(action).endswith(":*"), action
            assert not _unq(action).startswith(("s3:Put", "s3:Delete")), action
        for resource in statement["resources"]:
            assert resource != '"*"', f"ingest statement {statement.get('sid')} on every resource"


def test_secrets_hold_what_the_external_secrets_read(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    """Every remoteRef (key, property) of the prod ExternalSecrets is an entry and JSON field terraform writes."""
    source = (TERRAFORM / "secrets.tf").read_text()
    block = source[source.index("secret_values = {") :]
    entries: dict[str, set[str]] = {}
    for match in re.finditer(r'^\s{4}"?([a-z0-9-]+)"?\s*=\s*jsonencode\(\{(.*?)\}\)', block, re.S | re.M):
        entries[match.group(1)] = set(re.findall(r"^\s*([a-z_]+)\s*=", match.group(2), re.M))
    assert set(entries) == {"postgres", "redis", "neo4j", "jwt-signing-key", "ray-auth-token"}
    variables = _declared({"v": _load(TERRAFORM / "variables.tf")}, "variable")
    prefix = _unq(variables["secrets_prefix"]["default"])
    refs = [
        d["remoteRef"] for o in rendered_objects["prod"] if o["kind"] == "ExternalSecret" for d in o["spec"]["data"]
    ]
    assert refs
    for ref in refs:
        entry_prefix, entry = ref["key"].split("/", 1)
        assert entry_prefix == prefix
        assert ref["property"] in entries[entry], f"{ref} is not written by terraform/secrets.tf"


def test_terraform_outputs_env_script() -> None:
    from scripts.terraform_outputs_env import OVERLAY_OUTPUTS, env_file

    outputs = {name: {"value": f"value-of-{name}", "sensitive": False} for name in OVERLAY_OUTPUTS}
    text = env_file(outputs)
    assert text.splitlines()[1:] == [f"{n}=value-of-{n}" for n in OVERLAY_OUTPUTS]
    del outputs["ingest_role_arn"]
    with pytest.raises(ValueError, match="ingest_role_arn"):
        env_file(outputs)


def test_tofu_fmt_check(tmp_path: Path) -> None:
    """`tofu fmt -check` (OpenTofu built from source by scripts/build-k8s-apiserver.sh) finds nothing to change."""
    from tests.deploy.kube import BUILD_HINT, K8S_CACHE

    tofu = K8S_CACHE / "bin" / "tofu"
    assert tofu.exists(), f"{tofu} is missing: {BUILD_HINT}"
    config = tmp_path / "tofurc"
    config.write_text("")
    done = subprocess.run(
        [str(tofu), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"TF_CLI_CONFIG_FILE": str(config), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
