"""Every TensorBoard tag the tutorial writes: what it means, what a healthy value looks like, who writes it.

One source for three readers:

* TensorBoard: the callbacks (:func:`rlbreakout.callbacks.tensorboard_writer`) and the
  from-scratch PPO's writer put :func:`description` into the first value of each tag, and
  TensorBoard shows it beside the chart;
* the READMEs: ``pictures/make_tables.py`` writes their tag tables from :func:`render_block`
  between ``<!-- tags: NAME -->`` and ``<!-- /tags: NAME -->``, and a test fails if one differs;
* the tests: each training script's tiny run must write exactly :func:`script_tags`.

A tag written with a part that varies is a template: ``eval/<name>/mean_reward`` stands for
``eval/eval/mean_reward``, ``eval/v5/mean_reward``, ... (:func:`find`). SB3's own tags
(``rollout/*``, ``train/*``, ``time/fps``) are here too: the scripts make SB3 write them.
SB3 writes a few more (``time/iterations``, ``train/n_updates``, ...) to the terminal only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rlbreakout.errors import RLBreakoutError

#: The part of a template that varies, e.g. ``<name>`` in ``eval/<name>/mean_reward``.
PLACEHOLDER = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Tag:
    """One TensorBoard tag (or template) and what a learner should know about it.

    :param name: the tag, e.g. ``rollout/ep_rew_mean``; ``<...>`` marks a part that varies
    :param meaning: what the value is
    :param healthy: a rule of thumb for a working run (a guide for spotting a broken run, not a target)
    """

    name: str
    meaning: str
    healthy: str

    def matches(self, tag: str) -> bool:
        """Whether ``tag`` is this one, or one it stands for (``<...>`` matches one path part)."""
        return matches(self.name, tag)


def matches(template: str, tag: str) -> bool:
    """Whether ``tag`` is ``template`` with each ``<...>`` filled by one path part."""
    return re.fullmatch("[^/]+".join(re.escape(part) for part in PLACEHOLDER.split(template)), tag) is not None


#: What ``MultiEnvEvalCallback`` logs per eval env, in its order.
EVAL_STATS = ("mean_reward", "median_reward", "std_reward", "q25_reward", "mean_ep_length")
TAGS: tuple[Tag, ...] = (
    Tag("rollout/ep_rew_mean",
        "Mean score of the last 100 training games. The Monitor sits below the Atari (and retro) wrappers, so this "
        "is the whole-game, unclipped score (all 5 lives), under the training policy's sampled actions. (With a "
        "Monitor above `ClipRewardEnv` and `EpisodicLifeEnv` it would be the clipped per-life reward, which is not "
        "the game score.)",
        "rises; flat near random play (about 1-2 in Breakout) for the first 1e5 steps is normal"),
    Tag("rollout/ep_len_mean",
        "Mean length of those games, in the Monitor's unit (emulator frames for NoFrameskip ids, agent steps for "
        "v5 and retro games)",
        "rises with the score: a longer game is a ball kept in play longer"),
    Tag("rollout/exploration_rate",
        "DQN family: epsilon, the share of actions taken at random",
        "falls linearly from 1 to its final value over the exploration fraction, then stays there"),
    Tag("game/score",
        "The unclipped score of one whole training game (all lives), at the env step where it ended",
        "a cloud of points; its lower edge rising is learning"),
    Tag("game/length",
        "The length of that game, in the Monitor's unit (emulator frames for NoFrameskip ids, agent steps for v5 "
        "and retro games)",
        "rises with the score"),
    Tag("game/played",
        "Training games finished so far (2.2's own `GamesPlayedCallback`)",
        "rises; more slowly as games get longer"),
    Tag("eval/<name>/mean_reward",
        "`MultiEnvEvalCallback`: mean score of `--eval-episodes` whole games (all lives, unclipped, actions "
        "sampled) on a separate env called `<name>`",
        "rises with `game/score`; well below it means the eval env differs from the training env"),
    Tag("eval/<name>/median_reward",
        "The median of those games' scores (the score Optuna's trials report)",
        "close to the mean; far below it means a few long games pull the mean up"),
    Tag("eval/<name>/std_reward",
        "The standard deviation of those games' scores",
        "grows with the score; larger than the mean means a few games decide the mean"),
    Tag("eval/<name>/q25_reward",
        "The lower quartile of those games' scores: how bad the bad games are",
        "rises with the median; a flat lower quartile under a rising mean means the agent still loses games early"),
    Tag("eval/<name>/mean_ep_length",
        "The mean length of those games, in the Monitor's unit",
        "rises with the score; at the frame limit (108,000 frames) a policy stalls without pressing FIRE"),
    Tag("train/approx_kl",
        "PPO: an estimate of the KL divergence between the policy before and after the update",
        "roughly 0.005-0.03; large values mean updates too big (lower the learning rate or the epochs)"),
    Tag("train/clip_fraction",
        "PPO: share of samples whose probability ratio was clipped",
        "about 0.05-0.2; near 0 means updates too small, above 0.3 too large"),
    Tag("train/explained_variance",
        "PPO: 1 - Var[returns - values] / Var[returns]: how much of the returns the value head predicts",
        "rises toward 0.5-0.9 as the critic learns; near 0 or negative means the value head predicts nothing"),
    Tag("train/entropy_loss",
        "PPO: minus the policy's entropy",
        "starts near -ln(4) = -1.386 (Breakout's 4 actions) and rises slowly toward 0 as the policy becomes sure; "
        "a fast collapse toward 0 means too little exploration"),
    Tag("train/value_loss",
        "PPO: mean squared error of the value head against the returns (the plain MSE in 2.4 and 2.5 too, "
        "whichever `--loss`)",
        "no fixed scale (it depends on the rewards); it should not grow without bound. Chapter 5 shows what "
        "unscaled rewards do to it"),
    Tag("train/clipped_value_loss",
        "2.4 and 2.5 with `--loss cleanrl`: the value term CleanRL optimises, half the larger of the squared errors "
        "of the new value and of the value clipped to within `clip_range` of its rollout value",
        "at least half of `train/value_loss`; far above half means the value head wants to move further than the "
        "clip allows"),
    Tag("train/policy_gradient_loss",
        "PPO: the clipped surrogate loss, averaged over minibatches",
        "small and negative-ish; its level means little, its sudden jumps do"),
    Tag("train/loss",
        "PPO: the total loss of the last minibatch (policy + entropy + value terms). DQN family: the TD (QR-DQN: "
        "quantile Huber) loss of the last gradient step",
        "PPO: dominated by the value term when rewards are large; DQN: no fixed scale, it should not grow "
        "without bound"),
    Tag("train/learning_rate",
        "The learning-rate schedule's current value",
        "follows the schedule: with the zoo's linear schedule, a straight line to 0"),
    Tag("train/clip_range",
        "PPO: the clip-range schedule's current value",
        "follows the schedule: with the zoo's linear schedule, a straight line to 0"),
    Tag("time/fps",
        "Env steps per second since the start, evaluation included",
        "steady; a drop means the machine is busy"),
    Tag("collapse/best_score",
        "`FreezeOnCollapseCallback`: the best evaluation score so far, whose weights it keeps",
        "rises in steps, never falls"),
    Tag("collapse/evals_below",
        "`FreezeOnCollapseCallback`: evaluations in a row that fell more than `--collapse-fraction` of the best "
        "below it; at "
        "`--collapse-patience` training stops and the best weights come back",
        "0 most of the time"),
    Tag("jerk/episode_score",
        "JERK: the score of the episode just played (exploring or replaying)",
        "a cloud that rises as replays of good sequences take over"),
    Tag("jerk/replayed",
        "JERK: 1 when the episode replayed a stored sequence, 0 when it explored",
        "more 1s as the run goes on (the exploit probability grows with the steps done)"),
    Tag("jerk/best_mean_score",
        "JERK: the best mean score of a stored sequence over its replays",
        "rises in steps"),
    Tag("jerk/exploit_probability",
        "JERK: the chance that the next episode replays a sequence instead of exploring",
        "rises with the steps done, as the Retro Contest's JERK does"),
    Tag("jerk/solutions",
        "JERK: stored action sequences so far",
        "rises by one per exploring episode"),
)
BY_NAME: dict[str, Tag] = {tag.name: tag for tag in TAGS}


def eval_tags(name: str) -> tuple[str, ...]:
    """``MultiEnvEvalCallback``'s tags for the eval env called ``name``."""
    return tuple(f"eval/{name}/{stat}" for stat in EVAL_STATS)


