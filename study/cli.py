"""The `gloss` command: run studies, list presets, manage data, analyse results.

Heavy modules (Ray, torch) are imported inside the handlers that need them, so `gloss presets`
and `gloss data list` start at once."""

import argparse
import gc
import sys
import warnings
from pathlib import Path

from common.errors import GlossError, StudyInterrupted
from common.records import DamagedRecordWarning

DEFAULT_SHOW_WARNING = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    """Entry point; a user's mistake prints one line (a spec's mistakes, one line each) and exits
    with status 2."""
    args = build_parser().parse_args(argv)
    warnings.showwarning = show_warning
    try:
        return args.handler(args)
    except GlossError as error:
        for problem in str(error).splitlines():  # a spec's mistakes, one a line
            print(f"gloss: error: {problem}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, StudyInterrupted):
        print("gloss: interrupted; `gloss run ... --resume` continues where it stopped.", file=sys.stderr)
        return 130


def entry_point() -> None:
    """The `gloss` console script: `main`, then an exit that skips Python's last garbage
    collection over every object torch, Ray and pandas left (over a second after a study here).
    Atexit handlers still run; finalizers of objects alive at exit were never promised. Tests
    call `main` itself, in a process that goes on."""
    code = main()
    gc.freeze()
    sys.exit(code)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Damaged records are the user's news, said in gloss's voice; other warnings as Python shows them."""
    if issubclass(category, DamagedRecordWarning):
        print(f"gloss: warning: {message}", file=sys.stderr)
    else:
        DEFAULT_SHOW_WARNING(message, category, filename, lineno, file, line)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gloss", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    add_run(commands)
    presets = commands.add_parser("presets", help="list the shipped presets, or print one")
    presets.add_argument("name", nargs="?")
    presets.set_defaults(handler=show_presets)
    schema = commands.add_parser("schema", help="print the JSON Schema of a study spec, for editors")
    schema.set_defaults(handler=show_schema)
    add_data(commands)
    add_analyze(commands)
    add_slurm(commands)
    add_status(commands)
    return parser


class VersionAction(argparse.Action):
    """`gloss --version`, worked out only when asked (other commands never run git)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from study.provenance import version_line

        print(version_line())
        parser.exit()


def add_run(commands) -> None:
    run = commands.add_parser("run", help="run a study from a spec file or a preset")
    run.add_argument("spec", metavar="SPEC_OR_PRESET")
    run.add_argument("--data-dir", help="folder of <dataset>/train.jsonl.gz (default $GLOSS_DATA_DIR)")
    run.add_argument("--storage", help="results folder or URI such as s3://bucket/prefix")
    run.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: local Ray)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted study")
    run.add_argument(
        "--take-over", action="store_true", help="run even if another driver holds the study's lease"
    )
    run.add_argument("--dry-run", action="store_true", help="print trials and resources, run nothing")
    run.add_argument(
        "--json",
        action="store_true",
        help="with --dry-run: one JSON object per phase, dataset and row, then the bill",
    )
    run.add_argument("--max-concurrent", type=int, metavar="N", help="at most N trials at once")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    run.add_argument(
        "--tracking",
        metavar="NAME[,NAME]",
        help="trackers: tensorboard, mlflow, wandb; none (overrides the spec)",
    )
    run.add_argument("--dashboard", action="store_true", help="start Ray's dashboard on 127.0.0.1")
    run.add_argument("--no-report", action="store_true", help="end with the summary table, no HTML report")
    run.add_argument(
        "--verbose", action="store_true", help="show Ray's log lines and warnings here, not only in the log"
    )
    run.set_defaults(handler=run_command)


