"""Every flag a README names is a flag of the script(s) its sentence talks about.

tests/test_docs.py checks the flags of each ``python script.py ...`` command; this file checks
the flags named in prose, tables and lists. Which script a flag mention belongs to is read from
where it stands: the scripts named in its paragraph (a file name like ``2.3_copying_hp_zoo.py``
anywhere, or a chapter number like ``4.1`` of the README's own chapter), else those of its
section's heading, else every script of the README's chapter (every script of the repository
for the root README). The flag must be in the ``--help`` of at least one of them.

A sentence that says a flag belongs to *every* script of a kind (``Every training or evaluation
script takes --env ...``) is a claim about each one: GENERAL_CLAIMS lists those sentences with
the scripts they speak of, and each of their flags must be in each script's ``--help``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from helpers import scripts_help

READMES = sorted([REPO_ROOT / "README.md", *(p for p in REPO_ROOT.glob("*/README.md") if not p.parent.name.startswith("."))])
CHAPTER_SCRIPTS = sorted(path.relative_to(REPO_ROOT).as_posix() for path in REPO_ROOT.glob("[0-9]_*/[0-9].[0-9]*.py"))
TOOL_SCRIPTS = sorted(path.relative_to(REPO_ROOT).as_posix() for path in REPO_ROOT.glob("pictures/*.py"))
SCRIPTS = CHAPTER_SCRIPTS + TOOL_SCRIPTS
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
SCRIPT_FILE = re.compile(r"(?<![\w.])((?:[\w-]+/)?[0-9]\.[0-9][\w.-]*?\.py|(?:pictures/)?(?:campaign|export_best_policy"
                         r"|make_plots|make_tables)\.py)")
#: A chapter number (``4.1``), not a decimal (``0.1`` clip, ``2.5e-4``, ``3.4 s`` is still caught: keep scope lenient).
SCRIPT_NUMBER = re.compile(r"(?<![\w.=])([0-5]\.[0-9])(?![\w.]|e-)")
#: Flags of other programs that the READMEs name beside ours: AutoROM's, rl-baselines3-zoo's train script's.
OTHER_PROGRAMS_FLAGS = {"--accept-license", "--algo"}
#: A command of another program whose flags are not ours (``tensorboard --logdir runs``).
OTHER_COMMAND = re.compile(r"(tensorboard|optuna-dashboard|pip install|pytest)( --?[\w-]+(=\S+)?)+")
#: The end of a sentence: a full stop, semicolon or colon before a capital, a backtick or a bracket.
SENTENCE_END = re.compile(r"(?<=[.;:])\s+(?=[A-Z0-9`(*])")
#: ``SB3 --fast``, ``SB3's --fast``: the flag of the SB3 PPO scripts, named beside 2.4 and 2.5's own levers.
SB3_FLAG = re.compile(r"SB3(?:'s)? `(--[a-z-]+)`")

#: Sentences that give flags to every script of a kind: (README, words of the sentence, the scripts it speaks of).
TRAINING_SCRIPTS = [s for s in CHAPTER_SCRIPTS if not s.startswith(("0_setup/0.1", "0_setup/0.2", "1_gym/1.1",
                                                                      "1_gym/1.2", "3_obswrapper/3.1",
                                                                      "4_tuning/4.0_study"))]
#: The SB3 PPO scripts, those with ``--fast`` (the root README's Performance section lists them).
SB3_FAST_SCRIPTS = [s for s in CHAPTER_SCRIPTS if re.match(r"\d_\w+/(0\.3|1\.3|2\.[123]|3\.3|4\.1)_", s)]
STUDY_SCRIPTS = [s for s in CHAPTER_SCRIPTS if s.startswith("4_tuning/") and "explore" not in s]
GENERAL_CLAIMS = [
    ("README.md", "Every training or evaluation script takes", TRAINING_SCRIPTS),
    ("4_tuning/README.md", "The study scripts (4.0, 4.1, 4.2, 4.3) take the common flags", STUDY_SCRIPTS),
    ("README.md", "(in the SB3 PPO scripts 1.3, 2.1-2.3, 3.3, 4.1 and 0.3)", SB3_FAST_SCRIPTS),
    ("3_obswrapper/README.md", "also replaces the committed copies in `pictures/` (the help of each of them",
     [s for s in CHAPTER_SCRIPTS if s.startswith(("3_obswrapper/3.1", "3_obswrapper/3.2"))]),
]
#: Sentences that say scripts lack a flag: (README, words of the sentence, the flags, the scripts).
NEGATIVE_CLAIMS = [
    ("3_obswrapper/README.md", "3.3 writes its replay gif into its run folder and takes neither flag",
     ["--save-pictures", "--pictures"], ["3_obswrapper/3.3_aimbot_training.py"]),
    ("5_sonic/README.md", "No `--fast` here.", ["--fast"], [s for s in CHAPTER_SCRIPTS if s.startswith("5_sonic/")]),
    ("4_tuning/README.md", "as `--fast` is not one of their flags", ["--fast"],
     [s for s in STUDY_SCRIPTS if not s.startswith("4_tuning/4.1")]),
]
#: Sentences whose flag belongs to scripts they do not name: (README, words of the sentence, the scripts).
SCOPE_OVERRIDES = [
    ("README.md", "by the finished model with the script's own `--load`", TRAINING_SCRIPTS),
    ("README.md", "a 1e6-step `--fast` run takes about 50 minutes", SB3_FAST_SCRIPTS),
    ("4_tuning/README.md", "Start the workers again when the server is back", STUDY_SCRIPTS),
    *((readme, "names the env backend the runs trained on", SB3_FAST_SCRIPTS)  # under each ledger table
      for readme in ("README.md", "1_gym/README.md", "2_baselines/README.md", "3_obswrapper/README.md")),
]


def readme_text(path: Path) -> str:
    """The README with shell continuation lines joined, as a learner's shell reads them."""
    return re.sub(r"\\\n\s*", " ", path.read_text())


