"""Download the BabyLM data into a data folder.

``download`` fetches the sets of a manifest: single files (``path``) or zip archives
(``extract`` maps a folder inside the archive to a folder of the data directory). Every
file streams into a temporary file next to its destination (``files.atomic_path``), is checked against its
sha256 and size (and a zip's members against their CRCs), and only then is renamed into place;
a failure deletes the temporary file. Where the manifest gives no sha256, the digest of the first
download known to be complete (the server's length matched, or the zip tested whole) is recorded
in ``sha256.lock.json`` in the download cache and checked on every later use; ``refresh``
fetches the sets again and records their digests anew.
"""

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from tqdm import tqdm

from classit.data.store import CHUNK, DATA_ENV, cache_dir, sha256sum
from classit.files import atomic_path, read_json, write_json
from classit.layout import FAST_EVAL, FULL_EVAL

TIMEOUT = 60
LOCK_FILE = "sha256.lock.json"

# BabyLM 2025 on its OSF project (https://osf.io/ryjfm/). OSF publishes no checksums, and
# folder zips (``?zip=``) are built on request, so digests are recorded on first use.
_OSF = "https://osf.io/download/{}/"
_OSF_FOLDER = "https://files.osf.io/v1/resources/ryjfm/providers/osfstorage/{}/?zip="
_EVALUATION_DATA = {"url": _OSF_FOLDER.format("6819f54f5dc6fc2bff0a7bba"), "name": "babylm-2025-evaluation_data.zip",
                    "sha256": None, "size": None}
MANIFEST = {
    "corpus": [  # strict track: 100M words of training text and the dev set
        {"url": _OSF.format("6819fdbfbecda878d4c61566"), "name": "babylm-2025-train_100M.zip", "sha256": None,
         "size": None, "extract": {"train_100M": "babylm-corpus/train_100M"}},
        {"url": _OSF.format("6819fd86ff83c3467ac0dcb0"), "name": "babylm-2025-dev.zip", "sha256": None,
         "size": None, "extract": {"dev": "babylm-corpus/dev"}},
    ],
    "corpus-small": [  # strict-small track: 10M words
        {"url": _OSF.format("6819fd8d91a6c4b6d4159848"), "name": "babylm-2025-train_10M.zip", "sha256": None,
         "size": None, "extract": {"train_10M": "babylm-corpus/train_10M"}},
    ],
    # the full sets, with the hidden tasks' folders: wug_past_tense, comps and aoa (cdi_childes.json)
    "eval": [{**_EVALUATION_DATA, "extract": {"full_eval": FULL_EVAL}}],
    "eval-fast": [{**_EVALUATION_DATA, "extract": {"fast_eval": FAST_EVAL}}],
}
DEFAULT_SETS = ["corpus", "eval", "eval-fast"]


class DownloadError(RuntimeError):
    """A download failed: HTTP error, truncated body, wrong checksum or size, bad archive."""


def rebase(url: str, base_url: str | None) -> str:
    """``url`` with its scheme and host replaced by ``base_url``'s (whose path, if any, is prefixed)."""
    if not base_url:
        return url
    base, parts = urlsplit(base_url), urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))


def _read_lock(cache: Path) -> dict:
    path = cache / LOCK_FILE
    return read_json(path) if path.is_file() else {}


def _write_lock(cache: Path, lock: dict) -> None:
    write_json(lock, cache / LOCK_FILE, indent=1, sort_keys=True, end="\n")


def check_zip(archive: Path, url: str) -> None:
    """Raise ``DownloadError`` naming ``url`` unless ``archive`` is a zip whose every member reads back whole."""
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        bad = error
    if bad is not None:
        raise DownloadError(f"{url}: not a valid zip archive ({bad}); the file was deleted, run again to retry")


def fetch(url: str, dest: Path, sha256: str | None = None, size: int | None = None, note: str = "",
          archive: bool = False) -> tuple[str, bool]:
    """Download ``url`` to ``dest`` atomically with a progress bar; return the sha256 of what was written and
    whether it is known complete (the server said its length, or ``archive``: the zip tested whole).

    A wrong ``sha256`` (its error ends with ``note``) or ``size``, an HTTP error, a truncated body or
    a broken zip raises ``DownloadError`` naming the URL, and leaves neither ``dest`` nor its temporary file behind.
    """
    digest, received = hashlib.sha256(), 0
    try:
        with atomic_path(dest) as part:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(part, "wb") as out:
                length = response.headers.get("Content-Length")
                total = int(length) if length is not None else None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name) as bar:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
            if total is not None and received != total:
                raise DownloadError(f"{url}: connection closed after {received} of {total} bytes; run again to retry")
            if size is not None and received != size:
                raise DownloadError(f"{url}: got {received} bytes, expected {size}; the file was deleted")
            if sha256 is not None and digest.hexdigest() != sha256:
                raise DownloadError(f"{url}: sha256 mismatch: expected {sha256}, got {digest.hexdigest()}; "
                                    f"the file was deleted{note}")
            if archive:
                check_zip(part, url)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:  # no connection: no network, a wrong host, a server that is down
        raise DownloadError(f"{url}: cannot reach the server ({error.reason}); check the network, or pass "
                            f"--base_url a mirror that serves the same paths") from None
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(f"{url}: download failed: {getattr(error, 'reason', error)}") from error
    return digest.hexdigest(), total is not None or archive


def _verified(path: Path, sha256: str | None, size: int | None) -> bool:
    return (path.is_file() and sha256 is not None and (size is None or path.stat().st_size == size)
            and sha256sum(path) == sha256)


