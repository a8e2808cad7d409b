"""Readers: every input format, and every bad-input reason counted under its stable name.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/corpus/test_readers.py -q
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import pytest

from cpt.corpus.readers import (
    CorpusReader,
    HFDatasetReader,
    JsonlReader,
    ParquetReader,
    TextReader,
    discover_inputs,
)
from cpt.errors import UserError

KOLAW = Path(next(iter(importlib.util.find_spec("konlpy").submodule_search_locations))) / "data/corpus/kolaw"


def counters(step) -> dict[str, float]:
    return {k: v.total for k, v in step.stats.stats.items()}


def read_all(reader, rank: int = 0, world_size: int = 1):
    return list(reader.run(None, rank, world_size))


def write_jsonl(path: Path, lines: list[bytes]) -> Path:
    data = b"\n".join(lines) + b"\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data, mtime=0))
    elif path.name.endswith(".zst"):
        import zstandard

        path.write_bytes(zstandard.ZstdCompressor().compress(data))
    else:
        path.write_bytes(data)
    return path


GOOD = json.dumps({"text": "첫 번째 문서입니다. 대한민국은 민주공화국이다.", "id": "a"}, ensure_ascii=False).encode()


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.jsonl.zst"])
def test_jsonl_every_bad_reason_counted(tmp_path: Path, name: str) -> None:
    lines = [
        GOOD,
        b'{"text": "broken json',  # malformed_json
        b"[1, 2, 3]",  # not_an_object
        b'{"body": "no text field"}',  # missing_text_field
        b'{"text": 42}',  # text_not_string
        b'{"text": "   \\n\\t  "}',  # empty_text
        json.dumps({"text": "junk\x00\x01\x02 binary"}).encode(),  # binary_junk
        b'{"text": "caf\xe9 au lait, latin-1 bytes in a UTF-8 file"}',  # repaired: decoded_with_replacement
        b"",  # a blank line is layout, not a record
        json.dumps({"text": "metadata kept", "url": "http://x", "metadata": {"lic": "cc"}}).encode(),
    ]
    write_jsonl(tmp_path / name, lines)
    reader = JsonlReader(str(tmp_path))
    docs = read_all(reader)
    c = counters(reader)
    assert [d.id for d in docs[:1]] == ["a"]
    assert len(docs) == 3
    assert docs[1].text.startswith("caf\ufffd au lait")
    assert docs[2].metadata["url"] == "http://x" and docs[2].metadata["lic"] == "cc"
    assert docs[2].id == f"{tmp_path.name}/{name}:9"
    for reason in ("malformed_json", "not_an_object", "missing_text_field", "text_not_string", "empty_text", "binary_junk"):
        assert c[f"dropped_{reason}"] == 1, reason
    assert c["repaired_decoded_with_replacement"] == 1
    assert c["records"] == 9 and c["forwarded"] == 3 and c["dropped"] == 6


def test_oversized_truncate_and_drop(tmp_path: Path) -> None:
    big = "\n".join(["가나다라마바사 " * 20] * 200)  # ~ 110 kB of UTF-8
    write_jsonl(tmp_path / "big.jsonl", [json.dumps({"text": big}, ensure_ascii=False).encode()])
    cut = JsonlReader(str(tmp_path), max_doc_bytes=10_000)
    (doc,) = read_all(cut)
    assert len(doc.text.encode()) <= 10_000 and doc.text.endswith("사 ")
    assert counters(cut)["repaired_truncated_oversized"] == 1
    drop = JsonlReader(str(tmp_path), max_doc_bytes=10_000, oversize="drop")
    assert read_all(drop) == [] and counters(drop)["dropped_oversized"] == 1


def test_ten_megabyte_document_bounded(tmp_path: Path) -> None:
    """A 10 MB single-line file is cut at max_doc_bytes, not held whole as a document."""
    (tmp_path / "huge.txt").write_bytes(b"word " * 2_100_000)
    reader = TextReader(str(tmp_path), max_doc_bytes=1_000_000)
    (doc,) = read_all(reader)
    assert len(doc.text.encode()) <= 1_000_000
    assert counters(reader)["repaired_truncated_oversized"] == 1


def test_corrupt_gzip_tail_counted(tmp_path: Path) -> None:
    data = gzip.compress(b"\n".join([GOOD] * 2000), mtime=0)
    (tmp_path / "c.jsonl.gz").write_bytes(data[: len(data) // 2])
    reader = JsonlReader(str(tmp_path))
    docs = read_all(reader)
    assert 0 < len(docs) < 2000
    assert counters(reader)["dropped_corrupt_file"] == 1


def test_text_reader_whole_files_and_paragraphs(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes("제1조 첫 문단.\r\n둘째 줄.\r\n\r\n제2조 둘째 문단.\r\n".encode())
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe binary-ish \xc3 text with enough ordinary characters to pass")
    (tmp_path / "empty.txt").write_bytes(b"  \n\n ")
    whole = TextReader(str(tmp_path))
    docs = read_all(whole)
    assert [d.id for d in docs] == [f"{tmp_path.name}/a.txt", f"{tmp_path.name}/b.txt"]
    assert "\r" not in docs[0].text and "\n\n" in docs[0].text
    c = counters(whole)
    assert c["dropped_empty_text"] == 1 and c["repaired_decoded_with_replacement"] == 1
    paras = TextReader(str(tmp_path), split_paragraphs=True, glob_pattern="a.txt")
    docs = read_all(paras)
    assert [d.text for d in docs] == ["제1조 첫 문단.\n둘째 줄.", "제2조 둘째 문단."]
    assert docs[1].id.endswith("a.txt#1")


def test_form_feed_is_a_page_break_not_junk(tmp_path: Path) -> None:
    # plain-text manuals start each page with a form feed; a short page-opening paragraph is text
    (tmp_path / "manual.txt").write_bytes(b"Intro paragraph.\n\n\x0cChapter 2\n\n\x0c\x0bIndex\n")
    paras = TextReader(str(tmp_path), split_paragraphs=True)
    docs = read_all(paras)
    assert [d.text for d in docs] == ["Intro paragraph.", "\x0cChapter 2", "\x0c\x0bIndex"]
    assert "dropped_binary_junk" not in counters(paras)
    whole = TextReader(str(tmp_path))
    assert len(read_all(whole)) == 1 and "dropped_binary_junk" not in counters(whole)


def test_binary_file_is_junk(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 40)
    reader = TextReader(str(tmp_path))
    assert read_all(reader) == []
    assert counters(reader)["dropped_binary_junk"] == 1


def test_parquet_reader(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"content": ["헌법 본문", None, "  ", "English body"], "id": ["p0", "p1", "p2", None], "year": [1, 2, 3, 4]})
    pq.write_table(table, tmp_path / "t.parquet")
    reader = ParquetReader(str(tmp_path), text_key="content")
    docs = read_all(reader)
    assert [d.id for d in docs] == ["p0", f"{tmp_path.name}/t.parquet:3"]
    assert docs[0].metadata["year"] == 1
    c = counters(reader)
    assert c["dropped_missing_text_field"] == 1 and c["dropped_empty_text"] == 1
    wrong_field = ParquetReader(str(tmp_path))
    assert read_all(wrong_field) == [] and counters(wrong_field)["dropped_missing_text_field"] == 4


def test_parquet_metadata_as_json_string_is_unpacked(tmp_path: Path) -> None:
    """A build's parquet output stores `metadata` as a JSON string; reading it back restores the fields."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": ["본문 하나", "body two"], "id": ["a", "b"], "metadata": ['{"lang": "ko", "lang_score": 0.99}', "not json"]})
    pq.write_table(table, tmp_path / "docs.parquet")
    docs = read_all(ParquetReader(str(tmp_path)))
    assert docs[0].metadata["lang"] == "ko" and docs[0].metadata["lang_score"] == 0.99
    assert docs[1].metadata["metadata"] == "not json"