SB3_PPO = ("rollout/ep_rew_mean", "rollout/ep_len_mean", "time/fps", "train/approx_kl", "train/clip_fraction",
           "train/explained_variance", "train/entropy_loss", "train/value_loss", "train/policy_gradient_loss",
           "train/loss", "train/learning_rate", "train/clip_range")
SB3_DQN = ("rollout/ep_rew_mean", "rollout/ep_len_mean", "rollout/exploration_rate", "time/fps", "train/loss",
           "train/learning_rate")
GAMES = ("game/score", "game/length")
COLLAPSE = ("collapse/best_score", "collapse/evals_below")
JERK = tuple(tag.name for tag in TAGS if tag.name.startswith("jerk/"))
#: Sets of tags the scripts tables name in a word, and spell out once below the table.
GROUP_NAMES: dict[tuple[str, ...], str] = {SB3_PPO: "SB3's PPO tags", SB3_DQN: "SB3's DQN tags"}
#: The flag that turns periodic evaluation on, as the tables say it.
EVAL_FLAG = "`--eval-freq` > 0"


@dataclass(frozen=True)
class Writes:
    """Tags a script writes, always or when a flag turns them on."""

    tags: tuple[str, ...]
    when: str = ""


#: What each training script writes to TensorBoard. 2.4 and 2.5 write SB3's PPO tags themselves.
SCRIPTS: dict[str, tuple[Writes, ...]] = {
    "0.3_demo": (Writes(SB3_PPO + GAMES), Writes(eval_tags("eval"), EVAL_FLAG)),
    "1.3_train": (Writes(SB3_PPO + GAMES),),
    "2.1_envs": (Writes(SB3_PPO + GAMES),),
    "2.2_callbacks": (Writes(SB3_PPO + GAMES + ("game/played",)), Writes(eval_tags("eval"), EVAL_FLAG)),
    "2.3_copying_hp_zoo": (Writes(SB3_PPO + GAMES), Writes(eval_tags("eval"), EVAL_FLAG)),
    "2.4_ppo_atari_from_scratch": (Writes(SB3_PPO + GAMES), Writes(("train/clipped_value_loss",), "`--loss cleanrl`")),
    "2.5_ppo_fast": (Writes(SB3_PPO + GAMES), Writes(("train/clipped_value_loss",), "`--loss cleanrl`")),
    "3.3_aimbot_training": (Writes(SB3_PPO + GAMES), Writes(eval_tags("eval"), EVAL_FLAG)),
    "4.0_wrapperOptuna_PPO": (Writes(SB3_PPO + GAMES + eval_tags("<eval env>")),),
    "4.1_PPO_env_comparison": (Writes(SB3_PPO + GAMES), Writes(eval_tags("v4") + eval_tags("v4NoFS") + eval_tags("v5"),
                                                              EVAL_FLAG)),
    "4.2_PPO_tuning_grid": (Writes(SB3_PPO + GAMES + eval_tags("<eval env>")),),
    "4.3_PPO_tuning_schedules": (Writes(SB3_PPO + GAMES + eval_tags("<eval env>")),),
    "5.1_jerk": (Writes(JERK),),
    "5.2_ppo_sonic": (Writes(SB3_PPO + GAMES), Writes(eval_tags("eval"), EVAL_FLAG),
                      Writes(COLLAPSE, EVAL_FLAG + " and `--collapse-fraction` > 0")),
    "5.3_dqn_sonic": (Writes(SB3_DQN + GAMES), Writes(eval_tags("eval"), EVAL_FLAG),
                      Writes(COLLAPSE, EVAL_FLAG + " and `--collapse-fraction` > 0")),
}
#: What ``<eval env>`` is in the trials of 4.0, 4.2 and 4.3.
EVAL_ENV_NOTE = ("`<eval env>` is the label of the env a trial is scored on (`--eval-env`, by default the trial's "
                 "training env): `v4`, `v4NoFS` or `v5`")


