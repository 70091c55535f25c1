"""What an unmodified TLX program asks for, read from its source without running it (for ``tlx-gan exec``).

TLX programs choose their backend in their own first lines, before ``import tensorlayerx`` (the mnist_gan
tutorial: ``os.environ['TL_BACKEND'] = 'paddle'``). ``exec`` must know that choice before the program runs,
to refuse a backend that is not installed with one line instead of an ImportError deep inside TLX.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tlx_gan.errors import UserError

BACKEND_VARIABLE = "TL_BACKEND"


@dataclass(frozen=True)
class BackendLine:
    """A program's own choice of backend: ``os.environ[...] = name`` (``forced``) or ``setdefault``."""

    name: str
    line: int
    forced: bool  # an assignment overrides TL_BACKEND from the environment; setdefault does not


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ`` (``from os import environ``)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def backend_line(program: Path) -> BackendLine | None:
    """The first (by line) ``TL_BACKEND`` choice in ``program``'s source, if it makes one."""
    try:
        tree = ast.parse(program.read_text(encoding="utf-8", errors="replace"), str(program))
    except SyntaxError as exc:
        raise UserError(f"{program}: not a Python program (line {exc.lineno}: {exc.msg})") from exc
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):  # os.environ['TL_BACKEND'] = 'paddle'
            found += [BackendLine(_text(node.value).strip(), node.lineno, forced=True) for target in node.targets
                      if isinstance(target, ast.Subscript) and _is_environ(target.value)
                      and _text(target.slice) == BACKEND_VARIABLE and _text(node.value)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_environ(node.func.value)
              and node.func.attr == "setdefault" and len(node.args) == 2
              and _text(node.args[0]) == BACKEND_VARIABLE and _text(node.args[1])):
            found.append(BackendLine(_text(node.args[1]).strip(), node.lineno, forced=False))
    return min(found, key=lambda choice: choice.line) if found else None
