"""``ragmesh bench capacity``: the capacity model of docs/CAPACITY.md, computed from measured bench JSON.

Reads the records that ``ragmesh bench ingest``, ``retrieval`` and ``inference`` wrote
(``--results``, default docs/capacity/results: ``ingest.json``, ``retrieval.json``,
``inference.json``) and the assumptions file (``--assumptions``, default
docs/capacity/assumptions.yaml: workload, instance prices with their date, GPU
estimates), and derives node counts and monthly cost for the workload there
(10 M documents, 1,000 questions/s). Measures nothing itself: every figure it
writes carries ``from``, the measured JSON path, the assumption key or the
formula it came from, and GPU-derived figures are marked ``estimate``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import yaml

from tests.bench.machine import machine

_REPO = Path(__file__).resolve().parents[2]
_RESULTS = _REPO / "docs" / "capacity" / "results"
_ASSUMPTIONS = _REPO / "docs" / "capacity" / "assumptions.yaml"


def _figure(value: float, source: str, *, estimate: bool = False, digits: int = 2) -> dict[str, Any]:
    entry: dict[str, Any] = {"value": round(value, digits), "from": source}
    if estimate:
        entry["estimate"] = True
    return entry


def _measured(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    if not path.is_file():
        return None
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def _unmeasured(assumptions: dict[str, Any], key: str, record: str) -> dict[str, Any]:
    reason = " ".join(str(assumptions.get("unmeasured_reason", "not measured")).split())
    return _figure(
        float(assumptions["unmeasured"][key]),
        f"assumptions.yaml: unmeasured.{key} ({record}.json missing: {reason})",
        estimate=True,
    )


def _cores(figures: dict[str, Any]) -> int:
    machine = figures.get("machine", {})
    return int(machine.get("physical_cores") or machine.get("cpus_usable") or machine.get("cpus") or 1)


def model(results: Path, assumptions: dict[str, Any]) -> dict[str, Any]:
    """Every derived figure, each with where it came from."""
    work, prices, nodes, gpu, index = (
        assumptions["workload"],
        assumptions["prices_usd_per_h"],
        assumptions["nodes"],
        assumptions["gpu_estimates"],
        assumptions["index"],
    )
    hours = float(assumptions["hours_per_month"])
    util = float(work["target_utilisation"])
    out: dict[str, Any] = {"as_of": assumptions["as_of"], "measured": {}, "derived": {}, "nodes": {}, "cost": {}}
    m, d = out["measured"], out["derived"]

    ingest_record = _measured(results, "ingest")
    if ingest_record is None:
        m["ingest_chunks_per_s_per_core"] = _unmeasured(assumptions, "ingest_chunks_per_s_per_core", "ingest")
        m["chunks_per_document"] = _unmeasured(assumptions, "chunks_per_document", "ingest")
    else:
        ingest = ingest_record["figures"]
        e2e = ingest["end_to_end"]
        ingest_cores = _cores(ingest)
        m["ingest_chunks_per_s"] = _figure(e2e["chunks_per_s"], "ingest.json: figures.end_to_end.chunks_per_s")
        m["ingest_cores"] = _figure(ingest_cores, "ingest.json: figures.machine.physical_cores", digits=0)
        m["ingest_chunks_per_s_per_core"] = _figure(
            e2e["chunks_per_s"] / ingest_cores, "end_to_end.chunks_per_s / machine.physical_cores"
        )
        m["chunks_per_document"] = _figure(
            e2e["chunks"] / max(1, e2e["documents_ingested"]), "ingest.json: end_to_end.chunks / documents_ingested"
        )
        if isinstance(ingest.get("embedding_only"), dict):
            m["cpu_embedding_only_chunks_per_s_per_core"] = _figure(
                ingest["embedding_only"]["chunks_per_s"] / ingest_cores,
                "ingest.json: embedding_only.chunks_per_s / machine.physical_cores (all-MiniLM-L6-v2 on CPU)",
            )

    retrieval_record = _measured(results, "retrieval")
    if retrieval_record is None:
        m["search_rps_per_core"] = _unmeasured(assumptions, "search_rps_per_core", "retrieval")
        m["search_p50_ms_through_envoy"] = _unmeasured(assumptions, "search_p50_ms_through_envoy", "retrieval")
    else:
        retrieval = retrieval_record["figures"]
        search = retrieval["throughput_through_envoy"]["search"]
        search_cores = _cores(retrieval)
        m["search_rps"] = _figure(search["rps"], "retrieval.json: figures.throughput_through_envoy.search.rps")
        m["search_rps_per_core"] = _figure(
            search["rps"] / search_cores, "search.rps / machine.physical_cores (the whole stack shared those cores)"
        )
        m["search_p50_ms_through_envoy"] = _figure(
            retrieval["latency"]["through_envoy"]["p50_ms"], "retrieval.json: figures.latency.through_envoy.p50_ms"
        )

    inference_record = _measured(results, "inference")
    if inference_record is None:
        m["cpu_llm_replica"] = {"model": "not measured (inference.json missing)"}
    else:
        inference = inference_record["figures"]
        hosting = "inprocess" if "inprocess" in inference["generation"] else next(iter(inference["generation"]))
        rag = inference["generation"][hosting]["rag_prompt"]
        m["cpu_llm_replica"] = {
            "model": "gemma3-270m (llama.cpp, CPU), the local profile's LLM",
            "ttft_ms_rag_prompt": _figure(
                rag["grpc_ttft_ms"], f"inference.json: generation.{hosting}.rag_prompt.grpc_ttft_ms"
            ),
            "rag_prompt_tokens": _figure(
                rag["prompt_tokens"], f"inference.json: generation.{hosting}.rag_prompt.prompt_tokens"
            ),
            "decode_tokens_per_s": _figure(
                rag["grpc_decode_tokens_per_s"],
                f"inference.json: generation.{hosting}.rag_prompt.grpc_decode_tokens_per_s",
            ),
            "embed_sentences_per_s": _figure(
                inference["embedding"][hosting]["grpc_concurrency_1_sentences_per_s"],
                f"inference.json: embedding.{hosting}.grpc_concurrency_1_sentences_per_s",
            ),
        }

    # --- ingest: 10 M documents within the window
    chunks = work["documents"] * m["chunks_per_document"]["value"]
    ingest_est = bool(m["chunks_per_document"].get("estimate") or m["ingest_chunks_per_s_per_core"].get("estimate"))
    search_est = bool(m["search_rps_per_core"].get("estimate"))
    d["total_chunks"] = _figure(
        chunks,
        "workload.documents x chunks_per_document",
        digits=0,
        estimate=bool(m["chunks_per_document"].get("estimate")),
    )
    window_s = work["ingest_window_h"] * 3600.0
    parse_cores = chunks / window_s / m["ingest_chunks_per_s_per_core"]["value"] / util
    d["parse_cores"] = _figure(
        parse_cores,
        "total_chunks / (ingest_window_h x 3600) / ingest_chunks_per_s_per_core / target_utilisation "
        "(conservative: the measured cores also embedded)",
        estimate=ingest_est,
    )
    embed_gpus = chunks / window_s / gpu["bge_m3_chunks_per_s_per_gpu"] / util
    d["ingest_embed_gpus"] = _figure(
        embed_gpus, "total_chunks / window / gpu_estimates.bge_m3_chunks_per_s_per_gpu / utilisation", estimate=True
    )

    # --- questions: 1,000/s
    qps = work["questions_per_s"]
    searches = qps * work["searches_per_question"]
    d["searches_per_s"] = _figure(searches, "questions_per_s x searches_per_question", digits=0)
    search_cores = searches / m["search_rps_per_core"]["value"] / util
    d["search_cores"] = _figure(
        search_cores,
        "searches_per_s / search_rps_per_core / utilisation (measured with the query embedding on the same "
        "CPU cores; in production it moves to the GPU, so this is conservative)",
        estimate=search_est,
    )
    decode_needed = qps * work["answer_tokens"]
    prefill_needed = qps * work["prompt_tokens"]
    d["llm_70b_decode_tokens_per_s_needed"] = _figure(decode_needed, "questions_per_s x answer_tokens", digits=0)
    d["llm_70b_prefill_tokens_per_s_needed"] = _figure(prefill_needed, "questions_per_s x prompt_tokens", digits=0)
    llm_replicas = (
        max(
            decode_needed / gpu["llm_70b_decode_tokens_per_s_per_replica"],
            prefill_needed / gpu["llm_70b_prefill_tokens_per_s_per_replica"],
        )
        / util
    )
    d["llm_70b_replicas"] = _figure(
        llm_replicas,
        "max(decode_needed / est. decode per replica, prefill_needed / est. prefill) / utilisation",
        estimate=True,
    )
    rewrite = qps * work["rewrite_calls_per_question"] * work["rewrite_tokens_per_call"]
    d["llm_8b_gpus"] = _figure(
        rewrite / gpu["llm_8b_decode_tokens_per_s_per_replica"] / util,
        "questions_per_s x rewrite_calls x rewrite_tokens / est. 8B decode per GPU / utilisation",
        estimate=True,
    )
    d["query_embed_and_rerank_gpus"] = _figure(
        (
            searches / gpu["bge_m3_queries_per_s_per_gpu"]
            + searches * gpu["rerank_pairs_per_search"] / gpu["reranker_pairs_per_s_per_gpu"]
        )
        / util,
        "(searches / est. bge-m3 queries per GPU + searches x rerank_pairs / est. reranker pairs per GPU)"
        " / utilisation",
        estimate=True,
    )

    # --- index memory
    per_point = index["dense_dimensions"] * index["bytes_per_dimension"] + index["hnsw_bytes_per_point"]
    per_point += index["sparse_and_payload_bytes_per_point"]
    gib = chunks * per_point / 2**30 * nodes["qdrant_replicas"]
    d["index_gib_with_replicas"] = _figure(
        gib, "total_chunks x (dense dims x 4 B + est. HNSW + est. sparse/payload) x qdrant_replicas", estimate=True
    )

    # --- nodes and cost
    cores_per_node = nodes["cpu_cores_per_node"]
    n = out["nodes"]
    n["cpu_search_nodes"] = _figure(
        math.ceil(search_cores / cores_per_node),
        "ceil(search_cores / cpu_cores_per_node)",
        digits=0,
        estimate=search_est,
    )
    n["cpu_parse_nodes_during_backfill"] = _figure(
        math.ceil(parse_cores / cores_per_node), "ceil(parse_cores / cpu_cores_per_node)", digits=0, estimate=ingest_est
    )
    n["qdrant_memory_nodes"] = _figure(
        math.ceil(gib / (nodes["memory_gib_per_node"] * util)),
        "ceil(index GiB / (node GiB x utilisation))",
        digits=0,
        estimate=True,
    )
    n["gpu_4x_llm_70b_nodes"] = _figure(math.ceil(llm_replicas), "ceil(llm_70b_replicas)", digits=0, estimate=True)
    n["gpu_1x_nodes_serving"] = _figure(
        math.ceil(d["llm_8b_gpus"]["value"] + d["query_embed_and_rerank_gpus"]["value"]),
        "ceil(llm_8b_gpus + query_embed_and_rerank_gpus)",
        digits=0,
        estimate=True,
    )
    n["gpu_1x_nodes_during_backfill"] = _figure(
        math.ceil(embed_gpus), "ceil(ingest_embed_gpus)", digits=0, estimate=True
    )

    c = out["cost"]
    price = {k: float(v) for k, v in prices.items()}
    steady = {
        "cpu_search": n["cpu_search_nodes"]["value"] * price[nodes["cpu_instance"]],
        "qdrant_memory": n["qdrant_memory_nodes"]["value"] * price[nodes["memory_instance"]],
        "gpu_4x_llm": n["gpu_4x_llm_70b_nodes"]["value"] * price[nodes["gpu_4x_instance"]],
        "gpu_1x_serving": n["gpu_1x_nodes_serving"]["value"] * price[nodes["gpu_1x_instance"]],
    }
    for key, per_hour in steady.items():
        c[f"{key}_usd_per_month"] = _figure(
            per_hour * hours,
            f"nodes x prices_usd_per_h x hours_per_month ({assumptions['as_of']} prices)",
            estimate=key != "cpu_search" or search_est,
            digits=0,
        )
    c["steady_usd_per_month"] = _figure(
        sum(steady.values()) * hours, "sum of the steady lines", estimate=True, digits=0
    )
    c["backfill_usd_once"] = _figure(
        (
            n["cpu_parse_nodes_during_backfill"]["value"] * price[nodes["cpu_instance"]]
            + n["gpu_1x_nodes_during_backfill"]["value"] * price[nodes["gpu_1x_instance"]]
        )
        * work["ingest_window_h"],
        "(parse nodes x CPU price + embed GPUs x gpu_1x price) x ingest_window_h",
        estimate=True,
        digits=0,
    )
    return out


_BEGIN = "<!-- capacity:begin (written by ragmesh bench capacity --doc; do not edit by hand) -->"
_END = "<!-- capacity:end -->"


def _rows(section: dict[str, Any], prefix: str = "") -> list[str]:
    rows: list[str] = []
    for key, entry in section.items():
        if isinstance(entry, dict) and "value" in entry:
            value = entry["value"]
            shown = f"{value:,.0f}" if isinstance(value, (int, float)) and abs(value) >= 100 else f"{value:,}"
            mark = " (estimate)" if entry.get("estimate") else ""
            rows.append(f"| {prefix}{key} | {shown}{mark} | {entry['from']} |")
        elif isinstance(entry, dict):
            rows.extend(_rows({k: v for k, v in entry.items() if k != "model"}, f"{prefix}{key}."))
    return rows


def render(figures: dict[str, Any]) -> str:
    """The doc's tables: every figure with where it came from."""
    parts = [_BEGIN, ""]
    titles = {
        "measured": "Measured (per core: the bench machine's physical cores)",
        "derived": "Derived workload",
        "nodes": "Nodes",
        "cost": f"Cost (USD, prices as of {figures['as_of']})",
    }
    for key, title in titles.items():
        parts += [f"#### {title}", "", "| figure | value | from |", "|---|---|---|", *_rows(figures[key]), ""]
    parts.append(_END)
    return "\n".join(parts)


