"""The corpus summary against an ideal client's walk, real file bytes, a big lazy corpus, and the CLI."""

from __future__ import annotations

import ast
import os
import signal
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sandbox_support import Raw, walk
from typer.testing import CliRunner

from migrator.cli import app, main
from migrator.sandbox import SandboxConfig, SandboxServer, media, thread_ids

THREADS, SEED = 24, 17


@pytest.fixture(scope="module")
def srv() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED)) as server:
        yield server


def _referenced(message: dict[str, Any]) -> set[str]:
    ids = {a["file_id"] for a in message["attachments"] or []}
    for part in message["content"]:
        if part["type"] == "image_file":
            ids.add(part["image_file"]["file_id"])
        if part["type"] == "text":
            for ann in part["text"]["annotations"]:
                ids.add((ann.get("file_citation") or ann.get("file_path"))["file_id"])
    return ids


def _ideal_walk(raw: Raw) -> dict[str, Any]:
    """What the DESIGN's ideal client requests: limit=100 and order=asc everywhere, nothing twice."""
    seen: dict[str, Any] = {"messages": 0, "runs": 0, "run_steps": 0, "tool_less_runs": []}
    seen["assistants"] = len(walk(raw, "/v1/assistants")[0])
    stores, _ = walk(raw, "/v1/vector_stores")
    seen["vector_stores"] = len(stores)
    holder: dict[str, str] = {}  # file id -> the first store that holds it
    vs_files = 0
    for vs in stores:
        files, _ = walk(raw, f"/v1/vector_stores/{vs['id']}/files")
        vs_files += len(files)
        for f in files:
            holder.setdefault(f["id"], vs["id"])
    seen["vector_store_files"] = vs_files
    referenced = set(holder)
    for tid in thread_ids(THREADS, SEED):
        assert raw.get(f"/v1/threads/{tid}")[0] == 200
        messages, _ = walk(raw, f"/v1/threads/{tid}/messages")
        seen["messages"] += len(messages)
        for m in messages:
            referenced |= _referenced(m)
        runs, _ = walk(raw, f"/v1/threads/{tid}/runs")
        seen["runs"] += len(runs)
        for run in runs:
            if not run["tools"]:
                seen["tool_less_runs"].append((tid, run["id"]))
                continue
            steps, _ = walk(raw, f"/v1/threads/{tid}/runs/{run['id']}/steps")
            seen["run_steps"] += len(steps)
            for s in steps:
                for call in s["step_details"].get("tool_calls", []):
                    for out in call.get("code_interpreter", {}).get("outputs", []):
                        if out["type"] == "image":
                            referenced.add(out["image"]["file_id"])
    for fid in sorted(referenced):
        assert raw.get(f"/v1/files/{fid}")[0] == 200
        status, _, _ = raw.request("GET", f"/v1/files/{fid}/content")
        if status == 400 and fid in holder:
            page: dict[str, Any] = {"next_page": None}
            while True:
                query = {"page": page["next_page"]} if page["next_page"] else {}
                status, page = raw.get(f"/v1/vector_stores/{holder[fid]}/files/{fid}/content", **query)
                if not page["has_more"]:
                    break
    seen["files"] = len(referenced)
    return seen


def test_minimum_requests_are_what_an_ideal_walk_makes(srv):
    summary = srv.corpus_summary()
    raw = Raw(srv.port)
    srv.reset_stats()
    seen = _ideal_walk(raw)
    stats = srv.stats()
    assert stats["by_route"] == summary["minimum_requests"]["by_route"]
    assert stats["total"] == summary["minimum_requests"]["total"]
    steps_total = seen["run_steps"] + sum(
        len(walk(raw, f"/v1/threads/{tid}/runs/{rid}/steps")[0]) for tid, rid in seen["tool_less_runs"]
    )
    assert seen["tool_less_runs"] and steps_total == seen["run_steps"] + len(seen["tool_less_runs"])
    counts = {
        k: seen[k]
        for k in (
            "assistants",
            "messages",
            "runs",
            "run_steps",
            "vector_stores",
            "vector_store_files",
            "files",
        )
    }
    assert summary["counts"] == {**counts, "threads": THREADS}
    assert summary["run_steps_total"] == steps_total
    raw.close()