def _get(entry: dict, dest: Path, base_url: str | None, cache: Path) -> bool:
    """Make ``dest`` hold the entry's verified file; True when it had to be downloaded."""
    lock = _read_lock(cache)
    expected = entry.get("sha256") or lock.get(entry["url"])
    if _verified(dest, expected, entry.get("size")):
        return False
    note = "" if entry.get("sha256") else (f" (the expected digest was recorded at the first download in "
                                           f"{cache / LOCK_FILE}; if the source changed on purpose, "
                                           f"`classit data download --refresh true` fetches it again and records it)")
    digest, complete = fetch(rebase(entry["url"], base_url), dest, expected, entry.get("size"), note,
                             archive="extract" in entry)
    if expected is None and complete:  # trust on first use
        _write_lock(cache, {**_read_lock(cache), entry["url"]: digest})
    return True


def _member_path(name: str, folder: str) -> PurePosixPath | None:
    """The part of a zip member's path below the first component named ``folder``, if any."""
    parts = PurePosixPath(name).parts
    if folder not in parts or name.endswith("/") or "__MACOSX" in parts or ".." in parts:
        return None
    rest = parts[parts.index(folder) + 1:]
    return PurePosixPath(*rest) if rest else None


def extract(archive: Path, folder: str, dest: Path, url: str) -> None:
    """Extract the files under ``folder`` (anywhere in the zip) into ``dest``, which appears (or is replaced)
    only when complete."""
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    try:
        with atomic_path(dest) as tmp, zipfile.ZipFile(archive) as zf:
            members = [(info, _member_path(info.filename, folder)) for info in zf.infolist()]
            members = [(info, rel) for info, rel in members if rel is not None]
            if not members:
                raise DownloadError(f"{url}: no folder {folder!r} in the archive {archive}")
            for info, rel in members:
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
            if dest.exists():  # refreshed: the old folder goes only once the new one is complete
                os.replace(dest, old)
        shutil.rmtree(old, ignore_errors=True)
    except zipfile.BadZipFile as error:
        raise DownloadError(f"{url}: {archive} is not a valid zip archive ({error}); "
                            f"`classit data download --refresh true` fetches it again") from None


def check_writable(folder: Path) -> None:
    """Raise ``DownloadError`` unless ``folder`` is (or can be made) a folder a file can be written into."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise DownloadError(f"{folder}: cannot write there ({error.strerror}); nothing was downloaded, "
                            "choose another --out") from None


def load_manifest(manifest: dict | str | Path | None = None) -> dict:
    """The manifest: a dict of set name -> entries, a JSON file holding one, or (None) the official ``MANIFEST``."""
    if manifest is None:
        return MANIFEST
    if isinstance(manifest, dict):
        return manifest
    return read_json(manifest)


def download(out: Path, sets: list[str], manifest: dict | str | Path | None = None, base_url: str | None = None,
             cache: Path | None = None, refresh: bool = False) -> list[Path]:
    """Download ``sets`` of the manifest into the data directory ``out``; return what was written.

    An entry is a file ``{"url", "path", "sha256", "size"}`` stored at ``out/path``, or a zip
    ``{"url", "name", "sha256", "size", "extract": {folder in zip: folder under out}}`` kept in
    ``cache`` (default ``cache_dir()/downloads``) as ``name``. Verified files and extracted
    folders already present are skipped, unless ``refresh``: then the digests recorded for the sets are
    dropped, so their files are fetched again and their folders extracted again. ``base_url`` replaces
    the host of every URL (mirrors, tests).
    """
    manifest = load_manifest(manifest)
    unknown = [name for name in sets if name not in manifest]
    if unknown:
        raise ValueError(f"unknown data sets {unknown}; choose from {sorted(manifest)}")
    out = Path(out).expanduser()
    check_writable(out)
    cache = Path(cache) if cache is not None else cache_dir() / "downloads"
    cache.mkdir(parents=True, exist_ok=True)
    entries = [entry for name in sets for entry in manifest[name]]
    if refresh:
        urls = {entry["url"] for entry in entries}
        _write_lock(cache, {url: digest for url, digest in _read_lock(cache).items() if url not in urls})
    written = []
    for entry in entries:
        if "path" in entry:
            if _get(entry, out / entry["path"], base_url, cache):
                written.append(out / entry["path"])
            continue
        missing = {folder: out / target for folder, target in entry["extract"].items()
                   if refresh or not (out / target).is_dir()}
        if not missing:
            continue
        archive = cache / entry["name"]
        _get(entry, archive, base_url, cache)
        for folder, dest in missing.items():
            extract(archive, folder, dest, rebase(entry["url"], base_url))
            written.append(dest)
    return written


def download_command(out: str | None = None, sets: str = ",".join(DEFAULT_SETS), base_url: str | None = None,
                     manifest: str | None = None, refresh: bool = False) -> None:
    """Download the official BabyLM 2025 corpus and evaluation data, verified, into a data directory.

    Args:
        out: the data directory (default ``$CLASSIT_DATA_DIR``, else ``<cache>/data``).
        sets: comma-separated: ``corpus`` (100M words + dev), ``corpus-small`` (10M words), ``eval``, ``eval-fast``.
        base_url: fetch from this host instead of the official one (a mirror).
        manifest: a JSON manifest to use instead of the official sources.
        refresh: fetch the sets again even where present, and record their digests anew (the source changed).
    """
    target = Path(out or os.environ.get(DATA_ENV) or cache_dir() / "data").expanduser()
    names = [name.strip() for name in sets.split(",") if name.strip()]
    written = download(target, names, manifest, base_url, refresh=refresh)
    for path in written:
        print(f"fetched {path}")
    if not written:
        print(f"{', '.join(names)}: already present in {target}")
    print(f"export {DATA_ENV}={target.resolve()}")
