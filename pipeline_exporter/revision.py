"""The source revision this exporter was built from, for ``pipeline_exporter_build_info{revision}``.

Where it comes from, first found wins: the file ``pipeline_exporter/REVISION`` written at build
time (``git rev-parse HEAD > pipeline_exporter/REVISION`` before ``pip wheel``; it ships as package
data), else the git checkout the package is imported from (an editable install: ``.git`` is read
directly, no git binary is run), else ``unknown``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHA = re.compile(r"^[0-9a-f]{40}$")


@lru_cache(maxsize=1)
def revision() -> str:
    """The 40-hex commit, or ``unknown``."""
    built = HERE / "REVISION"
    try:
        text = built.read_text(encoding="ascii").strip()
        if SHA.match(text):
            return text
    except (OSError, UnicodeDecodeError):
        pass
    try:
        return _from_git(HERE.parent / ".git") or "unknown"
    except (OSError, UnicodeDecodeError):
        return "unknown"


def _from_git(dot_git: Path) -> str | None:
    """HEAD's commit from a ``.git`` folder, or the ``gitdir:`` file of a worktree."""
    if dot_git.is_file():
        pointer = dot_git.read_text(encoding="utf-8").strip()
        if not pointer.startswith("gitdir:"):
            return None
        dot_git = (dot_git.parent / pointer.partition(":")[2].strip()).resolve()
    if not dot_git.is_dir():
        return None
    head = (dot_git / "HEAD").read_text(encoding="utf-8").strip()
    if SHA.match(head):
        return head
    if not head.startswith("ref: "):
        return None
    ref = head[5:]
    common = dot_git
    commondir = dot_git / "commondir"  # a worktree keeps its refs in the main repository
    if commondir.is_file():
        common = (dot_git / commondir.read_text(encoding="utf-8").strip()).resolve()
    for folder in (dot_git, common):
        loose = folder / ref
        if loose.is_file():
            text = loose.read_text(encoding="utf-8").strip()
            return text if SHA.match(text) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and SHA.match(sha):
                return sha
    return None
