"""Render Neo4j's configuration and JVM command line for the local stack.

The server runs straight from the Maven Central jars (no tarball, no launcher
script): ``java <options> -cp <lib>/* org.neo4j.server.CommunityEntryPoint``.
So the JVM options the launcher script would add from neo4j.conf are given
here, and the heap settings in neo4j.conf are only informative.
"""

from __future__ import annotations

from pathlib import Path

from mesh.stack.config import StackConfig
from mesh.stack.layout import StackLayout

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"


def conf_dir(layout: StackLayout) -> Path:
    return layout.part_dir("neo4j") / "conf"


def neo4j_home(layout: StackLayout) -> Path:
    return layout.part_dir("neo4j")


def render_neo4j_conf(config: StackConfig, layout: StackLayout) -> str:
    """neo4j.conf for ``config`` (strict validation stays on, so every key here must exist in 5.x)."""
    home = neo4j_home(layout)
    bolt = f"{config.host}:{config.neo4j_bolt_port}"
    http = f"{config.host}:{config.neo4j_http_port}"
    settings = {
        "server.directories.data": layout.data("neo4j"),
        "server.directories.logs": home / "logs",
        "server.directories.run": home / "run",
        "server.directories.plugins": home / "plugins",
        "server.directories.import": home / "import",
        "server.default_listen_address": config.host,
        "server.default_advertised_address": config.host,
        "server.bolt.listen_address": bolt,
        "server.bolt.advertised_address": bolt,
        "server.http.listen_address": http,
        "server.http.advertised_address": http,
        "server.https.enabled": "false",
        # Community edition serves no cluster; without this it would also claim port 7688.
        "dbms.routing.enabled": "false",
        "dbms.security.auth_enabled": "true",
        "server.memory.heap.initial_size": f"{config.neo4j_heap_mb}m",
        "server.memory.heap.max_size": f"{config.neo4j_heap_mb}m",
        "server.memory.pagecache.size": f"{config.neo4j_pagecache_mb}m",
        # Keep shutdown quick: open transactions get 2 s, not 10 s, to finish, and Bolt
        # stops without its two idle 5 s waits (connections, then the Netty quiet period).
        "db.shutdown_transaction_end_timeout": "2s",
        "internal.server.bolt.connection_shutdown_wait_time": "0s",
        "internal.dbms.bolt.netty_server_shutdown_quiet_period": "0",
        "db.tx_log.rotation.retention_policy": "2 days 1G",
        "dbms.usage_report.enabled": "false",
        "client.allow_telemetry": "false",
    }
    lines = ["# Written by `ragmesh up` (mesh.stack.neo4j_config); edits are overwritten on the next start."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def jvm_options(config: StackConfig) -> list[str]:
    """What Neo4j's launcher script would pass to the JVM, sized for a small shared machine."""
    return [
        f"-Xms{config.neo4j_heap_mb}m",
        f"-Xmx{config.neo4j_heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:-OmitStackTraceInFastThrow",
        "-XX:+UnlockExperimentalVMOptions",
        "-XX:+TrustFinalNonStaticFields",
        "-XX:+DisableExplicitGC",
        "-Djdk.nio.maxCachedBufferSize=1024",
        "-Dio.netty.tryReflectionSetAccessible=true",
        "-Djdk.tls.ephemeralDHKeySize=2048",
        "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
        "-Dlog4j2.disable.jmx=true",
        "-Dfile.encoding=UTF-8",
        "--add-opens=java.base/java.nio=ALL-UNNAMED",
        "--add-opens=java.base/java.io=ALL-UNNAMED",
        "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    ]


def server_argv(java: Path, config: StackConfig, layout: StackLayout) -> list[str]:
    """The command that runs the server in the foreground, its user log on stdout (console mode)."""
    return [
        str(java),
        *jvm_options(config),
        "-cp",
        f"{config.neo4j_lib_dir}/*",
        ENTRY_POINT,
        f"--home-dir={neo4j_home(layout)}",
        f"--config-dir={conf_dir(layout)}",
        "--console-mode",
    ]


def set_password_argv(java: Path, config: StackConfig) -> list[str]:
    """neo4j-admin's ``dbms set-initial-password``, run from the same jars before the first start."""
    return [
        str(java),
        "-Xmx128m",
        "-cp",
        f"{config.neo4j_lib_dir}/*",
        ADMIN_TOOL,
        "dbms",
        "set-initial-password",
        config.neo4j_password,
    ]


def neo4j_env(layout: StackLayout) -> dict[str, str]:
    """NEO4J_HOME and NEO4J_CONF, which the admin tool requires."""
    return {"NEO4J_HOME": str(neo4j_home(layout)), "NEO4J_CONF": str(conf_dir(layout))}


def system_database_dir(layout: StackLayout) -> Path:
    """Exists once Neo4j has started on this data dir (and taken the initial password in)."""
    return layout.data("neo4j") / "databases" / "system"