def find(tag: str) -> Tag | None:
    """The registry entry for a concrete tag (``eval/v5/mean_reward`` -> ``eval/<name>/mean_reward``)."""
    if tag in BY_NAME:
        return BY_NAME[tag]
    return next((entry for entry in TAGS if entry.matches(tag)), None)


def description(tag: str) -> str:
    """What TensorBoard shows beside the chart of ``tag`` (markdown): its meaning and rule of thumb; '' if unknown."""
    entry = find(tag)
    return f"{entry.meaning}. *Healthy:* {entry.healthy}." if entry else ""


def script_tags(script: str, when: Iterable[str] = ()) -> set[str]:
    """The tags ``script`` writes, with the optional ones whose condition is in ``when``."""
    if script not in SCRIPTS:
        raise RLBreakoutError(f"no tags registered for {script!r}; add it to SCRIPTS in rlbreakout/tags.py.")
    wanted = set(when)
    return {tag for writes in SCRIPTS[script] if not writes.when or writes.when in wanted for tag in writes.tags}


# %% The README tables
#: ``<!-- tags: NAME -->`` blocks: a meanings table of what those scripts write, or which script writes what.
MEANINGS_BLOCKS: dict[str, tuple[str, ...]] = {
    "chapter1": ("1.3_train",),
    "ppo": ("0.3_demo", "1.3_train", "2.1_envs", "2.2_callbacks", "2.3_copying_hp_zoo", "2.4_ppo_atari_from_scratch",
            "2.5_ppo_fast", "3.3_aimbot_training", "4.0_wrapperOptuna_PPO", "4.1_PPO_env_comparison",
            "4.2_PPO_tuning_grid", "4.3_PPO_tuning_schedules"),
    "chapter5": ("5.1_jerk", "5.2_ppo_sonic", "5.3_dqn_sonic"),
}
SCRIPTS_BLOCKS: dict[str, tuple[str, ...]] = {
    "chapter0-scripts": ("0.3_demo",),
    "chapter2-scripts": ("1.3_train", "2.1_envs", "2.2_callbacks", "2.3_copying_hp_zoo", "2.4_ppo_atari_from_scratch",
                         "2.5_ppo_fast"),
    "chapter3-scripts": ("3.3_aimbot_training",),
    "chapter4-scripts": ("4.0_wrapperOptuna_PPO", "4.1_PPO_env_comparison", "4.2_PPO_tuning_grid",
                         "4.3_PPO_tuning_schedules"),
    "chapter5-scripts": ("5.1_jerk", "5.2_ppo_sonic", "5.3_dqn_sonic"),
}
#: The comment pair around a generated block (the results tables use ``results:``, see rlbreakout/results/tables.py).
TAG_BLOCK = re.compile(r"(<!-- tags: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /tags: (?P=name) -->)", re.S)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_meanings(scripts: Iterable[str]) -> str:
    """A table of every tag those scripts write, in registry order: tag, what it is, healthy."""
    written = {tag for script in scripts for writes in SCRIPTS[script] for tag in writes.tags}
    entries = {find(tag) for tag in written}
    lines = ["| tag | what it is | healthy (rule of thumb) |", "|---|---|---|"]
    lines += [f"| `{tag.name}` | {_cell(tag.meaning)} | {_cell(tag.healthy)} |" for tag in TAGS if tag in entries]
    return "\n".join(lines)


