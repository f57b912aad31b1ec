"""The READMEs say only what exists: every command names a real script and real flags,
every picture, gif and model they link is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import script_help

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The repository's READMEs (not those of hidden folders such as .pytest_cache, which come and go).
READMES = sorted([REPO_ROOT / "README.md", *(p for p in REPO_ROOT.glob("*/README.md") if not p.parent.name.startswith("."))])
#: ``python some/script.py --flags`` inside the text (continuation lines joined first).
COMMAND = re.compile(r"python3? ((?:[\w.-]+/)*[\w.-]+\.py)((?:[ \t]+[^\s`|#;&)]+)*)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
#: Markdown links and images, and html img tags, to local files.
LINK = re.compile(r"\]\(([^)#\s]+)\)|src=\"([^\"]+)\"")
#: A path to a committed artefact written in the text (pictures, gifs, models).
ARTEFACT = re.compile(r"(?<![\w/<-])((?:pictures|video|models)/[\w./-]+\.(?:png|gif|jpg|csv|pt|zip))")


def readme_text(path: Path) -> str:
    return re.sub(r"\\\n\s*", " ", path.read_text())


def commands() -> list[tuple[str, str, str]]:
    found = []
    for readme in READMES:
        for script, rest in COMMAND.findall(readme_text(readme)):
            found.append((readme.relative_to(REPO_ROOT).as_posix(), script, rest))
    return found


def test_the_readmes_have_commands_to_check() -> None:
    assert len(commands()) > 20


@pytest.mark.parametrize("script", sorted({script for _, script, _ in commands()}))
def test_every_script_a_readme_runs_exists(script: str) -> None:
    assert (REPO_ROOT / script).is_file(), f"{script} is named in a README but does not exist"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted({s for _, s, _ in commands() if (REPO_ROOT / s).is_file()}))
def test_every_flag_in_a_readme_command_is_a_flag_of_its_script(script: str) -> None:
    options = set(FLAG.findall(script_help(script)))
    unknown = sorted({(readme, flag) for readme, s, rest in commands() if s == script
                      for flag in FLAG.findall(rest) if flag not in options})
    assert not unknown, f"flags of {script} that its --help does not list: {unknown}"


def test_every_linked_picture_gif_and_model_exists() -> None:
    missing = []
    for readme in READMES:
        text = readme.read_text()
        targets = [a or b for a, b in LINK.findall(text)] + ARTEFACT.findall(text)
        for target in targets:
            if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
                continue
            base = REPO_ROOT if target.split("/")[0] in ("pictures", "video", "models") else readme.parent
            if not (base / target).resolve().exists():
                missing.append(f"{readme.relative_to(REPO_ROOT)}: {target}")
    assert not missing, "linked files that do not exist:\n" + "\n".join(missing)


def test_no_readme_waits_for_a_measurement() -> None:
    pending = [f"{readme.relative_to(REPO_ROOT)}:{number}" for readme in READMES
               for number, line in enumerate(readme.read_text().splitlines(), start=1) if "RESULT-PENDING" in line]
    assert not pending, f"figures still to measure: {pending}"
