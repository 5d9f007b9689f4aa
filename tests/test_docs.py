"""The README and docs/ against the repository: links resolve, cited tests exist, the
environment table names every variable the code reads."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

# First CI pass only: files only: no test server is involved.
pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and ![alt](target), outside code; a target is up to a space or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# Folders the code is read from: everything but the tests, the benchmarks and what is vendored.
SKIP_DIRS = {"tests", "bench", "node_modules", ".venv", ".git", "migrations", "docs", "build"}


def prose(text: str) -> str:
    """`text` without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M):
        base, n = slug(heading), 0
        while (name := base if n == 0 else f"{base}-{n}") in found:
            n += 1
        found.add(name)
    return found


def test_every_relative_link_of_the_readme_and_docs_points_at_a_file_and_heading() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(prose(page.read_text())):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto:: not ours to check
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_every_test_the_docs_cite_exists() -> None:
    """A guarantee names the test that shows it; a renamed or deleted test leaves a claim
    without proof. Names with a `*` or `[…]` are patterns."""
    source = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    defined = set(re.findall(r"def (test_\w+)", source))
    missing = []
    for page in PAGES:
        for name in re.findall(r"`(test_[\w*]+)(?![\w*]|\.py)", page.read_text()):
            pattern = re.compile(re.escape(name).replace(r"\*", r"\w*") + r"$")
            if not any(pattern.match(d) for d in defined):
                missing.append(f"{page.name}: {name}")
    assert missing == []


def variables_the_code_reads() -> set[str]:
    """Every settings field (pydantic-settings reads FIELD_NAME) and every os.environ /
    os.getenv name in the package, the studio and the seed, wherever their files live."""
    names: set[str] = set()
    for path in ROOT.rglob("*.py"):
        if SKIP_DIRS & set(path.relative_to(ROOT).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name | ast.Attribute)
                and ast.unparse(b).split(".")[-1].endswith("Settings")
                for b in node.bases
            ):
                names |= {
                    s.target.id.upper()
                    for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                }
            elif (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) in {"os.environ.get", "os.getenv"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(str(node.args[0].value))
            elif (
                isinstance(node, ast.Subscript)
                and isinstance(node.ctx, ast.Load)
                and ast.unparse(node.value) == "os.environ"
                and isinstance(node.slice, ast.Constant)
            ):
                names.add(str(node.slice.value))
    return names


def test_the_readme_environment_section_names_every_variable_the_code_reads() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Environment\n", 1)[1].split("\n## ", 1)[0]
    read = variables_the_code_reads()
    assert {"DATABASE_URL", "STUDIO_PORT", "SEED_ADMIN_PASSWORD", "COACH_DB_HOME"} <= read
    assert sorted(v for v in read if f"`{v}`" not in section) == []
