"""Every file, folder and ``rlbreakout.`` name a README writes in backticks exists.

tests/test_docs.py checks the links and the committed pictures, gifs and models; this file checks
the rest of what a learner may open: a path in the repository (``rlbreakout/speed/fast.py``,
``tests/test_imports.py``, ``results/in_progress/``), a bare script or module file name
(``2.3_copying_hp_zoo.py``, ``view.py``; the module map writes paths from ``rlbreakout/``) and a dotted name (``rlbreakout.envs.make_env``: the module
file, then the name defined or imported at its top level). Paths a run writes (``runs/...``,
``<run folder>/...``) are not in the repository and are left out.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from conftest import REPO_ROOT

READMES = sorted([REPO_ROOT / "README.md", *(p for p in REPO_ROOT.glob("*/README.md") if not p.parent.name.startswith("."))])
CODE_SPAN = re.compile(r"`([^`\n]+)`")
#: The repository's own top-level folders and files: a path starting with one of them must exist.
TOP_LEVEL = sorted(p.name for p in REPO_ROOT.iterdir() if not p.name.startswith(".") and p.name not in ("runs", "build"))
FILE_NAME = re.compile(r"[\w.-]+\.(?:py|toml|yml)")
DOTTED = re.compile(r"rlbreakout(?:\.\w+)+")
#: File names of other projects that the READMEs cite: CleanRL's ``ppo_atari.py``, SB3's ``ppo.py``.
OTHER_PROJECTS_FILES = {"ppo_atari.py", "ppo.py"}


def code_words(text: str) -> list[str]:
    """Each whitespace-separated word inside a code span, without trailing punctuation and call brackets."""
    return [re.sub(r"(\(.*\)|[,;:.)]+)$", "", word) for span in CODE_SPAN.findall(text) for word in span.split()]


def repo_path_problem(word: str, readme_dir: Path, root: Path = REPO_ROOT) -> str | None:
    """Why ``word`` names nothing in the repository, or None when it does (or is not a repository path)."""
    if "<" in word or "://" in word or word.startswith("/"):
        return None  # a placeholder (runs/<script>/...), a URL, a path outside the repository
    first = word.split("/")[0]
    if "/" in word and (first in TOP_LEVEL or (root / "rlbreakout" / first).is_dir()):
        # the module map writes the package's modules from rlbreakout/ (`results/tables.py`, `speed/fast.py`)
        for base in (root, root / "rlbreakout"):
            found = list(base.glob(word.rstrip("/"))) if "*" in word else [base / word.rstrip("/")]
            if found and all(path.exists() for path in found):
                return None
        return f"{word} does not exist"
    if "/" not in word and FILE_NAME.fullmatch(word) and word not in OTHER_PROJECTS_FILES:
        places = [readme_dir / word, root / word, *root.glob(f"rlbreakout/**/{word}"), *root.glob(f"*/{word}")]
        return None if any(path.is_file() for path in places) else f"no file called {word}"
    return None


@functools.lru_cache(maxsize=None)
def top_level_names(module_file: Path) -> frozenset[str]:
    """The names a module defines or imports at its top level."""
    names: set[str] = set()
    for node in ast.parse(module_file.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return frozenset(names)


def old_paths(root: Path = REPO_ROOT) -> dict[str, str]:
    """``rlbreakout/old_paths.py``'s OLD_PATHS: module paths from before the folders, still importable."""
    for node in ast.parse((root / "rlbreakout" / "old_paths.py").read_text()).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "OLD_PATHS":
            return ast.literal_eval(node.value)
    raise AssertionError("rlbreakout/old_paths.py has no OLD_PATHS")


def dotted_name_problem(name: str, root: Path = REPO_ROOT) -> str | None:
    """Why ``rlbreakout.a.b.c`` names nothing, or None: the longest module prefix, then top-level names."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        module = ".".join(parts[:end])
        module = old_paths(root).get(module, module)
        base = root.joinpath(*module.split("."))
        module_file = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module_file.is_file():
            rest = parts[end:]
            if not rest or rest[0] in top_level_names(module_file):
                return None  # a class's attribute (rest[1:]) is not followed further
            return f"{name}: {module} has no {rest[0]}"
    return f"{name}: no such module"


def problems(readme: Path, root: Path = REPO_ROOT) -> list[str]:
    found = []
    for word in code_words(readme.read_text()):
        problem = dotted_name_problem(DOTTED.search(word).group(0), root) if DOTTED.match(word) else None
        found.append(problem or repo_path_problem(word, readme.parent, root))
    return sorted({problem for problem in found if problem})


def test_the_checker_finds_a_missing_path_file_and_name(tmp_path: Path) -> None:
    (tmp_path / "rlbreakout").mkdir()
    (tmp_path / "rlbreakout" / "old_paths.py").write_text("OLD_PATHS: dict[str, str] = {'rlbreakout.old': 'rlbreakout.envs'}\n")
    (tmp_path / "rlbreakout" / "envs.py").write_text("from x import register_ale\n\ndef make_env():\n    pass\n")
    readme = tmp_path / "README.md"
    readme.write_text("`rlbreakout/envs.py`, `envs.py`, `rlbreakout.envs.make_env(...)`, `rlbreakout.old.make_env`, "
                      "`rlbreakout.envs.register_ale()`, `runs/<script>/`, `ppo_atari.py`\n")
    assert problems(readme, tmp_path) == []
    readme.write_text("`rlbreakout/nothing.py`, `nothing.py`, `rlbreakout.envs.make_envs`, `rlbreakout.gone.x`\n")
    assert problems(readme, tmp_path) == ["no file called nothing.py", "rlbreakout.envs.make_envs: rlbreakout.envs has "
                                          "no make_envs", "rlbreakout.gone.x: no such module",
                                          "rlbreakout/nothing.py does not exist"]


def test_the_checker_reads_the_repository_top_level() -> None:
    assert {"rlbreakout", "tests", "pictures", "results", "models"} <= set(TOP_LEVEL)


@pytest.mark.parametrize("readme", READMES, ids=lambda path: path.relative_to(REPO_ROOT).as_posix())
def test_every_path_file_and_name_a_readme_writes_exists(readme: Path) -> None:
    found = problems(readme)
    assert not found, f"{readme.relative_to(REPO_ROOT)} names what does not exist:\n" + "\n".join(found)
