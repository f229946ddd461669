"""Where a study's records live: a local folder or a URI (s3://, gs://, hdfs://, or any scheme
fsspec knows), as one pyarrow filesystem and a path on it. Ray Tune writes through the same
filesystems, so the study's writer and its readers agree on every path.

An S3-compatible store (MinIO, Ceph) is reached through the standard AWS_ENDPOINT_URL or
AWS_ENDPOINT_URL_S3 variables, which pyarrow's S3 client honours."""

from pathlib import Path

import pyarrow
import pyarrow.fs


def is_uri(location: str) -> bool:
    """True for `scheme://...` locations other than plain local files."""
    return "://" in str(location) and not str(location).startswith("file://")


def local_path(location: str) -> Path:
    """A local location as an absolute path (`~` expanded, `file://` removed)."""
    return Path(str(location).removeprefix("file://")).expanduser().resolve()


def join(location: str, *parts: str) -> str:
    """`location/part/...` for a folder or a URI."""
    if is_uri(location):
        return "/".join([str(location).rstrip("/"), *parts])
    return str(local_path(location).joinpath(*parts))


def filesystem(location: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """The filesystem holding `location` and the path on it; pyarrow's own filesystems first,
    any other scheme through fsspec."""
    if not is_uri(location):
        return pyarrow.fs.LocalFileSystem(), str(local_path(location))
    try:
        return pyarrow.fs.FileSystem.from_uri(location)
    except pyarrow.ArrowInvalid:
        return _fsspec_filesystem(location)


def native_scheme(location: str) -> bool:
    """Whether pyarrow resolves `location` by itself (then Ray can be given the URI as it is)."""
    if not is_uri(location):
        return True
    try:
        pyarrow.fs.FileSystem.from_uri(location)
    except pyarrow.ArrowInvalid:
        return False
    return True


def _fsspec_filesystem(location: str) -> tuple[pyarrow.fs.FileSystem, str]:
    import fsspec.core

    fs, path = fsspec.core.url_to_fs(location)
    return pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs)), path


def read_bytes(location: str) -> bytes:
    """The whole content of one file."""
    fs, path = filesystem(location)
    with fs.open_input_stream(path) as handle:
        return handle.read()


def write_bytes(location: str, data: bytes) -> None:
    """Write one file, replacing it (object stores replace whole objects atomically)."""
    fs, path = filesystem(location)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as handle:
        handle.write(data)


def exists(location: str) -> bool:
    fs, path = filesystem(location)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def is_folder(location: str) -> bool:
    """A local folder, or a URI with objects under it (object stores have no empty folders)."""
    fs, path = filesystem(location)
    return fs.get_file_info(path).type == pyarrow.fs.FileType.Directory


def files_under(location: str) -> list[tuple[str, pyarrow.fs.FileInfo]]:
    """Every file below `location` (none when it does not exist), as its path relative to
    `location` with its size and modification time: one listing, no file is opened."""
    return list_files(*filesystem(location))


def list_files(fs: pyarrow.fs.FileSystem, path: str) -> list[tuple[str, pyarrow.fs.FileInfo]]:
    """files_under for a path on a filesystem already resolved."""
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=True, allow_not_found=True))
    base = path.rstrip("/") + "/"
    return [(info.path.removeprefix(base), info) for info in infos if info.is_file]


def upload_folder(folder: Path, location: str) -> None:
    """Copy every file under the local `folder` to `location`, keeping relative paths."""
    fs, path = filesystem(location)
    pyarrow.fs.copy_files(
        str(folder), path, source_filesystem=pyarrow.fs.LocalFileSystem(), destination_filesystem=fs
    )


def below(location: str, relative: str) -> str:
    """`location/relative`, keeping a local location as the user wrote it (relative or not)."""
    if not relative:
        return location
    return f"{location.rstrip('/')}/{relative}" if is_uri(location) else str(Path(location) / relative)