def add_data(commands) -> None:
    data = commands.add_parser("data", help="list, check or download datasets")
    actions = data.add_subparsers(required=True, metavar="ACTION")
    for name, handler, summary in (
        ("list", data_list, "datasets present, with counts"),
        ("check", data_check, "counts and checksums against the recorded ones"),
        ("download", data_download, "fetch and convert the public TextGCN files"),
    ):
        action = actions.add_parser(name, help=summary)
        action.add_argument("--data-dir", help="data folder (default $GLOSS_DATA_DIR or the cache)")
        if name != "list":
            action.add_argument("names", nargs="*", metavar="NAME", help="datasets (default: all five)")
        action.set_defaults(handler=handler)


def add_analyze(commands) -> None:
    analyze = commands.add_parser("analyze", help="figures, tests, tables and an HTML report of studies")
    analyze.add_argument("studies", nargs="+", metavar="STUDY_DIR")
    analyze.add_argument("--out", help="output folder (default: <first study>/report)")
    analyze.add_argument("--summary", action="store_true", help="print the headline table only")
    analyze.add_argument("--baseline", default="ce", help="the loss others are tested against")
    analyze.add_argument(
        "--rope", type=float, default=0.5, help="region of practical equivalence, in points (default 0.5)"
    )
    analyze.add_argument("--correction", default="holm", help="multiple-test correction (statsmodels' names)")
    analyze.add_argument(
        "--hierarchical", action="store_true", help="baycomp's hierarchical test across datasets (needs Stan)"
    )
    analyze.add_argument(
        "--together", action="store_true", help="compare integrated and standalone rows as one experiment"
    )
    analyze.set_defaults(handler=analyze_command)


def add_slurm(commands) -> None:
    slurm = commands.add_parser("slurm", help="write (and submit) a SLURM job that runs a study")
    slurm.add_argument("spec", metavar="SPEC_OR_PRESET")
    slurm.add_argument("--storage", help="a folder every node shares, or a URI (default: the spec's)")
    slurm.add_argument("--nodes", type=int, help="nodes of the job (template: 2)")
    slurm.add_argument("--cpus-per-task", type=int, help="CPUs per node (default: 8, or a trial's if more)")
    slurm.add_argument(
        "--gpus-per-node", type=int, help="GPUs per node (default: a trial's GPUs; none for a CPU spec)"
    )
    slurm.add_argument("--time", help="the job's time limit, e.g. 2-00:00:00 (template: 24:00:00)")
    slurm.add_argument("--partition", help="the partition (queue) to run in")
    slurm.add_argument("--account", help="the account charged for the job")
    slurm.add_argument("--qos", help="the quality of service")
    slurm.add_argument("--mem", help="memory per node, e.g. 64G")
    slurm.add_argument(
        "--sbatch-line",
        action="append",
        default=[],
        metavar="OPTION",
        help="any other sbatch option, e.g. --sbatch-line=--constraint=a100 (repeatable)",
    )
    slurm.add_argument(
        "--setup",
        metavar="SHELL_LINE",
        help="run on every node before Ray and gloss, e.g. 'module load cuda && source venv/bin/activate'",
    )
    slurm.add_argument(
        "--signal-before",
        type=int,
        metavar="SECONDS",
        help="stop the study this long before the time limit, then requeue the job (template: 300)",
    )
    slurm.add_argument("--resume", action="store_true", help="continue an interrupted study")
    slurm.add_argument(
        "--take-over", action="store_true", help="run even if another driver holds the study's lease"
    )
    slurm.add_argument("--max-concurrent", type=int, metavar="N", help="at most N trials at once")
    slurm.add_argument("--out", type=Path, help="the script to write (default gloss-NAME.sbatch)")
    slurm.add_argument("--submit", action="store_true", help="hand the script to sbatch")
    slurm.set_defaults(handler=slurm_command)


