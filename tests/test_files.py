"""classit.files: the one atomic write, and the writers' exact formats."""

import json

import pytest

from classit.files import atomic_path, read_json, read_jsonl, write_csv, write_json, write_jsonl, write_text


def test_an_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    with atomic_path(path) as temporary:
        assert temporary.parent == path.parent and temporary.name.startswith(".out.txt.tmp")
        temporary.write_text("old")
        assert not path.exists()  # in place only once the block ends
    with atomic_path(path) as temporary:
        temporary.write_text("new")
        assert path.read_text() == "old"
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_a_failed_atomic_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("kept")
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_path(path) as temporary:
            temporary.write_text("half")
            raise RuntimeError("half-way")
    assert path.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_an_atomic_folder_appears_whole_and_does_not_replace_a_folder(tmp_path):
    path = tmp_path / "folder"
    with atomic_path(path) as temporary:
        (temporary / "a").mkdir(parents=True)
        (temporary / "a" / "b.txt").write_text("b")
    assert (path / "a" / "b.txt").read_text() == "b"
    with pytest.raises(OSError):
        with atomic_path(path) as temporary:
            temporary.mkdir()
            (temporary / "c.txt").write_text("c")
    assert [p.name for p in tmp_path.iterdir()] == ["folder"] and not (path / "c.txt").exists()


def test_writers_write_what_json_and_csv_write(tmp_path):
    write_text("é\nline\n", tmp_path / "sub" / "t.txt")
    assert (tmp_path / "sub" / "t.txt").read_bytes() == "é\nline\n".encode()

    value = {"b": [1, 2.5], "a": "é", "n": None}
    write_json(value, tmp_path / "plain.json")
    assert (tmp_path / "plain.json").read_text() == json.dumps(value)
    write_json(value, tmp_path / "lock.json", indent=1, sort_keys=True, end="\n")
    assert (tmp_path / "lock.json").read_text() == json.dumps(value, indent=1, sort_keys=True) + "\n"
    assert read_json(tmp_path / "lock.json") == value

    write_jsonl([value, {"x": 1}], tmp_path / "r.jsonl")
    assert (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()[0] == json.dumps(value, ensure_ascii=False)
    write_jsonl([value], tmp_path / "ascii.jsonl", ensure_ascii=True)
    assert (tmp_path / "ascii.jsonl").read_text() == json.dumps(value) + "\n"
    assert read_jsonl(tmp_path / "r.jsonl") == [value, {"x": 1}]

    write_csv([["word", "n"], ["a,b", 1], ["c", 2.5]], tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_bytes() == b'word,n\r\n"a,b",1\r\nc,2.5\r\n'
