"""A study's plan as one value, built once by the CLI and handed to the dry run, the bill,
study.json and the launcher: the spec to run, the stages it grew by, the phases it previews, and
the experiments of its first phase (a protocol's final phase is planned once its searches have
chosen the configurations it trains)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from study.growth import Stage, recorded_stages
from study.phase import Phase
from study.plan import final_phase, new_trials, phases
from study.spec import StudySpec


@dataclass(frozen=True)
class StudyPlan:
    """`spec` is the study as it will stand; `stages` what it covered at its start and after each
    growth (this run's included), each as a spec; `phases` the whole study's phases (the dry run
    shows them, study.json counts them); `first` one experiment of the first phase per stage
    with new trials (`grid`, `grid+1`, ...)."""

    spec: StudySpec
    stages: tuple[StudySpec, ...]
    phases: tuple[Phase, ...]
    first: tuple[Phase, ...]

    def final(self, best: dict[tuple[str, str], dict[str, Any]]) -> tuple[Phase, ...]:
        """A protocol's final experiments, one per stage with new trials, at the `best` searched
        configuration of each dataset x row."""
        return staged(self.stages, lambda stage: final_phase(stage, best))


def plan_study(spec: StudySpec, record: dict[str, Any] | None, stage: Stage | None) -> StudyPlan:
    """The plan of `spec`, a new study when `record` (its study.json) is None, else one resumed,
    grown by `stage` when that is given; refused when its rows do not share their conditions."""
    planned, stages = tuple(phases(spec)), stage_specs(spec, record, stage)
    first = staged(stages, lambda part: phases(part)[0]) if len(stages) > 1 else planned[:1]
    return StudyPlan(spec, stages, planned, first)


def replanned(
    plan: StudyPlan, spec: StudySpec, record: dict[str, Any] | None, stage: Stage | None
) -> StudyPlan:
    """`plan` when the study is still what it was built for, else a new plan: the CLI checks a
    plan before it takes the study's lease and runs it after, and another driver may have grown
    the study between the two."""
    unchanged = plan.spec == spec and plan.stages == stage_specs(spec, record, stage)
    return plan if unchanged else plan_study(spec, record, stage)


def stage_specs(spec: StudySpec, record: dict[str, Any] | None, stage: Stage | None) -> tuple[StudySpec, ...]:
    """`spec` narrowed to each stage the study will have recorded: itself for a new study."""
    if record is None:
        return (spec,)
    return tuple(part.spec(spec) for part in recorded_stages(record, stage))


def staged(stages: tuple[StudySpec, ...], plan: Callable[[StudySpec], Phase]) -> tuple[Phase, ...]:
    """One phase planned for every stage: all of it for the first stage, then each later
    stage's trials that the stage before did not cover."""
    found = [plan(stages[0])]
    for index in range(1, len(stages)):
        if part := new_trials(stages[index], plan(stages[index]), stages[index - 1], index):
            found.append(part)
    return tuple(found)