def write_doc(doc: Path, figures: dict[str, Any]) -> None:
    """Replaces the tables between the markers in ``doc`` with ``render(figures)``."""
    text = doc.read_text()
    start, end = text.index(_BEGIN), text.index(_END) + len(_END)
    doc.write_text(text[:start] + render(figures) + text[end:])


def run(argv: list[str]) -> dict[str, Any]:
    """Computes the model; ``ragmesh bench capacity --out docs/capacity/results/capacity.json`` saves it."""
    parser = argparse.ArgumentParser(prog="ragmesh bench capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=_RESULTS, help="folder with ingest/retrieval/inference.json")
    parser.add_argument("--assumptions", type=Path, default=_ASSUMPTIONS, help="workload, prices, GPU estimates")
    parser.add_argument("--doc", type=Path, help="also rewrite the tables between the capacity markers of this file")
    args = parser.parse_args(argv)
    assumptions = yaml.safe_load(args.assumptions.read_text())
    figures = model(args.results, assumptions)
    figures["inputs"] = {
        "results": str(args.results.relative_to(_REPO) if args.results.is_relative_to(_REPO) else args.results),
        "assumptions": str(
            args.assumptions.relative_to(_REPO) if args.assumptions.is_relative_to(_REPO) else args.assumptions
        ),
    }
    # The machine is the one the measured records name, not the one computing this.
    figures["machine"] = {"note": "derived only; see each measured record's machine", "computed_on": machine()}
    if args.doc is not None:
        write_doc(args.doc, figures)
    return figures
