"""The README's commands, read as data: every command of its ```sh blocks and every inline
``pipeline-exporter ... --flag`` span, as argument lists in the order the README gives them."""

from __future__ import annotations

import re
import shlex

from tests.support.paths import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def shell_blocks() -> list[str]:
    """The text of every ```sh block."""
    return re.findall(r"```sh\n(.*?)```", README, flags=re.S)


def command_lines() -> list[list[str]]:
    """Continuations joined, comments dropped, ``&&`` split; synopses with ``[...]`` and mere
    mentions (no flag) left out."""
    found: list[tuple[int, list[str]]] = []
    for block in re.finditer(r"```sh\n(.*?)```", README, flags=re.S):
        for n, line in enumerate(block.group(1).replace("\\\n", " ").splitlines()):
            for command in split_and(shlex.split(line, comments=True)):
                found.append((block.start() + n, command))
    for span in re.finditer(r"`(pipeline-exporter [^`]+)`", README):
        if "[" not in span.group(1) and " --" in span.group(1):
            found.extend((span.start(), command) for command in split_and(shlex.split(span.group(1))))
    return [command for _, command in sorted(found, key=lambda item: item[0]) if command]


def split_and(words: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for word in words:
        if word == "&&":
            out.append([])
        else:
            out[-1].append(word)
    return out