def slurm_command(args: argparse.Namespace) -> int:
    """Check the spec, the storage and the request here, before the job waits in the queue, then
    write the filled cluster/slurm.sbatch and, with --submit, submit it."""
    from study import slurm

    spec = load_spec(args.spec, [])
    cpus, gpus = slurm.node_size(spec.resources, args.cpus_per_task, args.gpus_per_node)
    slurm.check_continuation(args.time, args.signal_before)
    flags = {"--resume": args.resume, "--take-over": args.take_over}
    gloss_args = [flag for flag, given in flags.items() if given]
    if args.max_concurrent is not None:
        gloss_args += ["--max-concurrent", str(args.max_concurrent)]
    job = slurm.Job(
        spec=str(Path(args.spec).resolve()) if Path(args.spec).is_file() else args.spec,
        storage=slurm.shared_storage(args.storage or spec.storage, args.nodes),
        name=spec.name,
        gloss_args=tuple(gloss_args),
        nodes=args.nodes,
        cpus_per_task=cpus,
        gpus_per_node=gpus,
        time=args.time,
        partition=args.partition,
        account=args.account,
        qos=args.qos,
        mem=args.mem,
        sbatch_lines=tuple(args.sbatch_line),
        setup=args.setup,
        signal_before_s=args.signal_before,
    )
    script = slurm.write_script(job, args.out or Path(f"gloss-{spec.name}.sbatch"))
    print(f"wrote {script}; submit it with: sbatch {script}" if not args.submit else slurm.submit(script))
    return 0


def add_status(commands) -> None:
    status = commands.add_parser("status", help="a study's progress, best scores and what --resume reruns")
    status.add_argument("study", metavar="STUDY_DIR_OR_URI")
    status.add_argument("--json", action="store_true", help="one JSON object (versioned; see README)")
    status.set_defaults(handler=status_command)


def status_command(args: argparse.Namespace) -> int:
    """Print the study's status from its storage alone (no Ray connection)."""
    import json

    from study.status import as_json, render, study_status

    root = study_location(args.study)
    if study_parts(root, "study") is None:
        raise GlossError(
            f"{args.study}: not a gloss study (no study.json or phase folder in it); give the folder "
            "`gloss run` wrote, <storage>/<study name>."
        )
    status = study_status(root)
    print(json.dumps(as_json(status), indent=2) if args.json else render(status))
    return 0


def study_location(study: str) -> str:
    """A study folder (`~` expanded) or URI that exists; refused in one sentence otherwise."""
    from common.storage import is_uri

    check_study(study)
    return study if is_uri(study) else str(Path(study).expanduser())


def study_parts(location: str, *kinds: str) -> tuple[str, ...] | None:
    """The folders of `location` to read records from when it is one of `kinds` (study, phase,
    trial); None when it is not."""
    from common.layout import layout

    found = layout(location)
    return found.parts if found.kind in kinds else None


def load_spec(name: str, overrides: list[str]):
    """A spec from a YAML file or a preset name."""
    from study.presets import preset_text
    from study.spec import apply_overrides, load_spec_file, parse_yaml, spec_from_mapping

    if Path(name).is_file():
        return load_spec_file(Path(name), overrides)
    data = apply_overrides(parse_yaml(preset_text(name), f"preset {name}"), overrides)
    return spec_from_mapping(data, f"preset {name}")


def run_command(args: argparse.Namespace) -> int:
    from study.ray_session import prepare_environment, refuse_copied_secrets

    prepare_environment(args.address)
    from study.launch import storage_root
    from study.lease import study_lease
    from study.plan import check_inputs, with_data_dir
    from study.storage_check import check_writable
    from study.study_plan import plan_study
    from study.tracking import check_trackers, parse_tracking_flag

    if args.json and not args.dry_run:
        raise GlossError("--json: it prints the plan of --dry-run; add --dry-run.")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise GlossError(f"--max-concurrent {args.max_concurrent}: give a number of trials >= 1.")
    data_dir = str(Path(args.data_dir).expanduser().resolve()) if args.data_dir else None
    spec = with_data_dir(load_spec(args.spec, args.set), data_dir)
    if args.tracking is not None:
        spec = spec.model_copy(update={"tracking": parse_tracking_flag(args.tracking)})
    storage = args.storage or spec.storage
    root = storage_root(storage, spec.name)
    plan = plan_study(*resumed(args, spec, root))
    check_inputs(plan.spec, dry_run=args.dry_run)
    check_trackers(plan.spec.tracking, root)
    if args.dry_run:
        from study.cost import study_cost

        costs = study_cost(plan.spec, plan.phases, args.max_concurrent)
        print_json(plan.phases, costs) if args.json else print_plan(plan, root, costs)
        return 0
    refuse_copied_secrets()
    check_writable(root)
    with study_lease(root, args.take_over):
        return run_and_report(args, spec, storage, root, plan)