def blocks(text: str) -> list[tuple[str, str]]:
    """(heading, block) for each paragraph, list item, table row and code line, in order."""
    found: list[tuple[str, str]] = []
    heading, current, in_code = "", [], False

    def close() -> None:
        if current:
            found.append((heading, " ".join(current)))
            current.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            close()
            in_code = not in_code
        elif in_code or stripped.startswith("|"):
            close()
            found.append((heading, stripped))
        elif stripped.startswith("#") and not in_code:
            close()
            heading = stripped
        elif not stripped:
            close()
        elif re.match(r"(\*|-|\d+\.) ", stripped):
            close()
            current.append(stripped)
        else:
            current.append(stripped)
    close()
    return found


def scripts_named(text: str, chapter: str | None, own: bool = True) -> list[str]:
    """The scripts a piece of text names by file name (``2.3_copying_hp_zoo.py``) or by number (``2.3``).

    ``own``: the numbers of ``chapter``'s scripts only (every chapter's when ``chapter`` is None); else the
    numbers of the other chapters' scripts (a decimal like the clip range 0.1 may look like one).
    """
    named = [s for s in SCRIPTS for name in SCRIPT_FILE.findall(text) if s.endswith("/" + name.split("/")[-1])]
    for number in SCRIPT_NUMBER.findall(text):
        named += [s for s in CHAPTER_SCRIPTS if Path(s).name.startswith(number + "_")
                  and (chapter is None or s.startswith(chapter + "/")) == own]
    return sorted(set(named))


def flag_mentions(relative: str, text: str) -> list[tuple[str, list[str], str]]:
    """(flag, the scripts it may belong to, its sentence) for each flag the README at ``relative`` names.

    The scripts are those of its chapter that its sentence names, else those its paragraph or heading names,
    else all its chapter's; and those of other chapters its sentence names. A flag written ``SB3's --fast``
    belongs to the SB3 PPO scripts; SCOPE_OVERRIDES names the scripts of sentences that name none.
    """
    chapter = relative.split("/")[0] if "/" in relative and relative[0].isdigit() else None
    everything = [s for s in SCRIPTS if chapter is None or s.startswith(chapter + "/")]
    mentions = []
    for heading, block in blocks(text):
        for sentence in SENTENCE_END.split(OTHER_COMMAND.sub("", block)):
            if any(relative == readme and words in sentence for readme, words, *_ in NEGATIVE_CLAIMS):
                continue  # a flag said to be absent: test_a_flag_said_to_be_absent_is_absent checks it
            scope = (scripts_named(sentence, chapter) or scripts_named(block + " " + heading, chapter) or everything)
            scope = sorted(set(scope) | set(scripts_named(sentence, chapter, own=False)))
            for readme, words, scripts in SCOPE_OVERRIDES:
                scope = scripts if relative == readme and words in sentence else scope
            mentions += [(flag, SB3_FAST_SCRIPTS if flag in SB3_FLAG.findall(sentence) else scope, sentence)
                         for flag in FLAG.findall(sentence) if flag not in OTHER_PROGRAMS_FLAGS]
    return mentions


