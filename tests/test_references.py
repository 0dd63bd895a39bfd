"""Every citation points at something that exists: docs/references.md sections, cited repo files, a LICENSE."""

import re
import subprocess

import pytest

from conftest import ROOT

REFS = ROOT / "docs" / "references.md"


def _tracked_text_files():
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    for name in out.splitlines():
        path = ROOT / name
        if path.suffix in (".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg") and path.is_file():
            yield path


def test_every_references_anchor_exists():
    anchors = set(re.findall(r"^## ([a-z0-9-]+)\s*$", REFS.read_text(), flags=re.M))
    cited = {}
    for path in _tracked_text_files():
        for anchor in re.findall(r"references\.md#([a-z0-9-]+)", path.read_text(errors="replace")):
            cited.setdefault(anchor, path)
    assert cited, "nothing cites docs/references.md"
    missing = {a: str(p.relative_to(ROOT)) for a, p in cited.items() if a not in anchors}
    assert not missing, f"cited sections missing from docs/references.md: {missing}"


def test_no_citation_of_a_file_outside_the_repository():
    marker = "REFERENCE" + ".md"  # split so this file does not cite it either
    offenders = [str(p.relative_to(ROOT)) for p in _tracked_text_files() if marker in p.read_text(errors="replace")]
    assert not offenders


def test_license_matches_pyproject():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert re.search(r"^license\s*=.*MIT", (ROOT / "pyproject.toml").read_text(), flags=re.M)


def test_markdown_links_to_repository_files_resolve():
    broken = []
    for path in _tracked_text_files():
        if path.suffix != ".md":
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(errors="replace")):
            if re.match(r"[a-z]+:", target) or target.startswith("#") or target.endswith((".png", ".svg")):
                continue  # a URL, an anchor in the same page, or a plot that commands generate (not committed)
            if not (path.parent / target.split("#")[0]).exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not broken