def resumed(args: argparse.Namespace, spec, root: str):
    """The spec to run, the study's study.json (None for a new study) and the stage this run
    grows it by (study/growth.py): a study that exists is continued only with --resume, and only
    with seeds, datasets or rows added."""
    from study.growth import grown
    from study.provenance import read_provenance

    record = None if args.dry_run and not args.resume else read_provenance(root)
    if record is None:
        return spec, None, None
    if not args.resume:
        raise GlossError(
            f"study '{spec.name}' already exists in {root}; pass --resume to continue or grow it, or "
            "choose another --storage or study name."
        )
    to_run, stage = grown(record, spec)
    return to_run, record, stage


def run_and_report(args: argparse.Namespace, spec, storage: str, root: str, checked) -> int:
    """Connect to Ray, check the cluster, record the study (and its growth), run every phase,
    then summarise and report. `spec` is the one given, before `resumed` adapts it; `checked` is
    the plan checked before the lease, which runs unless the study changed meanwhile (another
    driver grew it)."""
    from study.gpu_check import check_gpus
    from study.launch import RunOptions, run_study, warm_caches
    from study.provenance import write_provenance
    from study.ray_session import connected
    from study.run_log import log_location, messages_to
    from study.storage_check import check_nodes_share
    from study.study_plan import replanned

    with (
        messages_to(log_location(root, spec.name), args.verbose) as log,
        connected(args.address, dashboard=args.dashboard),
    ):
        check_gpus(spec.resources.gpu, args.address)
        if args.address is None:
            warm_caches(spec)
        else:
            check_nodes_share(root)
        print(f"gloss: Ray's messages and warnings go to {log}", file=sys.stderr)
        spec, record, stage = resumed(args, spec, root)  # again, now that this driver holds the lease
        plan = replanned(checked, spec, record, stage)
        written = write_provenance(root, spec, record, plan.phases, stage)
        if stage is not None:
            added = growth_words(written["growth"][-1]["added"])
            print(f"gloss: the study grows by {added}", file=sys.stderr)
        paths = run_study(plan, RunOptions(storage, args.resume, args.max_concurrent))
    failed = print_summary(paths)
    if not args.no_report:
        write_report(paths, f"{root}/report")
    if failed:
        print(f"gloss: {failed} trials failed (see above); the others' results are kept.", file=sys.stderr)
    return 1 if failed else 0


def growth_words(added: dict) -> str:
    """{'seeds': [3, 4], 'losses': ['scl']} -> 'seeds 3, 4; rows scl'."""
    from study.growth import row_name

    names = {"seeds": "seeds", "datasets": "datasets", "losses": "rows"}
    return "; ".join(
        f"{names[key]} {', '.join(str(row_name(v)) if key == 'losses' else str(v) for v in values)}"
        for key, values in added.items()
    )


