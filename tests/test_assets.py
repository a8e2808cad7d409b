"""Asset folders: what a fetch keeps of a large package, and the lookup errors."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from cpt import assets


def _tree(root: Path, files: list[str]) -> None:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


def test_prune_keeps_only_matching_files_and_copyrights(tmp_path):
    _tree(tmp_path, [
        "usr/share/locale/ko/LC_MESSAGES/a.mo",
        "usr/share/locale/ko/LC_TIME/a.mo",
        "usr/share/locale/de/LC_MESSAGES/a.mo",
        "usr/bin/prog",
        "usr/share/doc/prog/copyright",
        "usr/share/doc/prog/changelog.gz",
    ])
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/link.mo").symlink_to(tmp_path / "usr/share/locale/ko/LC_MESSAGES/a.mo")
    kept = assets.prune(tmp_path, (assets.KEEP_ONLY["gettext-ko"][0], assets.COPYRIGHT))
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() or p.is_symlink())
    assert kept == 2
    assert left == ["usr/share/doc/prog/copyright", "usr/share/locale/ko/LC_MESSAGES/a.mo"]
    assert not (tmp_path / "usr/bin").exists() and not (tmp_path / "usr/lib").exists()  # emptied folders go too


def test_prune_globs_reach_nested_help_pages(tmp_path):
    _tree(tmp_path, ["usr/share/help/ko/gnome-help/a.page", "usr/share/help/ko/eog/figures/x.png", "usr/share/help/de/eog/b.page"])
    assert assets.prune(tmp_path, assets.KEEP_ONLY["gnome-help-ko"]) == 1
    assert (tmp_path / "usr/share/help/ko/gnome-help/a.page").exists()


def test_every_pruned_asset_is_a_debian_asset():
    assert set(assets.KEEP_ONLY) <= set(assets.DEBIAN_ASSETS)


def test_missing_asset_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CPT_ASSETS_DIR", str(tmp_path))
    assert not assets.has_asset("gettext-ko")
    with pytest.raises(FileNotFoundError, match="fetch --only gettext-ko"):
        assets.asset_path("gettext-ko")


def _mo(pairs: list[tuple[str, str]]) -> bytes:
    """A little-endian gettext catalog holding `pairs` (msgid, msgstr)."""
    head = 28
    ids = [a.encode() for a, _ in pairs]
    strs = [b.encode() for _, b in pairs]
    blob_at = head + 16 * len(pairs)
    blob, orig, trans = b"", [], []
    for table, items in ((orig, ids), (trans, strs)):
        for item in items:
            table.append((len(item), blob_at + len(blob)))
            blob += item + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, len(pairs), head, head + 8 * len(pairs), 0, 0)
    out += b"".join(struct.pack("<2I", *e) for e in orig + trans)
    return out + blob


def test_mo_messages_reads_translations_and_plurals(tmp_path):
    from bench.tokenizer import mo_messages

    path = tmp_path / "x.mo"
    path.write_bytes(_mo([("", "Project-Id-Version: x\n"), ("file", "파일"), ("%d file\0%d files", "파일 %d개")]))
    assert mo_messages(path) == ["파일", "파일 %d개"]
    bad = tmp_path / "bad.mo"
    bad.write_bytes(b"not a catalog at all")
    assert mo_messages(bad) == []