def sentence_with(readme: str, words: str) -> str:
    """The sentence of ``readme`` that holds ``words`` (line breaks read as spaces)."""
    found = [sentence for sentence in SENTENCE_END.split(re.sub(r"\s+", " ", readme_text(REPO_ROOT / readme)))
             if words in sentence]
    assert found, f"{readme} no longer says {words!r}: update this test's list of claims"
    return found[0]


@pytest.fixture(scope="module")
def flags_of() -> dict[str, set[str]]:
    """Each script's flags, read from its ``--help`` (all in one process: each script imports torch)."""
    helps = scripts_help(SCRIPTS)
    assert sorted(helps) == SCRIPTS, f"--help failed for {sorted(set(SCRIPTS) - set(helps))}"
    return {script: set(FLAG.findall(text)) for script, text in helps.items()}


def test_a_flag_belongs_to_the_scripts_its_sentence_then_paragraph_then_heading_then_chapter_names() -> None:
    text = ("# Chapter\n\nAll take `--seed`.\n\n### 4.2 the grid\n\nIt takes `--batch-sizes`.\n\n"
            "4.3 takes `--n-trials`, as 2.3 takes `--fast`. SB3's `--fast` is fast.\n\n* `--storage`: where.\n")
    mentions = [(flag, scope) for flag, scope, _ in flag_mentions("4_tuning/README.md", text)]
    grid, schedules, zoo = (f"{folder}/{name}.py" for folder, name in [
        ("4_tuning", "4.2_PPO_tuning_grid"), ("4_tuning", "4.3_PPO_tuning_schedules"),
        ("2_baselines", "2.3_copying_hp_zoo")])
    assert mentions[0] == ("--seed", [s for s in SCRIPTS if s.startswith("4_tuning/")])
    assert mentions[1] == ("--batch-sizes", [grid])
    assert mentions[2:4] == [("--n-trials", [zoo, schedules]), ("--fast", [zoo, schedules])]
    assert mentions[4] == ("--fast", SB3_FAST_SCRIPTS) and mentions[5] == ("--storage", [grid])


@pytest.mark.slow
@pytest.mark.parametrize("readme", READMES, ids=lambda path: path.relative_to(REPO_ROOT).as_posix())
def test_every_flag_a_readme_names_is_a_flag_of_a_script_it_talks_about(readme: Path,
                                                                         flags_of: dict[str, set[str]]) -> None:
    unknown = sorted({f"{flag} (in {', '.join(Path(s).name for s in scope)}): {text[:160]}"
                      for flag, scope, text in flag_mentions(readme.relative_to(REPO_ROOT).as_posix(), readme_text(readme)) if not any(flag in flags_of[s] for s in scope)})
    assert not unknown, "flags that no script of their sentence has:\n" + "\n".join(unknown)


@pytest.mark.slow
@pytest.mark.parametrize("readme, words, flags, scripts", NEGATIVE_CLAIMS, ids=[c[0] for c in NEGATIVE_CLAIMS])
def test_a_flag_said_to_be_absent_is_absent(readme: str, words: str, flags: list[str], scripts: list[str],
                                            flags_of: dict[str, set[str]]) -> None:
    sentence_with(readme, words)
    present = [f"{Path(s).name}: {flag}" for s in scripts for flag in flags if flag in flags_of[s]]
    assert not present, f"{readme} says {words!r}, but:\n" + "\n".join(present)


@pytest.mark.slow
@pytest.mark.parametrize("readme, words, scripts", GENERAL_CLAIMS, ids=[claim[0] for claim in GENERAL_CLAIMS])
def test_a_flag_said_of_every_script_of_a_kind_is_in_each(readme: str, words: str, scripts: list[str],
                                                          flags_of: dict[str, set[str]]) -> None:
    sentence = sentence_with(readme, words)
    flags = FLAG.findall(sentence)
    assert flags, f"no flag in {sentence!r}"
    missing = [f"{Path(s).name}: {flag}" for s in scripts for flag in flags if flag not in flags_of[s]]
    assert not missing, f"{readme} says {words!r} {' '.join(flags)}, but:\n" + "\n".join(missing)
