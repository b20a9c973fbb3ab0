"""Model affinity: a unit goes to a free runner that already holds its models, when there is one."""

from __future__ import annotations


def pick_runner(free: list, holds: dict, models_key: str):
    """The runner from `free` to give a unit whose model set is `models_key`: one whose last unit used the same
    models (warm weights), else one that has run nothing yet, else the first free one. `holds`: runner -> key."""
    for runner in free:
        if holds.get(runner) == models_key:
            return runner
    for runner in free:
        if runner not in holds:
            return runner
    return free[0]
