"""The vision-budget actions, defined once. Adding one is a row in ACTIONS (docs/adding-an-action.md).

Everything else reads this table: the params schema (`vision_budget.<name>` for each action that looks,
`train.stage1.mix.<name>` for every action), the policy head's width, the baselines, predict's
`--policy` choices, the encoder, generation, prefix reuse and the reports.

The order is the head's output order and the order of every per-action list: the text-only action
first (its pass gives the policy's features and every other prompt's shared prefix), then the vision
actions from least to most detail. The last one is the richest: stage 1's warm-up trains it, and its
token count is the default unit of cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from vovnet import VovnetError


@dataclass(frozen=True)
class Action:
    name: str  # the key in params.yaml and in every output (ratio_<name>, outputs[<name>])
    label: str  # what the docs and the logs call it
    cli: str  # `vovnet predict --policy` spelling
    pixels: tuple[int, int] | None  # the default (min_pixels, max_pixels) budget; None: text-only
    mix: float  # the default stage-1 weight (train.stage1.mix.<name>)
    thinking: bool = False  # answered by the Thinking model when model.use_thinking_for_full is set

    @property
    def text_only(self) -> bool:
        return self.pixels is None

    @property
    def baseline(self) -> str:
        """The name of the one-action baseline that always takes it, in the reports."""
        return "no_vision" if self.text_only else f"always_{self.name}"


ACTIONS: tuple[Action, ...] = (
    Action("no", "NO_VISION", "none", None, 0.2),
    Action("coarse", "COARSE_VISION", "coarse", (256, 1024), 0.2),
    Action("full", "FULL_VISION", "full", (16384, 65536), 0.6, thinking=True),
)


def check(table: tuple[Action, ...]) -> None:
    """The table's rules (an edit that breaks one fails at import, in one line)."""
    names, clis = [a.name for a in table], [a.cli for a in table]
    problems = []
    if len(set(names)) != len(names) or len(set(clis)) != len(clis):
        problems.append(f"names and CLI spellings must be unique (names {names}, cli {clis})")
    if "learned" in clis:
        problems.append("the CLI spelling 'learned' is predict's learned policy")
    if not table or not table[0].text_only or any(a.text_only for a in table[1:]):
        problems.append("exactly one text-only action (pixels None), and it comes first")
    budgets = [a.pixels for a in table if not a.text_only]
    if any(lo > hi for lo, hi in budgets) or budgets != sorted(budgets, key=lambda p: p[1]):
        problems.append(f"vision budgets need min <= max, ordered by max_pixels (got {budgets})")
    if problems:
        raise VovnetError("vovnet/actions.py: " + "; ".join(problems))


check(ACTIONS)

NAMES: tuple[str, ...] = tuple(a.name for a in ACTIONS)
TEXT: str = ACTIONS[0].name  # the text-only action
RICHEST: str = ACTIONS[-1].name  # the most detail
VISION: tuple[Action, ...] = ACTIONS[1:]  # the actions that read the image
CLI: tuple[str, ...] = tuple(a.cli for a in reversed(ACTIONS))  # predict --policy's one-action spellings


def index(name: str) -> int:
    """The action's position in the head's output and every per-action list."""
    return NAMES.index(name)


def by_name(name: str) -> Action:
    return ACTIONS[index(name)]


def by_cli(spelling: str) -> Action:
    return next(a for a in ACTIONS if a.cli == spelling)