def print_plan(plan, root: str, costs: dict | str) -> None:
    """The dry run's plan: the study, its shared conditions, each phase's preview and bill."""
    from study.cost import ASSUMED_MFU, GPU, PEAK_TFLOPS
    from study.fairness import shared_conditions

    spec = plan.spec
    resources = f"{spec.resources.cpu:g} CPU, {spec.resources.gpu:g} GPU per trial"
    print(f"study {spec.name} ({spec.kind}, {spec.fidelity} {spec.model}) -> {root}; {resources}")
    for line in shared_conditions(spec, plan.phases[-1].groups):
        print(line)
    for phase in plan.phases:
        print(f"\n{phase.name}: {phase.trials} trials")
        for line in phase.preview:
            print(f"  {line}")
        if isinstance(costs, dict):
            print(f"  cost: {costs[phase.name].describe()}")
    if isinstance(costs, dict):
        print(f"\ncost in total: {costs['total'].describe()}")
        print(
            f"  (every trial at its epoch bound, test split every epoch; {GPU} at {PEAK_TFLOPS:g} dense "
            f"bf16 TFLOP/s x an assumed MFU of {ASSUMED_MFU}, on the datasets' counted tokens)"
        )
    else:
        print(f"\ncost: {costs}")


def print_json(plan, costs: dict | str) -> None:
    """One JSON object per line for each (phase, dataset, row): its seeds, trial count, fixed
    config and search space; then one line {"cost": ...} with each phase's bill and the total
    (null with the reason in "why" where none is estimated)."""
    import json

    from study.cost import ASSUMED_MFU, GPU

    for phase in plan:
        for group in phase.groups:
            print(json.dumps(group.summary(), default=str))
    if isinstance(costs, str):
        print(json.dumps({"cost": None, "why": costs}))
    else:
        bills = {name: cost.summary() for name, cost in costs.items()}
        print(json.dumps({"cost": {"gpu": GPU, "mfu": ASSUMED_MFU, **bills}}))


def print_summary(paths: list[str]) -> int:
    """Print the headline table and notes on unusual trials; returns how many trials failed."""
    from analysis import final_results, load_runs, outcome_note, summary_table
    from analysis.summary import failed_trials

    final = final_results(load_runs(*paths))
    table = summary_table(final)
    print(table.to_string() if len(table) else "no trial finished")
    if note := outcome_note(final):
        print(note)
    return failed_trials(final)


def write_report(paths: list[str], out: str, baseline: str = "ce") -> None:
    """The HTML report and its figures and tables, in a folder or under a URI; where it is is
    printed for the user."""
    from analysis.report import build_report

    print(f"report: {build_report(*paths, out=out, baseline=baseline)}")


def analyze_command(args: argparse.Namespace) -> int:
    """The headline table, then per protocol the verdicts with their power, then the report."""
    from analysis import check_settings, compare_study, comparison_text, final_results, load_runs
    from analysis.bayes import stan_available
    from analysis.report import build_report
    from common.storage import join

    settings = {"rope": args.rope / 100, "correction": args.correction, "baseline": args.baseline}
    settings["split"] = not args.together
    if not 0 <= args.rope < 20:
        raise GlossError(
            f"--rope {args.rope}: the ROPE is in points of the metric, from 0 to 20 (default 0.5)."
        )
    try:
        check_settings(rope=settings["rope"], correction=args.correction)
    except ValueError as error:
        raise GlossError(f"--correction {args.correction}: {error}") from None
    if args.hierarchical and not stan_available():
        raise GlossError(
            "gloss analyze: --hierarchical needs Stan; install it (pip install pystan) or drop the flag."
        )
    roots = [study_location(study) for study in args.studies]
    parts = [part for root in roots for part in analysed_parts(root)]
    for root in roots:
        if note := running_note(root):
            print(note)
    print_summary(parts)
    print()
    result = compare_study(final_results(load_runs(*parts)), hierarchical=args.hierarchical, **settings)
    print(comparison_text(result))
    if not args.summary:
        out = args.out or join(roots[0], "report")
        print(f"report: {build_report(*parts, out=out, hierarchical=args.hierarchical, **settings)}")
    return 0


