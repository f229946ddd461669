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
