"""`python -m bench house [TREE]`: issue 17's figures for a checkout (default: this one).

The largest files and classes under `migrator/` (the sandbox aside) and the longest CLI commands,
counted by an ast walk: a class from its `class` line to its last, a command from its `def` line
(its options included, as the issue counts them) and its body alone."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(tree: Path) -> dict[str, list[tuple]]:
    files, classes, commands = [], [], []
    for path in sorted((tree / "migrator").rglob("*.py")):
        if "sandbox" in path.parts:
            continue
        name = str(path.relative_to(tree))
        source = path.read_text()
        files.append((source.count("\n"), name))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                methods = sum(isinstance(b, ast.FunctionDef | ast.AsyncFunctionDef) for b in node.body)
                classes.append((node.end_lineno - node.lineno + 1, methods, node.name, name))
            is_command = any("command" in ast.unparse(d) for d in getattr(node, "decorator_list", ()))
            if "cli" in path.parts and isinstance(node, ast.FunctionDef) and is_command:
                whole = node.end_lineno - node.lineno + 1
                commands.append((whole, node.end_lineno - node.body[0].lineno + 1, node.name, name))
    return {
        k: sorted(v, reverse=True)[:4]
        for k, v in (("files", files), ("classes", classes), ("commands", commands))
    }


def main(argv: list[str]) -> int:
    tree = Path(argv[0]).resolve() if argv else ROOT
    figures = measure(tree)
    for lines, name in figures["files"]:
        print(f"file     {lines:5} lines  {name}")
    for lines, methods, cls, name in figures["classes"]:
        print(f"class    {lines:5} lines  {methods:3} methods  {cls} ({name})")
    for whole, body, command, name in figures["commands"]:
        print(f"command  {whole:5} lines  ({body} of body)  {command} ({name})")
    return 0
