"""`classit data download` against a real HTTP server on 127.0.0.1 serving the shared data."""

import functools
import hashlib
import json
import shutil
import socket
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import error_line

from classit.cli import main
from classit.data.download import DEFAULT_SETS, LOCK_FILE, MANIFEST, DownloadError, download, rebase

FILES = ["babylm-corpus/dev/switchboard.dev", "babylm-eval-fast/blimp_fast/causative.jsonl",
         "babylm-eval/ewok_filtered/social-properties.jsonl"]
OFFICIAL_HOST = "https://babylm.invalid"


class Handler(SimpleHTTPRequestHandler):
    """Serves a folder; counts requests; ``/drop/<path>`` announces the whole file but sends half of it."""

    requests: list

    def do_GET(self):
        self.requests.append(self.path)
        if not self.path.startswith("/drop/"):
            return super().do_GET()
        data = Path(self.translate_path(self.path.removeprefix("/drop"))).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def www(data_root, tmp_path):
    """A served folder: the shared data (``/data``), a corrupted copy (``/bad``) and a zip (``/archives``)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "data").symlink_to(data_root.resolve())
    bad = root / "bad" / FILES[0]
    bad.parent.mkdir(parents=True)
    data = bytearray((data_root / FILES[0]).read_bytes())
    data[100:110] = b"XXXXXXXXXX"
    bad.write_bytes(bytes(data))
    (root / "archives").mkdir()
    with zipfile.ZipFile(root / "archives" / "evaluation_data.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in FILES[1:]:
            folder = "fast_eval" if rel.startswith("babylm-eval-fast/") else "full_eval"
            zf.write(data_root / rel, f"evaluation_data/{folder}/{rel.split('/', 1)[1]}")
    return root


@pytest.fixture
def server(www):
    """A real ThreadingHTTPServer on 127.0.0.1; yields (base URL, list of request paths)."""
    requests = []
    handler = type("CountingHandler", (Handler,), {"requests": requests})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_entry(data_root: Path, rel: str, prefix: str = "data", known: bool = True) -> dict:
    path = data_root / rel
    return {"url": f"{OFFICIAL_HOST}/{prefix}/{rel}", "path": rel,
            "sha256": sha256(path) if known else None, "size": path.stat().st_size if known else None}


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]  # files.atomic_path's temporaries


def test_files_are_downloaded_verified_and_cached(server, data_root, tmp_path):
    base_url, requests = server
    manifest = {"files": [file_entry(data_root, rel) for rel in FILES]}
    out, cache = tmp_path / "out", tmp_path / "cache"
    written = download(out, ["files"], manifest, base_url, cache)
    assert written == [out / rel for rel in FILES]
    for rel in FILES:
        assert (out / rel).read_bytes() == (data_root / rel).read_bytes()
    assert sorted(requests) == sorted(f"/data/{rel}" for rel in FILES)
    assert download(out, ["files"], manifest, base_url, cache) == []
    assert len(requests) == len(FILES)  # second run: verified files skipped, no request
    assert not leftovers(tmp_path)


def test_corrupted_file_is_rejected(server, data_root, tmp_path, www):
    base_url, _ = server
    entry = file_entry(data_root, FILES[0], prefix="bad")
    out = tmp_path / "out"
    with pytest.raises(DownloadError) as error:
        download(out, ["files"], {"files": [entry]}, base_url, tmp_path / "cache")
    message = str(error.value)
    assert f"{base_url}/bad/{FILES[0]}" in message and entry["sha256"] in message
    assert sha256(www / "bad" / FILES[0]) in message
    assert not (out / FILES[0]).exists() and not leftovers(tmp_path)


def test_trust_on_first_use_records_and_enforces_the_digest(server, data_root, tmp_path, www):
    base_url, requests = server
    served = www / "tofu" / "switchboard.dev"
    served.parent.mkdir()
    served.write_bytes((data_root / FILES[0]).read_bytes())
    entry = {"url": f"{OFFICIAL_HOST}/tofu/switchboard.dev", "path": "switchboard.dev", "sha256": None, "size": None}
    out, cache = tmp_path / "out", tmp_path / "cache"
    download(out, ["files"], {"files": [entry]}, base_url, cache)
    assert json.loads((cache / LOCK_FILE).read_text()) == {entry["url"]: sha256(served)}
    download(out, ["files"], {"files": [entry]}, base_url, cache)
    assert len(requests) == 1  # the recorded digest verifies the present file
    (out / "switchboard.dev").unlink()
    served.write_bytes(b"changed upstream\n")
    with pytest.raises(DownloadError, match="sha256 mismatch.*recorded at the first download"):
        download(out, ["files"], {"files": [entry]}, base_url, cache)
    assert not (out / "switchboard.dev").exists() and not leftovers(tmp_path)


def test_dropped_connection_leaves_no_half_written_file(server, data_root, tmp_path):
    base_url, _ = server
    entry = file_entry(data_root, FILES[0], prefix="drop/data")
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match=f"{base_url}/drop/data/{FILES[0]}: connection closed after"):
        download(out, ["files"], {"files": [entry]}, base_url, tmp_path / "cache")
    assert not (out / FILES[0]).exists() and not leftovers(tmp_path)


def test_zip_archive_is_extracted_into_the_data_layout(server, data_root, tmp_path, www):
    base_url, requests = server
    archive = www / "archives" / "evaluation_data.zip"
    entry = {"url": f"{OFFICIAL_HOST}/archives/evaluation_data.zip", "name": "evaluation_data.zip",
             "sha256": sha256(archive), "size": archive.stat().st_size}
    manifest = {"eval": [{**entry, "extract": {"full_eval": "babylm-eval"}}],
                "eval-fast": [{**entry, "extract": {"fast_eval": "babylm-eval-fast"}}]}
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert download(out, ["eval", "eval-fast"], manifest, base_url, cache) == [out / "babylm-eval",
                                                                               out / "babylm-eval-fast"]
    for rel in FILES[1:]:
        assert (out / rel).read_bytes() == (data_root / rel).read_bytes()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(FILES[1:])
    assert requests == ["/archives/evaluation_data.zip"]  # one archive serves both sets
    assert download(out, ["eval", "eval-fast"], manifest, base_url, cache) == [] and len(requests) == 1
    assert not leftovers(tmp_path)


def test_http_error_names_the_url(server, tmp_path):
    base_url, _ = server
    entry = {"url": f"{OFFICIAL_HOST}/data/missing.train", "path": "missing.train", "sha256": None, "size": None}
    with pytest.raises(DownloadError, match=f"{base_url}/data/missing.train: HTTP 404"):
        download(tmp_path / "out", ["files"], {"files": [entry]}, base_url, tmp_path / "cache")
    assert not (tmp_path / "out" / "missing.train").exists() and not leftovers(tmp_path)


def test_download_command_prints_the_data_dir(server, data_root, tmp_path, monkeypatch, capsys):
    base_url, _ = server
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"files": [file_entry(data_root, FILES[0])], "more": []}))
    monkeypatch.setenv("CLASSIT_CACHE_DIR", str(tmp_path / "cache"))
    command = ["data", "download", "--out", str(tmp_path / "out"), "--base_url", base_url, "--manifest", str(manifest)]
    main([*command, "--sets", "files,more"])
    printed = capsys.readouterr().out
    assert f"fetched {tmp_path / 'out' / FILES[0]}" in printed
    assert f"export CLASSIT_DATA_DIR={(tmp_path / 'out').resolve()}" in printed
    with pytest.raises(SystemExit) as done:
        main([*command, "--sets", "files,nope"])
    assert str(done.value.code) == "classit: error: unknown data sets ['nope']; choose from ['files', 'more']"


def test_official_manifest_matches_the_data_layout(data_root):
    assert set(DEFAULT_SETS) <= set(MANIFEST)
    targets = {target for entries in MANIFEST.values() for entry in entries
               for target in entry.get("extract", {}).values()}
    assert {"babylm-corpus/dev", "babylm-eval", "babylm-eval-fast"} <= targets
    assert all((data_root / target).is_dir() for target in targets if "train" not in target)
    assert all(entry["url"].startswith("https://") for entries in MANIFEST.values() for entry in entries)
    rebased = rebase("https://osf.io/download/abc/?zip=", "http://127.0.0.1:8000/mirror")
    assert rebased == "http://127.0.0.1:8000/mirror/download/abc/?zip="


def zip_entry(name: str) -> dict:
    """An official-style entry: a zip with no published digest, extracted into ``babylm-eval``."""
    return {"url": f"{OFFICIAL_HOST}/tofu/{name}", "name": name, "sha256": None, "size": None,
            "extract": {"full_eval": "babylm-eval"}}


def test_a_truncated_first_download_is_not_pinned(server, www, tmp_path):
    base_url, _ = server
    good = (www / "archives" / "evaluation_data.zip").read_bytes()
    served = www / "tofu" / "eval.zip"
    served.parent.mkdir()
    served.write_bytes(good)
    manifest, out, cache = {"eval": [zip_entry("eval.zip")]}, tmp_path / "out", tmp_path / "cache"
    mirror = f"{base_url}/drop"  # announces the whole length, sends half
    with pytest.raises(DownloadError, match=f"^{mirror}/tofu/eval.zip: connection closed after"):
        download(out, ["eval"], manifest, mirror, cache)
    served.write_bytes(good[:-100])  # a truncated zip, served with its own (correct) length
    with pytest.raises(DownloadError, match=f"^{base_url}/tofu/eval.zip: not a valid zip archive"):
        download(out, ["eval"], manifest, base_url, cache)
    assert not (cache / LOCK_FILE).exists() and not (cache / "eval.zip").exists() and not leftovers(tmp_path)
    served.write_bytes(good)
    assert download(out, ["eval"], manifest, base_url, cache) == [out / "babylm-eval"]
    assert json.loads((cache / LOCK_FILE).read_text()) == {zip_entry("eval.zip")["url"]: sha256(served)}


@pytest.fixture
def served_eval(server, www, tmp_path, monkeypatch):
    """``(served zip, the download command, its --out)``: the evaluation zip served under a manifest of its own,
    the cache in ``tmp_path``."""
    served = www / "tofu" / "eval.zip"
    served.parent.mkdir()
    served.write_bytes((www / "archives" / "evaluation_data.zip").read_bytes())
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"eval": [zip_entry("eval.zip")]}))
    monkeypatch.setenv("CLASSIT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    return served, ["data", "download", "--out", str(out), "--base_url", server[0], "--manifest", str(manifest),
                    "--sets", "eval"], out


def test_refresh_fetches_again_and_records_the_new_digest(server, served_eval, tmp_path):
    base_url, _ = server
    served, command, out = served_eval
    lock = tmp_path / "cache" / "downloads" / LOCK_FILE
    main(command)
    with zipfile.ZipFile(served, "w") as zf:  # the source changes on purpose
        zf.writestr("evaluation_data/full_eval/new.jsonl", "{}\n")
    shutil.rmtree(out)
    (lock.parent / "eval.zip").unlink()
    with pytest.raises(SystemExit) as done:
        main(command)
    assert str(done.value.code).startswith(f"classit: error: {base_url}/tofu/eval.zip: sha256 mismatch")
    assert "`classit data download --refresh true` fetches it again" in str(done.value.code)
    main([*command, "--refresh", "true"])
    assert json.loads(lock.read_text()) == {zip_entry("eval.zip")["url"]: sha256(served)}
    assert [p.name for p in (out / "babylm-eval").iterdir()] == ["new.jsonl"]


def test_the_hidden_tasks_come_with_the_evaluation_data(server, tmp_path, www):
    """WUG past tense, COMPS and the AoA words are folders of the pipeline's ``evaluation_data/full_eval``: the
    official ``eval`` set brings them where ``classit evaluate`` reads them (digest recorded on first use)."""
    from classit.eval.aoa import load_words
    from classit.eval.tasks import TASKS

    base_url, _ = server
    hidden = {"aoa/cdi_childes.json": json.dumps({"ball": [{"context": "throw the", "word_in_context_stats": {}}]}),
              "wug_past_tense/wug_past_tense.jsonl": '{"sentences": "a\\tb", "ratio": 0.5}\n',
              "comps/comps_base.jsonl": '{"acceptable_concept": "A robin", "unacceptable_concept": "A rock", '
                                        '"property_phrase": "can fly."}\n'}
    (www / "tofu").mkdir()
    with zipfile.ZipFile(www / "tofu" / "hidden.zip", "w") as zf:
        for rel, text in hidden.items():
            zf.writestr(f"evaluation_data/full_eval/{rel}", text)
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert download(out, ["eval"], {"eval": [{**MANIFEST["eval"][0], **zip_entry("hidden.zip")}]}, base_url, cache)
    eval_dir = out / "babylm-eval"
    assert [word for word, _ in load_words(eval_dir / "aoa" / "cdi_childes.json")] == ["ball"]
    wug_past = eval_dir / TASKS["wug_past"].full / "wug_past_tense.jsonl"
    assert wug_past.read_text() == hidden["wug_past_tense/wug_past_tense.jsonl"]
    assert (eval_dir / TASKS["comps"].full / "comps_base.jsonl").is_file()
    assert f"{OFFICIAL_HOST}/tofu/hidden.zip" in json.loads((cache / LOCK_FILE).read_text())
    assert MANIFEST["eval"][0]["extract"] == {"full_eval": "babylm-eval"}  # the official set: the same folder


def test_refresh_with_the_old_folder_and_zip_in_place_swaps_in_the_new_folder(server, served_eval, tmp_path):
    _, requests = server
    served, command, out = served_eval
    cache = tmp_path / "cache" / "downloads"
    main(command)
    old = sorted(p.relative_to(out).as_posix() for p in (out / "babylm-eval").rglob("*") if p.is_file())
    assert old == ["babylm-eval/" + rel.split("/", 1)[1] for rel in FILES[2:]]
    with zipfile.ZipFile(served, "w") as zf:  # the source changes on purpose
        zf.writestr("evaluation_data/full_eval/new.jsonl", "{}\n")
    main(command)  # old folder and zip in place: nothing fetched
    assert len(requests) == 1 and not (out / "babylm-eval" / "new.jsonl").exists()

    main([*command, "--refresh", "true"])
    assert len(requests) == 2
    assert (cache / "eval.zip").read_bytes() == served.read_bytes()
    assert json.loads((cache / LOCK_FILE).read_text()) == {zip_entry("eval.zip")["url"]: sha256(served)}
    assert [p.name for p in (out / "babylm-eval").iterdir()] == ["new.jsonl"]  # the old folder replaced whole
    assert sorted(p.name for p in out.iterdir()) == ["babylm-eval"] and not leftovers(tmp_path)  # no .old left


def test_an_unreachable_server_says_so_and_names_base_url(tmp_path, monkeypatch):
    with socket.socket() as closed:  # a port nothing listens on: the connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"files": [{"url": f"{OFFICIAL_HOST}/data/a.train", "path": "a.train",
                                               "sha256": None, "size": None}]}))
    monkeypatch.setenv("CLASSIT_CACHE_DIR", str(tmp_path / "cache"))
    line = error_line(["data", "download", "--out", str(tmp_path / "out"), "--manifest", str(manifest),
                       "--base_url", f"http://127.0.0.1:{port}", "--sets", "files"])
    assert line.startswith(f"http://127.0.0.1:{port}/data/a.train: cannot reach the server ("), line
    assert line.endswith("check the network, or pass --base_url a mirror that serves the same paths"), line
    assert not leftovers(tmp_path)


def test_an_out_that_cannot_be_written_is_refused_before_any_download(server, data_root, tmp_path, monkeypatch):
    base_url, requests = server
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"files": [file_entry(data_root, FILES[0])]}))
    monkeypatch.setenv("CLASSIT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "a_file").write_text("not a folder\n")
    out = tmp_path / "a_file" / "data"
    line = error_line(["data", "download", "--out", str(out), "--base_url", base_url, "--manifest", str(manifest),
                       "--sets", "files"])
    assert line == f"{out}: cannot write there (Not a directory); nothing was downloaded, choose another --out"
    assert requests == []