def test_datasets_folder_split_across_tasks(tmp_path: Path) -> None:
    import datasets

    rows = {"text": [f"문서 {i} 본문" for i in range(10)], "tag": list(range(10))}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    found = discover_inputs([tmp_path / "ds"], parts=3)
    assert [u.rows for u in found.units] == [(0, 3), (3, 6), (6, 10)]
    reader = CorpusReader(found.units)
    got = [d.text for r in range(3) for d in read_all(reader, r, 3)]
    assert got == rows["text"]
    single = HFDatasetReader(str(tmp_path / "ds"), text_key="missing")
    assert read_all(single) == [] and counters(single)["dropped_missing_text_field"] == 10


def test_corpus_reader_mixes_formats_and_shards(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in/a.jsonl", [GOOD])
    (tmp_path / "in/b.txt").write_text("plain text document", encoding="utf-8")
    (tmp_path / "in/.hidden").write_text("not read", encoding="utf-8")
    (tmp_path / "in/__pycache__").mkdir()
    found = discover_inputs([tmp_path / "in", KOLAW])
    assert [u.kind for u in found.units] == ["jsonl", "text", "text"]
    assert len(found.skipped) == 2
    reader = CorpusReader(found.units, default_metadata={"source": "mix"})
    ids = [[d.id for d in read_all(reader, r, 2)] for r in range(2)]
    assert ids == [["a", "kolaw/constitution.txt"], ["in/b.txt"]]
    assert counters(reader)["forwarded"] == 3
    docs = read_all(CorpusReader(found.units, default_metadata={"source": "mix"}))
    assert all(d.metadata["source"] == "mix" for d in docs)
    assert "대한민국" in docs[-1].text


def test_rejects_written_by_reader(tmp_path: Path) -> None:
    from cpt.corpus.build import RejectWriter

    write_jsonl(tmp_path / "in.jsonl", [GOOD, b"{oops", b'{"text": ""}'])
    found = discover_inputs([tmp_path / "in.jsonl"])
    reader = CorpusReader(found.units, exclusion_writer=RejectWriter(str(tmp_path / "rej"), "read"))
    assert len(read_all(reader)) == 1
    with gzip.open(tmp_path / "rej/read/00000.jsonl.gz", "rt") as fh:
        rejects = [json.loads(line) for line in fh]
    assert [(r["id"], r["reason"]) for r in rejects] == [("in.jsonl:1", "malformed_json"), ("in.jsonl:2", "empty_text")]


def test_missing_and_unreadable_inputs_fail_early(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        discover_inputs([tmp_path / "nope.jsonl"])
    (tmp_path / "bad.jsonl.gz").write_bytes(b"this is not gzip")
    with pytest.raises(UserError, match="cannot read input file"):
        discover_inputs([tmp_path / "bad.jsonl.gz"])
    (tmp_path / "bad.parquet").write_bytes(b"nope")
    with pytest.raises(UserError, match="bad.parquet"):
        discover_inputs([tmp_path / "bad.parquet"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no files"):
        discover_inputs([tmp_path / "empty"])
    with pytest.raises(UserError, match="no input"):
        discover_inputs([])
