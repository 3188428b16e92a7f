"""Opening a built lipjax dataset, or saying exactly how to build it.

Every part of lipjax that reads a TFDS dataset ("name/config", e.g. "synthetic_lips/small")
goes through `open_builder` or `open_split`: an unknown name or config lists what exists, and
a dataset that is not built yet names the data dir and the command that builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow_datasets as tfds


def split_name_and_config(dataset: str) -> tuple[str, str | None]:
    """("synthetic_lips", "tiny") for "synthetic_lips/tiny" (a ":version" is dropped)."""
    name, _, config = dataset.partition(":")[0].partition("/")
    return name, config or None


def build_command(dataset: str, data_dir: str | None) -> str:
    """The shell command that builds `dataset` ("name/config") as array_record in
    `data_dir` (None: TFDS's default data dir)."""
    name, config = split_name_and_config(dataset)
    data_dir_flag = f" --data_dir={data_dir}" if data_dir else ""
    if name == "synthetic_lips":
        return (
            f"python -m data_pipeline.synthetic_lips build "
            f"--config={config or 'small'}{data_dir_flag}"
        )
    config_flag = f" --config={config}" if config else ""
    return (
        f"python -m data_pipeline.build {name} --manual_dir=DIR_OF_THE_DOWNLOAD"
        f"{config_flag}{data_dir_flag}"
    )


def open_builder(
    dataset: str, data_dir: str | None = None, *, prepared: bool = True, **builder_kwargs: Any
) -> tfds.core.DatasetBuilder:
    """The TFDS builder of `dataset` ("name/config") in `data_dir` (None or "": TFDS's
    default). `builder_kwargs` go to the builder (e.g. `num_workers`).

    Raises ValueError for a name or config TFDS does not know (with the configs it has), and,
    when `prepared` (the default), FileNotFoundError if the dataset is not built there, with
    the command that builds it.
    """
    import data_pipeline  # noqa: F401  (registers the lipjax builders with TFDS)

    data_dir = data_dir or None
    try:
        builder = tfds.builder(dataset, data_dir=data_dir, **builder_kwargs)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as error:
        name, _ = split_name_and_config(dataset)
        try:
            configs = f"; its configs: {sorted(tfds.builder_cls(name).builder_configs)}"
        except tfds.core.registered.DatasetNotFoundError:
            configs = ""
        first_line = str(error).splitlines()[0].rstrip(" :")  # TFDS then lists every dataset
        raise ValueError(f"dataset: unknown {dataset!r}: {first_line}{configs}") from error
    if prepared and not builder.is_prepared():
        raise FileNotFoundError(
            f"Dataset {dataset!r} is not built in the data dir {builder.data_dir_root} "
            f"(no {builder.data_dir}). Build it with:\n"
            f"  {build_command(dataset, builder.data_dir_root)}"
        )
    return builder


def open_split(dataset: str, split: str, data_dir: str | None = None) -> Sequence:
    """The random-access source of one split of a built dataset: the errors of
    `open_builder`, and ValueError naming the splits it has for an unknown `split`."""
    builder = open_builder(dataset, data_dir)
    if split not in builder.info.splits:
        raise ValueError(f"split: {dataset} has {sorted(builder.info.splits)}, not {split!r}")
    return builder.as_data_source(split=split)