def test_python_api_and_control_plane_agree(srv):
    raw = Raw(srv.port)
    assert raw.get("/_sandbox/corpus") == (200, srv.corpus_summary())
    raw.get("/v1/assistants")
    status, stats = raw.get("/_sandbox/stats")
    assert stats["by_route"] == srv.stats()["by_route"] and stats["total"] == srv.stats()["total"]
    status, knobs = raw.post("/_sandbox/config", {"latency_ms": 1})
    assert status == 200 and knobs["latency_ms"] == 1 and srv.config.latency_ms == 1
    assert srv.configure(latency_ms=0)["latency_ms"] == 0
    assert raw.post("/_sandbox/reset", {})[0] == 200 and srv.stats()["total"] == 0
    raw.close()


def _png_pixels(data: bytes) -> int:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height = size
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)
    return width * height


def _jpeg_gray(data: bytes) -> int:
    """Decode the sandbox's one-block baseline JPEG back to its grey level."""
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    pos, markers, tables = 2, [], {}
    while True:
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        markers.append(marker)
        if marker == 0xC4:
            tables[data[pos + 4]] = data[pos + 21]  # the only symbol of a one-code table
        if marker == 0xDA:
            scan = data[pos + 2 + length : -2]
            break
        pos += 2 + length
    assert {0xE0, 0xDB, 0xC0, 0xC4, 0xDA} <= set(markers)
    bits = "".join(format(b, "08b") for b in scan.replace(b"\xff\x00", b"\xff"))
    category = tables[0x00]
    assert bits[0] == "0"  # the DC code
    raw = int(bits[1 : 1 + category], 2) if category else 0
    dc = raw if not category or bits[1] == "1" else raw - (1 << category) + 1
    assert bits[1 + category] == "0"  # end of block
    return dc // 8 + 128


def test_the_sandbox_imports_nothing_of_the_client():
    """The hard rule: stdlib and orjson only, nothing of `migrator` outside `migrator.sandbox`."""
    allowed = set(sys.stdlib_module_names) | {"orjson", "migrator"}
    for path in Path(media.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] in allowed, (path.name, name)
                assert not name.startswith("migrator") or name.startswith("migrator.sandbox"), (
                    path.name,
                    name,
                )


def test_images_are_real():
    assert _png_pixels(media.png(13, 7, (1, 2, 3))) == 91
    for gray in (0, 1, 100, 127, 128, 129, 200, 255):
        assert _jpeg_gray(media.jpeg(gray, comment="x")) == gray


def test_a_big_corpus_is_lazy():
    with SandboxServer(SandboxConfig(threads=20_000, seed=2)) as big:
        ids = thread_ids(20_000, 2)
        raw = Raw(big.port)
        for tid in ids[-300:]:
            assert raw.get(f"/v1/threads/{tid}/messages", limit=100)[0] == 200
        assert len(big.app.corpus._cache) <= 256  # an LRU, not the corpus (speed is bench's business)
        raw.close()


def test_cli_ids_and_bad_values(capsys: pytest.CaptureFixture[str]):
    result = CliRunner().invoke(app, ["sandbox", "ids", "--threads", "4", "--seed", "9"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == thread_ids(4, 9)
    bad = (
        ["--fault-rate", "1.5"],
        ["--drop-rate", "-0.2"],
        ["--threads", "-1"],
        ["--fault-rate", "0.6", "--drop-rate", "0.6"],
        ["--rps-limit", "0"],
    )
    for args in bad:
        assert main(["sandbox", "serve", "--port", "0", *args]) == 2, args
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err


def test_cli_serves_until_interrupted(tmp_path: Path):
    ids = tmp_path / "ids.txt"
    code = "import sys; from migrator.cli import main; sys.exit(main(sys.argv[1:]))"
    args = [
        "sandbox",
        "serve",
        "--port",
        "0",
        "--threads",
        "5",
        "--seed",
        "4",
        "--ids-out",
        str(ids),
        "--rps-limit",
        "100",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        base_url = line.split()[2]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1"), line
        port = int(base_url.split(":")[2].split("/")[0])
        status, _, _ = Raw(port).request("GET", f"/v1/threads/{thread_ids(5, 4)[0]}")
        assert status == 200
        assert ids.read_text().split() == thread_ids(5, 4)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
