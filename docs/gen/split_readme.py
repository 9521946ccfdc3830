"""One-off: move the README's manual into docs pages (kept for the record of where text went).

Each ``## `` section becomes a page; ``### `` subsections about speed, benchmarks and test
internals go to the development section. ``(#anchor)`` links are pointed at the page that now
holds the heading; links to repository files outside docs/ name the file (the site does not hold them).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[2]

PAGES = {
    "Install": "getting-started/install.md",
    "Quick start": "getting-started/quick-start.md",
    "Exit codes": "reference/exit-codes.md",
    "Signing and verifying models": "guides/signing.md",
    "Models in OCI registries": "guides/oci.md",
    "Attestations and model facts": "guides/attestations.md",
    "Policies": "guides/policies.md",
    "The admission webhook": "concepts/admission.md",
    "Auditing what runs: `guard scan`": "guides/audits.md",
    "Energy and carbon": "guides/energy.md",
    "The Helm chart": "guides/helm-chart.md",
    "Audit reports: `guard report`": "guides/reports.md",
    "Untrusted input: threat model, limits, fuzzing": "concepts/untrusted-input.md",
    "Development": "development/index.md",
}
INTERNALS = "development/internals.md"
INTERNAL_TITLE = re.compile(r"^(Speed|Speed and memory|Tests|Tests and speed|Evaluation time|Testing .*)$")


def main() -> None:
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    pages: dict[str, list[str]] = {}
    current: str | None = None
    parent = ""
    sub_internal = False
    fence = False
    for line in lines:
        if line.lstrip().startswith("```"):
            fence = not fence
        if line.startswith("<!-- section"):
            continue
        if fence or line.lstrip().startswith("```"):
            if current is not None:
                (pages[INTERNALS] if sub_internal else pages[current]).append(line)
            continue
        if line.startswith("## "):
            title = line[3:].strip()
            current = PAGES.get(title)
            if current is None:
                sys.exit(f"no page for README section {title!r}")
            parent = title
            sub_internal = False
            pages.setdefault(current, []).append(f"# {title}")
            continue
        if current is None:
            continue
        if line.startswith("### "):
            sub_internal = bool(INTERNAL_TITLE.match(line[4:].strip())) and current != "development/index.md"
            if sub_internal:
                pages.setdefault(INTERNALS, ["# Internals: speed and tests, by capability"]).append(
                    f"## {parent}: {line[4:].strip()}"
                )
                continue
        if sub_internal:
            pages[INTERNALS].append(line[1:] if line.startswith("####") else line)
        else:
            pages[current].append(line[1:] if line.startswith("#") and not line.startswith("#!") else line)
    anchors: dict[str, str] = {}
    for page, body in pages.items():
        for line in body:
            m = re.match(r"^#+ (.*)$", line)  # (fenced comments too: harmless extra keys)
            if m:
                anchors.setdefault(slugify(m.group(1), "-"), page)
    for page, body in pages.items():
        out = "\n".join(body).strip() + "\n"
        depth = page.count("/")

        def link(m: re.Match[str], page: str = page, depth: int = depth) -> str:
            label, target = m.group(1), m.group(2)
            if target.startswith("#"):
                where = anchors.get(target[1:])
                if where is None or where == page:
                    return f"[{label}]({target})"
                return f"[{label}]({'../' * depth}{where}{target})"
            if target.startswith(("http://", "https://", "mailto:")):
                return m.group(0)
            if target.startswith("docs/"):
                return f"[{label}]({'../' * depth}{target.removeprefix('docs/')})"
            # a file of the repository, outside the site: named, not linked
            shown = f"`{target}`"
            return shown if label.strip("`") == target else f"{label} ({shown} in the repository)"

        out = re.sub(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)", link, out)
        out = re.sub(r"!\[([^\]]*)\]\(docs/([^)\s]+)\)", lambda m: f"![{m.group(1)}]({'../' * depth}{m.group(2)})", out)
        path = ROOT / "docs" / page
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out)
        print(f"{page}: {len(body)} lines")


if __name__ == "__main__":
    main()
