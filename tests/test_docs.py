"""The documentation holds together: README.md and docs/*.md.

Checked, with no network: every relative link points at a file of the repository (and, for a
Markdown file, at one of its headings when it names an anchor); the README stays a short front
door; nothing refers to files outside the repository (a user's clone has only the repository);
every page under docs/ can be reached from the README. The last test feeds each check a broken
example, so none of them can pass vacuously.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 400
#: names of files that live outside the repository; a clone does not have them
FORBIDDEN = ("SPEC.md", "PANACEA_API.md", "../shared", "shared/")
EXTERNAL = ("http://", "https://", "mailto:")

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
#: [text](target) or ![alt](target), with an optional "title"; target may be <...>
_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_MD_LINK_TEXT = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def doc_files(root: Path) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def strip_code(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans (their brackets are not links)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def links(text: str) -> Iterator[str]:
    """Every Markdown link target of ``text``, outside code."""
    for match in _LINK.finditer(strip_code(text)):
        yield match.group(1).strip("<>")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: the rendered text lowercased, punctuation dropped
    (hyphens, underscores and spaces kept), spaces turned into hyphens."""
    text = _MD_LINK_TEXT.sub(r"\1", heading).replace("`", "")
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in "-_ ")
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text; a repeated heading gets ``-1``, ``-2`` ..."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for match in _HEADING.finditer(_FENCE.sub("", text)):
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def link_problems(root: Path, page: Path) -> list[str]:
    """Relative links of ``page`` that lead nowhere: a missing file, a file outside the
    repository, or an anchor that is not a heading of the Markdown file it names."""
    problems = []
    name = page.relative_to(root)
    for target in links(page.read_text(encoding="utf-8")):
        if target.startswith(EXTERNAL):
            continue
        path_part, _, anchor = target.partition("#")
        path_part, anchor = unquote(path_part), unquote(anchor)
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.is_relative_to(root.resolve()):
            problems.append(f"{name}: {target} points outside the repository")
        elif not dest.exists():
            problems.append(f"{name}: {target} does not exist")
        elif (
            anchor
            and dest.suffix == ".md"
            and dest.is_file()
            and anchor not in anchors(dest.read_text(encoding="utf-8"))
        ):
            problems.append(f"{name}: {target} names no heading of {dest.name}")
    return problems


def forbidden_mentions(root: Path, page: Path) -> list[str]:
    """Mentions of files that exist only outside the repository (code blocks included)."""
    problems = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        for word in FORBIDDEN:
            if word in line:
                problems.append(f"{page.relative_to(root)}:{number}: mentions {word!r}")
    return problems


def unlinked_pages(root: Path) -> list[str]:
    """Pages under docs/ that README.md does not link to."""
    readme = root / "README.md"
    linked = set()
    for target in links(readme.read_text(encoding="utf-8")):
        if not target.startswith(EXTERNAL):
            path_part = unquote(target.partition("#")[0])
            if path_part:
                linked.add((root / path_part).resolve())
    return [
        str(page.relative_to(root))
        for page in sorted((root / "docs").glob("*.md"))
        if page.resolve() not in linked
    ]


def readme_line_count(root: Path) -> int:
    return len((root / "README.md").read_text(encoding="utf-8").splitlines())


# --- the repository's documentation -------------------------------------------------------


@pytest.mark.parametrize("page", doc_files(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    assert link_problems(ROOT, page) == []


def test_readme_is_short() -> None:
    assert readme_line_count(ROOT) <= README_MAX_LINES


@pytest.mark.parametrize("page", doc_files(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_outside_the_repository(page: Path) -> None:
    assert forbidden_mentions(ROOT, page) == []


def test_every_docs_page_is_linked_from_readme() -> None:
    assert list((ROOT / "docs").glob("*.md")), "docs/ holds no page"
    assert unlinked_pages(ROOT) == []


# --- the checks themselves can fail -------------------------------------------------------


def test_github_slugs() -> None:
    assert github_slug("Thresholds (SLO file)") == "thresholds-slo-file"
    assert github_slug("Percentiles: 3 significant digits") == "percentiles-3-significant-digits"
    assert github_slug("Run-time configuration: `/__config`") == "run-time-configuration-__config"
    assert github_slug("summary.json") == "summaryjson"
    assert github_slug("Was the load generator fit to measure?") == (
        "was-the-load-generator-fit-to-measure"
    )
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_each_check_catches_a_broken_example(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good page\n\n## Some section\n", encoding="utf-8")
    (docs / "orphan.md").write_text("# Orphan\n\nSee SPEC.md and ../shared/x.\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Project\n\n"
        "[ok](docs/good.md#some-section) [ok](#project) [web](https://example.com/missing)\n"
        "[missing](docs/missing.md) [bad anchor](docs/good.md#no-such-section)\n"
        "[outside](../elsewhere.md) [same page](#nowhere)\n"
        "`[in code](docs/not-checked.md)`\n" + "line\n" * README_MAX_LINES,
        encoding="utf-8",
    )
    problems = link_problems(tmp_path, readme)
    assert any("docs/missing.md does not exist" in p for p in problems)
    assert any("#no-such-section names no heading" in p for p in problems)
    assert any("../elsewhere.md points outside" in p for p in problems)
    assert any("#nowhere names no heading" in p for p in problems)
    assert len(problems) == 4, problems  # the good, external and code-span links pass
    assert readme_line_count(tmp_path) > README_MAX_LINES
    assert len(forbidden_mentions(tmp_path, docs / "orphan.md")) == 3  # SPEC.md, ../shared, shared/
    assert forbidden_mentions(tmp_path, docs / "good.md") == []
    assert unlinked_pages(tmp_path) == ["docs/orphan.md"]
