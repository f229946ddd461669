"""The study presets shipped inside the package (demo, paper, ablation-gloss, smoke)."""

import importlib.resources

import yaml

from common.errors import ConfigError, suggest


def preset_folder():
    return importlib.resources.files("study") / "presets"


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.name.removesuffix(".yaml") for p in preset_folder().iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    """The YAML of preset `name`."""
    names = preset_names()
    if name not in names:
        raise ConfigError(
            f"unknown preset or spec file '{name}'{suggest(name, names)}; presets are {', '.join(names)}, "
            "or give the path of a YAML spec."
        )
    return (preset_folder() / f"{name}.yaml").read_text()


def preset_descriptions() -> dict[str, str]:
    """Each preset's one-line description."""
    return {name: yaml.safe_load(preset_text(name)).get("description", "") for name in preset_names()}
