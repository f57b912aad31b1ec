"""Rewrite the results and TensorBoard tag tables of README.md and the chapter READMEs.

Run it:  python pictures/make_tables.py            # rewrite every results and tags block
         python pictures/make_tables.py --check    # exit 1 if a README differs from what it would write
In Spyder: run it cell by cell; the defaults apply.
A results block is the text between `<!-- results: NAME -->` and `<!-- /results: NAME -->`;
NAME is all, chapter1, chapter2, chapter3 (tables) or comparison (the sentences that compare).
Each figure comes from results/*.json, written by pictures/campaign.py; nothing is typed in.
A tags block, between `<!-- tags: NAME -->` and `<!-- /tags: NAME -->`, is a table of the
TensorBoard tags the scripts write, from the registry rlbreakout/tags.py.
"""

# %% Imports
import argparse
import sys
from pathlib import Path

from rlbreakout.cli import parse_script_args
from rlbreakout.flag_types import input_folder
from rlbreakout.results.ledger import LEDGER_DIR, read_ledger
from rlbreakout.results.tables import block_names, render_block, rewrite
from rlbreakout.tags import rewrite_tag_blocks, tag_block_names

REPO_ROOT = Path(__file__).resolve().parents[1]
READMES = [REPO_ROOT / "README.md", *sorted(REPO_ROOT.glob("*/README.md"))]


# %% Settings
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", type=input_folder, default=str(LEDGER_DIR), help="the ledger folder")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a README is out of date")
    return parse_script_args(parser)


args = parse_args()
ledger = read_ledger(Path(args.ledger))

# %% Rewrite (or check) every README that has results or tags blocks
stale = []
for readme in READMES:
    text = readme.read_text()
    names = block_names(text) + [f"tags: {name}" for name in tag_block_names(text)]
    if not names:
        continue
    new_text = rewrite_tag_blocks(rewrite(text, lambda name: render_block(name, ledger)))
    relative = readme.relative_to(REPO_ROOT)
    if new_text == text:
        print(f"{relative}: up to date ({', '.join(names)})")
    elif args.check:
        stale.append(str(relative))
        print(f"{relative}: differs from the ledger or rlbreakout/tags.py ({', '.join(names)})")
    else:
        readme.write_text(new_text)
        print(f"{relative}: rewrote {', '.join(names)}")
print(f"{len(ledger)} ledger entries in {args.ledger}")
if stale:
    print(f"out of date: {', '.join(stale)}; run: python pictures/make_tables.py", file=sys.stderr)
    sys.exit(1)
