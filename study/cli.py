"""The `gloss` command: run studies, list presets, manage data, analyse results.

Heavy modules (Ray, torch) are imported inside the handlers that need them, so `gloss presets`
and `gloss data list` start at once."""

import argparse
import sys
from pathlib import Path

from trainables.errors import GlossError


def main(argv: list[str] | None = None) -> int:
    """Entry point; a user's mistake prints one line and exits with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except GlossError as error:
        print(f"gloss: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gloss: interrupted; `gloss run ... --resume` continues where it stopped.", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gloss", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    add_run(commands)
    presets = commands.add_parser("presets", help="list the shipped presets, or print one")
    presets.add_argument("name", nargs="?")
    presets.set_defaults(handler=show_presets)
    add_data(commands)
    add_analyze(commands)
    return parser


def add_run(commands) -> None:
    run = commands.add_parser("run", help="run a study from a spec file or a preset")
    run.add_argument("spec", metavar="SPEC_OR_PRESET")
    run.add_argument("--data-dir", help="folder of <dataset>/train.jsonl.gz (default $GLOSS_DATA_DIR)")
    run.add_argument("--storage", help="results folder or URI such as s3://bucket/prefix")
    run.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: local Ray)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted study")
    run.add_argument("--dry-run", action="store_true", help="print trials and resources, run nothing")
    run.add_argument(
        "--json", action="store_true", help="with --dry-run: one JSON object per phase, dataset and row"
    )
    run.add_argument("--max-concurrent", type=int, metavar="N", help="at most N trials at once")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    run.add_argument("--dashboard", action="store_true", help="start Ray's dashboard on 127.0.0.1")
    run.add_argument("--no-report", action="store_true", help="end with the summary table, no HTML report")
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
    analyze.set_defaults(handler=analyze_command)


def load_spec(name: str, overrides: list[str]):
    """A spec from a YAML file or a preset name."""
    from study.presets import preset_text
    from study.spec import apply_overrides, load_spec_file, parse_yaml, spec_from_mapping

    if Path(name).is_file():
        return load_spec_file(Path(name), overrides)
    data = apply_overrides(parse_yaml(preset_text(name), f"preset {name}"), overrides)
    return spec_from_mapping(data, f"preset {name}")


def run_command(args: argparse.Namespace) -> int:
    from study.ray_session import prepare_environment

    prepare_environment(args.address)
    from study.launch import RunOptions, run_study, storage_root, warm_caches
    from study.plan import check_inputs, phases, with_data_dir
    from study.ray_session import connect
    from study.storage_check import check_nodes_share, check_writable

    if args.json and not args.dry_run:
        raise GlossError("--json: it prints the plan of --dry-run; add --dry-run.")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise GlossError(f"--max-concurrent {args.max_concurrent}: give a number of trials >= 1.")
    data_dir = str(Path(args.data_dir).expanduser().resolve()) if args.data_dir else None
    spec = with_data_dir(load_spec(args.spec, args.set), data_dir)
    storage = args.storage or spec.storage
    plan = phases(spec)
    check_inputs(spec, model=not args.dry_run)
    root = storage_root(storage, spec.name)
    if args.dry_run:
        print_json(plan) if args.json else print_plan(spec, plan, root)
        return 0
    check_writable(root)
    connect(args.address, dashboard=args.dashboard)
    if args.address is None:
        warm_caches(spec)
    else:
        check_nodes_share(root)
    paths = run_study(spec, RunOptions(storage, args.resume, args.max_concurrent))
    if "://" in root:
        print(f"results are in {root}; copy them here and run `gloss analyze` on the copy.")
        return 0
    print_summary(paths)
    if not args.no_report:
        write_report(paths, f"{root}/report")
    return 0


def print_plan(spec, plan, root: str) -> None:
    from study.fairness import shared_conditions

    resources = f"{spec.resources.cpu:g} CPU, {spec.resources.gpu:g} GPU per trial"
    print(f"study {spec.name} ({spec.kind}, {spec.fidelity} {spec.model}) -> {root}; {resources}")
    for line in shared_conditions(spec, plan[-1].groups):
        print(line)
    for phase in plan:
        print(f"\n{phase.name}: {phase.trials} trials")
        for line in phase.preview:
            print(f"  {line}")


def print_json(plan) -> None:
    """One JSON object per line for each (phase, dataset, row): its seeds, trial count, fixed
    config and search space."""
    import json

    for phase in plan:
        for group in phase.groups:
            print(json.dumps(group.summary(), default=str))


def print_summary(paths: list[str]) -> None:
    from analysis import final_results, load_runs, outcome_note, summary_table

    final = final_results(load_runs(*paths))
    table = summary_table(final)
    print(table.to_string() if len(table) else "no trial finished")
    if note := outcome_note(final):
        print(note)


def write_report(paths: list[str], out: str, baseline: str = "ce") -> None:
    """The HTML report and its figures and tables; a local path is printed for the user."""
    from analysis.report import build_report

    print(f"report: {build_report(*paths, out=out, baseline=baseline)}")


def analyze_command(args: argparse.Namespace) -> int:
    missing = [s for s in args.studies if not Path(s).expanduser().is_dir()]
    if missing:
        raise GlossError(
            f"{missing[0]}: no such study folder; give the folder `gloss run` wrote (<storage>/<name>)."
        )
    paths = [str(Path(s).expanduser()) for s in args.studies]
    print_summary(paths)
    if not args.summary:
        write_report(paths, args.out or f"{paths[0]}/report", args.baseline)
    return 0


def show_presets(args: argparse.Namespace) -> int:
    from study.presets import preset_descriptions, preset_text

    if args.name:
        print(preset_text(args.name), end="")
        return 0
    for name, description in preset_descriptions().items():
        print(f"{name:<16} {description}")
    return 0


def data_folder(args: argparse.Namespace, must_exist: bool = True) -> Path:
    from trainables.paths import resolve_data_dir

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
    from trainables.data.registry import KNOWN_DATASETS
    from trainables.typed import suggest

    for name in names:
        if name not in KNOWN_DATASETS:
            raise GlossError(
                f"unknown dataset '{name}'{suggest(name, KNOWN_DATASETS)}; "
                f"known: {', '.join(KNOWN_DATASETS)}."
            )
    return names or list(KNOWN_DATASETS)


if __name__ == "__main__":
    sys.exit(main())
