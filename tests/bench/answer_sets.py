"""The dev questions cut into a tuning half and a check half, and a realistic corpus subset for ``eval answers``.

The responder's settings (answer mode, the stitch thresholds) are tuned on one
half of ``dev_questions.jsonl`` and checked on the other. The halves are fixed
by a hash of each question's id, so they never depend on the file's order or on
a random seed. The full noisy corpus takes hours to ingest on 2 cores; the
subset keeps what makes answering hard (the gold pages among other pages of the
same sections, and noise files) at a size a 2-core machine ingests in minutes.

    python -m tests.bench.answer_sets split --out DIR          # DIR/tune.jsonl, DIR/check.jsonl
    python -m tests.bench.answer_sets corpus --out DIR [--other 150] [--noise 25]   # copies
    python -m tests.bench.answer_sets scores --questions DIR/tune.jsonl [--tenant T]

``scores`` asks each question through the edge (caches bypassed) and prints the
stitch responder's best question-sentence similarity beside the question's kind:
the figures the decline threshold (``StitchParams.min_similarity``) is set from.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import shutil
from pathlib import Path

import ragmesh_client
from tests.bench import DEV_QUESTIONS, SHARED

CORPUS = SHARED / "corpus"
#: Sections of the k8s docs the questions are about (reference pages are mostly generated API text).
SECTIONS = ("concepts", "tasks", "tutorials", "setup")
#: Noise formats parsed quickly enough for a subset; PDFs and DOCX are in the full corpus runs.
NOISE_SUFFIXES = (".txt", ".html", ".htm", ".docx", ".pdf")
#: Largest noise file taken into the subset, in bytes.
NOISE_MAX_BYTES = 400_000


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def half(question_id: str) -> str:
    """``tune`` or ``check``: the half a question belongs to, by the first byte of its id's SHA-256."""
    return "tune" if int(_digest(question_id)[:2], 16) % 2 == 0 else "check"


def split(questions: Path, out: Path) -> dict[str, int]:
    """Writes ``out/tune.jsonl`` and ``out/check.jsonl``; returns how many questions each holds."""
    rows: dict[str, list[str]] = {"tune": [], "check": []}
    for line in questions.read_text().splitlines():
        if line.strip():
            rows[half(json.loads(line)["id"])].append(line)
    out.mkdir(parents=True, exist_ok=True)
    for name, lines in rows.items():
        (out / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return {name: len(lines) for name, lines in rows.items()}


def corpus(questions: Path, out: Path, other: int, noise: int) -> dict[str, int]:
    """Copies the gold pages, ``other`` further pages of the same sections and ``noise`` noise files into ``out``."""
    docs = CORPUS / "k8s-docs"
    gold = sorted(
        {p for line in questions.read_text().splitlines() if line.strip() for p in json.loads(line)["gold_paths"]}
    )
    pool = sorted(str(p.relative_to(docs)) for p in docs.rglob("*.md") if p.relative_to(docs).parts[0] in SECTIONS)
    others = sorted((p for p in pool if p not in gold), key=_digest)[:other]
    noise_root = CORPUS / "noise"
    noise_pool = sorted(
        str(p.relative_to(noise_root))
        for p in noise_root.rglob("*")
        if p.is_file() and p.suffix.lower() in NOISE_SUFFIXES and p.stat().st_size <= NOISE_MAX_BYTES
    )
    picked_noise = sorted(noise_pool, key=_digest)[:noise]
    for rel in [*gold, *others]:
        target = out / "k8s-docs" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(docs / rel, target)
    for rel in picked_noise:
        target = out / "noise" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(noise_root / rel, target)
    return {"gold": len(gold), "other": len(others), "noise": len(picked_noise)}


def _rows(questions: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]


_BEST_RE = re.compile(r"best similarity (\d+\.\d+)")


async def scores(rows: list[dict[str, str]], tenant: str) -> list[dict[str, object]]:
    """Per question: its id, kind, the best sentence similarity the responder saw, and whether it answered."""
    from mesh.cli.common import dev_token
    from mesh.settings import MeshSettings

    token = dev_token(tenant)
    out: list[dict[str, object]] = []
    async with ragmesh_client.AsyncClient(MeshSettings.from_env().edge_addr, lambda: token) as sdk:
        for row in rows:
            best: float | None = None
            answered = False
            async for event in sdk.ask(row["question"], bypass_cache=True, timeout_s=300):
                if isinstance(event, ragmesh_client.events.Step):
                    found = _BEST_RE.search(event.detail)
                    if found and "sentence" in event.detail:
                        best = float(found.group(1))
                elif isinstance(event, ragmesh_client.events.Final):
                    answered = event.answered_from_documents
            out.append({"id": row["id"], "kind": row["kind"], "best_similarity": best, "answered": answered})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("split", "corpus", "scores"))
    parser.add_argument("--out", type=Path, default=Path(".bench/answer_sets"))
    parser.add_argument("--tenant", default="default", help="tenant whose corpus scores asks (default: default)")
    parser.add_argument("--questions", type=Path, default=DEV_QUESTIONS)
    parser.add_argument("--other", type=int, default=150, help="k8s-docs pages beside the gold pages")
    parser.add_argument("--noise", type=int, default=25, help="noise files")
    args = parser.parse_args()
    if args.what == "split":
        print(json.dumps(split(args.questions, args.out)))
    elif args.what == "corpus":
        print(json.dumps(corpus(args.questions, args.out, args.other, args.noise)))
    else:
        for row in asyncio.run(scores(_rows(args.questions), args.tenant)):
            print(json.dumps(row))


if __name__ == "__main__":
    main()