def analysed_parts(root: str) -> tuple[str, ...]:
    """The record folders of a study, phase or trial folder with at least one finished trial;
    anything else is refused in one sentence."""
    from analysis import final_results, load_runs
    from analysis.select import finished

    parts = study_parts(root, "study", "phase", "trial")
    if parts is None:
        raise GlossError(
            f"{root}: not a gloss study (no study.json, phase folder or trial records in it); give "
            "the folder `gloss run` wrote, <storage>/<study name>, or one of its phases or trials."
        )
    try:
        done = len(finished(final_results(load_runs(*parts)))) if parts else 0
    except FileNotFoundError:
        done = 0
    if not done:
        raise GlossError(
            f"{root}: no trial has finished yet, so there is nothing to analyse; `gloss status {root}` "
            "shows where the study stands."
        )
    return parts


def running_note(root: str) -> str:
    """For a study a driver is running: that it runs and how many trials are left ('' else)."""
    from study.status import study_status

    if study_parts(root, "study") is None:
        return ""
    status = study_status(root)
    if not status.driver:
        return ""
    left = sum(max((p.total or p.seen + p.pending) - p.ended, 0) for p in status.phases)
    return f"study running ({status.driver}): {left} trials left; this analysis covers the finished ones"


def check_study(study: str) -> None:
    """A study folder or URI that exists (and, for a URI, a store that answers)."""
    import pyarrow

    from common.storage import is_folder, is_uri

    try:
        found = is_folder(study)
    except (OSError, ValueError, ImportError, pyarrow.ArrowException) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise GlossError(
            f"{study}: cannot read it ({reason}); check the URI, AWS_ENDPOINT_URL and credentials."
        ) from None
    if not found:
        where = "URI" if is_uri(study) else "folder"
        raise GlossError(
            f"{study}: no such study {where}; give the one `gloss run` wrote (<storage>/<name>)."
        )


def show_presets(args: argparse.Namespace) -> int:
    from study.presets import preset_descriptions, preset_text

    if args.name:
        print(preset_text(args.name), end="")
        return 0
    for name, description in preset_descriptions().items():
        print(f"{name:<16} {description}")
    return 0


def show_schema(args: argparse.Namespace) -> int:
    """The spec's JSON Schema on stdout: `gloss schema > gloss-spec.schema.json`."""
    import json

    from study.spec import spec_schema

    print(json.dumps(spec_schema(), indent=2))
    return 0


def data_folder(args: argparse.Namespace, must_exist: bool = True) -> Path:
    from common.paths import resolve_data_dir

    return resolve_data_dir(args.data_dir, must_exist=must_exist)


def data_list(args: argparse.Namespace) -> int:
    from trainables.data.inventory import list_datasets

    folder = data_folder(args)
    print(f"{folder}\n{'dataset':<10} {'train':>7} {'test':>7} {'classes':>7}")
    for item in list_datasets(folder):
        counts = f"{item.train:>7} {item.test:>7} {item.classes:>7}" if not item.problem else "  missing"
        print(f"{item.name:<10} {counts}")
    return 0


def data_check(args: argparse.Namespace) -> int:
    from trainables.data.inventory import check_dataset

    folder = data_folder(args)
    failed = False
    for name in known_names(args.names):
        problems = check_dataset(name, folder)
        failed |= bool(problems)
        print(f"{name:<10} {'ok' if not problems else problems[0]}")
        for problem in problems[1:]:
            print(f"{'':<10} {problem}")
    return 1 if failed else 0


def data_download(args: argparse.Namespace) -> int:
    from trainables.data.download import download_dataset

    folder = data_folder(args, must_exist=False)
    for name in known_names(args.names):
        print(f"{name}: written to {download_dataset(name, folder)}")
    return 0


def known_names(names: list[str]) -> list[str]:
    from common.errors import suggest
    from trainables.data.registry import KNOWN_DATASETS

    for name in names:
        if name not in KNOWN_DATASETS:
            raise GlossError(
                f"unknown dataset '{name}'{suggest(name, KNOWN_DATASETS)}; "
                f"known: {', '.join(KNOWN_DATASETS)}."
            )
    return names or list(KNOWN_DATASETS)


if __name__ == "__main__":
    entry_point()