def compact(tags: Iterable[str]) -> str:
    """``rollout/{ep_rew_mean, ep_len_mean}``: the tags grouped by everything before their last ``/``."""
    groups: dict[str, list[str]] = {}
    for tag in tags:
        head, _, leaf = tag.rpartition("/")
        groups.setdefault(head, []).append(leaf)
    return ", ".join(f"`{head}/{leaves[0]}`" if len(leaves) == 1 else f"`{head}/{{{', '.join(leaves)}}}`"
                     for head, leaves in groups.items())


def _named(tags: tuple[str, ...], used: list[str]) -> str:
    """``tags`` compacted, a named group (:data:`GROUP_NAMES`) written as its name and noted in ``used``."""
    parts = []
    for group, name in GROUP_NAMES.items():
        if set(group) <= set(tags):
            parts.append(name)
            if name not in used:
                used.append(name)
            tags = tuple(tag for tag in tags if tag not in group)
    return ", ".join(parts + ([compact(tags)] if tags else []))


def render_scripts(scripts: Iterable[str]) -> str:
    """A table of which script writes which tags, and which flag turns the optional ones on."""
    scripts = tuple(scripts)
    lines, used = ["| script | writes | and with |", "|---|---|---|"], []
    for script in scripts:
        always = "; ".join(_named(writes.tags, used) for writes in SCRIPTS[script] if not writes.when)
        optional = "; ".join(f"{writes.when}: {_named(writes.tags, used)}" for writes in SCRIPTS[script] if writes.when)
        lines.append(f"| `{script}.py` | {always} | {optional or '–'} |")
    notes = [f"{name[0].upper()}{name[1:]}: {compact(group)}." for group, name in GROUP_NAMES.items() if name in used]
    if any("<eval env>" in tag for script in scripts for writes in SCRIPTS[script] for tag in writes.tags):
        notes.append(f"{EVAL_ENV_NOTE}.")
    return "\n".join(lines + ([""] + notes if notes else []))


def render_block(name: str) -> str:
    """The text of the tag block called ``name``."""
    if name in MEANINGS_BLOCKS:
        return render_meanings(MEANINGS_BLOCKS[name])
    if name in SCRIPTS_BLOCKS:
        return render_scripts(SCRIPTS_BLOCKS[name])
    raise RLBreakoutError(f"unknown tags block {name!r}; use one of {', '.join([*MEANINGS_BLOCKS, *SCRIPTS_BLOCKS])}.")


def rewrite_tag_blocks(text: str, render: Callable[[str], str] = render_block) -> str:
    """``text`` with every tag block's body replaced by ``render(name)``."""
    return TAG_BLOCK.sub(lambda m: f"{m.group(1)}{render(m.group('name'))}\n{m.group(4)}", text)


def tag_block_names(text: str) -> list[str]:
    return [m.group("name") for m in TAG_BLOCK.finditer(text)]
