#!/usr/bin/env bash
# The GPU check in one call: on a machine with CUDA PyTorch and no internet, install tlx-gan and
# TensorLayerX 0.5.8 from wheels carried there, then run, on the torch backend (the only framework of the
# three whose GPU build is small enough to carry), in well under 10 minutes:
#   info; parity L1-L5 in fp32 and bf16 (and tf32, fp16 on a GPU); bench of the mlp and the dcgan
#   (eager, fast, native, native-compiled) at batch 64-4096; JSON and markdown under --out, and summary.md.
#
#   examples/gpu_check.sh [--device gpu|cpu] [--wheels DIR] [--out DIR] [--python PY] [--dry-run]
#
#   --device   where the steps run (default gpu)
#   --wheels   a folder of wheels to install from, with no index: tlx-gan's own (pip wheel --no-deps .)
#              and those of what the machine lacks (tensorlayerx==0.5.8 and its dependencies: pip
#              download them beside). They go into --out/venv, made with --system-site-packages so the
#              machine's own CUDA torch stays the one used. Without --wheels, --python runs as it is.
#              Made here with `pip wheel --no-deps -w wheels .` and `pip download --no-deps -d wheels
#              tensorlayerx==0.5.8`, plus what the machine lacks of TLX's imports (numpy, scipy, h5py,
#              opencv-python-headless, six, wrapt, cloudpickle, progressbar2, rich) and of tlx-gan's
#              (pillow, matplotlib, mlxtend); a carry is at most 64 MiB, so the large ones go in calls of
#              their own while the machine stays warm.
#   --python   the interpreter (default python3; ignored with --wheels)
#   --out      the results (default runs/gpu-check-<device>); refused if it holds an earlier check
#   --dry-run  every step at toy sizes (parity L1-L4, batch 16, one timed step of the eager and native
#              modes): what CI runs on the CPU
#
# Exit status: 0 when every step ran and every parity passed, 1 otherwise (each step still runs); 2 for
# bad flags. The figures of a GPU run belong in backends_matrix/ (copy summary.md there, named after the
# machine).
set -uo pipefail

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
fail() { echo "gpu_check: error: $*" >&2; exit 2; }

device=gpu wheels="" out="" python=python3 dry_run=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) [ $# -ge 2 ] || fail "--device needs gpu or cpu"; device=$2; shift 2 ;;
        --wheels) [ $# -ge 2 ] || fail "--wheels needs a folder"; wheels=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || fail "--out needs a folder"; out=$2; shift 2 ;;
        --python) [ $# -ge 2 ] || fail "--python needs an interpreter"; python=$2; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) fail "unknown argument '$1' (see --help)" ;;
    esac
done
case "$device" in gpu|cpu) ;; *) fail "--device '$device': use gpu or cpu" ;; esac
out=${out:-runs/gpu-check-$device}
[ -z "$wheels" ] || [ -d "$wheels" ] || fail "--wheels '$wheels' is not a folder"
if [ -e "$out/summary.md" ]; then fail "--out '$out' holds an earlier check (summary.md): choose another folder"; fi
mkdir -p "$out" || fail "--out '$out' cannot be created"

if [ -n "$wheels" ]; then
    "$python" -m venv --system-site-packages "$out/venv" || fail "could not make $out/venv"
    python=$out/venv/bin/python
    # every wheel there, without resolving the declared dependencies: TLX declares many it never imports
    # (scikit-learn, scikit-image, tensorboardX, requests); a missing import shows in the info step
    "$python" -m pip install --quiet --no-index --no-deps "$wheels"/*.whl \
        || fail "installing the wheels of $wheels failed (the message above says which)"
fi
command -v "$python" >/dev/null || fail "--python '$python' is not an interpreter here"

# Sizes: the real check, or the toy one CI runs.
if [ "$dry_run" = 1 ]; then
    parity_steps=0 parity_batch=16 bench_batches=16 bench_steps=1 bench_repeats=1 warmup=0 gemm=64
    modes=eager,native
else
    parity_steps=20 parity_batch=64 bench_batches=64,512,4096 bench_steps=20 bench_repeats=3 warmup=5 gemm=4096
    modes=eager,fast,native,native-compiled
fi

status=0
summary=$out/summary.md
step() {  # step NAME COMMAND...: run it, its output into NAME.log, a line in the summary
    local name=$1; shift
    local began=$SECONDS
    if "$@" >"$out/$name.log" 2>&1; then
        echo "- $name: ok ($((SECONDS - began)) s)" >>"$summary.steps"
    else
        status=1
        echo "- $name: FAILED (exit $?, $((SECONDS - began)) s; see $name.log)" >>"$summary.steps"
    fi
}

: >"$summary.steps"
step info "$python" -m tlx_gan info --backend torch --json
parity_precisions="fp32 bf16"
[ "$device" = gpu ] && parity_precisions="fp32 tf32 bf16 fp16"  # TF32 and fp16 are for tensor cores only
for precision in $parity_precisions; do
    step "parity-$precision" env TLX_GAN_MATRIX_DIR="$out/matrix" "$python" -m tlx_gan parity --backends torch \
        --device "$device" --precision "$precision" --steps "$parity_steps" --batch-size "$parity_batch" \
        --outcome-steps 0 --record
done
for model in mlp dcgan; do
    for precision in fp32 bf16; do
        [ "$model" = dcgan ] && [ "$precision" = bf16 ] && continue  # the dcgan's bf16 cells: beyond 10 minutes
        step "bench-$model-$precision" "$python" -m tlx_gan bench --backends torch --device "$device" \
            --model "$model" --precision "$precision" --modes "$modes" --batch-sizes "$bench_batches" \
            --warmup "$warmup" --steps "$bench_steps" --repeats "$bench_repeats" --gemm-size "$gemm" \
            --out "$out/bench-$model-$precision"
    done
done

{
    echo "# GPU check: torch on $device$([ "$dry_run" = 1 ] && echo ' (dry run: toy sizes)')"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $("$python" -c 'import platform; print(platform.node())' 2>/dev/null)"
    echo
    cat "$summary.steps"
    for report in "$out"/matrix/parity-*.md; do
        [ -e "$report" ] || continue
        echo
        sed -n '1,/^## Tolerances/p' "$report" | sed '$d'
    done
    for report in "$out"/bench-*/bench.md; do
        [ -e "$report" ] || continue
        echo
        sed -n '1,/^## Targets/p' "$report" | sed '$d'
    done
} >"$summary.tmp" && mv "$summary.tmp" "$summary"
rm -f "$summary.steps"
echo "gpu_check: $([ $status = 0 ] && echo PASS || echo FAIL), wrote $summary"
exit $status
