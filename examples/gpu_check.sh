#!/usr/bin/env bash
# The GPU check in one call: on a machine with CUDA PyTorch and no internet, install tlx-gan and
# TensorLayerX 0.5.8 from wheels carried there, then run, on the torch backend (the only framework of the
# three whose GPU build is small enough to carry), in well under 10 minutes:
#   info; parity L1-L5 in fp32 and bf16 (and tf32, fp16 on a GPU); on a machine of 2 GPUs or more, 50 steps
#   of data-parallel training in 2 processes over nccl; bench of the mlp and the dcgan (eager, fast, native,
#   native-compiled) at batch 64-4096; JSON and markdown under --out, and summary.md.
#
#   examples/gpu_check.sh [--device gpu|cpu] [--wheels DIR] [--out DIR] [--python PY] [--time-box S]
#                         [--only STEPS] [--dry-run]
#
#   --device   where the steps run (default gpu)
#   --wheels   a folder of wheels to install from, with no index: tlx-gan's own (pip wheel --no-deps .)
#              and those of what the machine lacks (tensorlayerx==0.5.8 and its dependencies: pip
#              download them beside). They go into --out/site, put first on PYTHONPATH, so the
#              machine's own CUDA torch stays the one used. (Not a venv: one made from a venv's Python,
#              as the GPU machine's python3 is, sees the base interpreter's packages, not that venv's
#              torch.) Without --wheels, --python runs as it is.
#              Made here with `pip wheel --no-deps -w wheels .` and `pip download --no-deps -d wheels
#              tensorlayerx==0.5.8 progressbar2 python-utils mlxtend`: what the lent H200 machine lacks
#              (2.3 MB; TLX's other imports, numpy to rich, and tlx-gan's pillow and matplotlib are there).
#   --python   the interpreter (default python3), the one whose torch runs
#   --out      the results (default runs/gpu-check-<device>); refused if it holds an earlier check
#   --only     run only these steps (comma-separated names, as the summary lists them)
#   --time-box every step must end within S seconds of the start (default: no limit); a step still
#              running then is stopped and marked so, the later ones skipped, the summary still written
#   --dry-run  every step at toy sizes (parity L1-L4, batch 16, one timed step of the eager and native
#              modes): what CI runs on the CPU
#
# Exit status: 0 when every step ran and every parity passed, 1 otherwise (each step still runs); 2 for
# bad flags. --out/matrix holds the parity and bench files as backends_matrix/ records them (named -gpu and
# bench-gpu-<GPU>-*): copy them there, then `python -c "from tlx_gan import matrix; matrix.render_readme()"`.
set -uo pipefail

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
fail() { echo "gpu_check: error: $*" >&2; exit 2; }

device=gpu wheels="" out="" python=python3 dry_run=0 time_box=0 only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --device) [ $# -ge 2 ] || fail "--device needs gpu or cpu"; device=$2; shift 2 ;;
        --wheels) [ $# -ge 2 ] || fail "--wheels needs a folder"; wheels=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || fail "--out needs a folder"; out=$2; shift 2 ;;
        --python) [ $# -ge 2 ] || fail "--python needs an interpreter"; python=$2; shift 2 ;;
        --only) [ $# -ge 2 ] || fail "--only needs step names"; only=",$2,"; shift 2 ;;
        --time-box) [ $# -ge 2 ] || fail "--time-box needs seconds"; time_box=$2; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) fail "unknown argument '$1' (see --help)" ;;
    esac
done
case "$device" in gpu|cpu) ;; *) fail "--device '$device': use gpu or cpu" ;; esac
case "$time_box" in ''|*[!0-9]*) fail "--time-box '$time_box': use a whole number of seconds" ;; esac
time_box=$((10#$time_box))  # 08 is eight seconds, not a bad octal number
STEPS="info parity-fp32 parity-bf16 parity-tf32 parity-fp16 train-nccl bench-mlp-fp32 bench-mlp-bf16 bench-dcgan-fp32"
for name in $(echo "${only//,/ }"); do
    case " $STEPS " in *" $name "*) ;; *) fail "--only '$name' is not a step: use some of ${STEPS// /,}" ;; esac
done
out=${out:-runs/gpu-check-$device}
[ -z "$wheels" ] || [ -d "$wheels" ] || fail "--wheels '$wheels' is not a folder"
if [ -e "$out/summary.md" ]; then fail "--out '$out' holds an earlier check (summary.md): choose another folder"; fi
mkdir -p "$out" || fail "--out '$out' cannot be created"

command -v "$python" >/dev/null || fail "--python '$python' is not an interpreter here"
if [ -n "$wheels" ]; then
    # every wheel there, without resolving the declared dependencies: TLX declares many it never imports
    # (scikit-learn, scikit-image, tensorboardX, requests); a missing import shows in the info step
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --target "$out/site" "$wheels"/*.whl \
        || fail "installing the wheels of $wheels failed (the message above says which)"
    export PYTHONPATH="$out/site${PYTHONPATH:+:$PYTHONPATH}"
fi

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
step() {  # step NAME COMMAND...: run it (within the time box), its output into NAME.log, a line in the summary
    local name=$1; shift
    local began=$SECONDS left=0 code=0
    [ -z "$only" ] || [ "${only#*,"$name",}" != "$only" ] || return 0
    if [ "$time_box" -gt 0 ]; then
        left=$((time_box - SECONDS))
        if [ "$left" -lt 5 ]; then
            status=1
            echo "- $name: skipped (the time box of $time_box s was spent)" >>"$summary.steps"
            return
        fi
    fi
    if [ "$left" -gt 0 ]; then timeout --kill-after=10 "$left" "$@" >"$out/$name.log" 2>&1 || code=$?
    else "$@" >"$out/$name.log" 2>&1 || code=$?
    fi
    if [ "$code" = 0 ]; then
        echo "- $name: ok ($((SECONDS - began)) s)" >>"$summary.steps"
    elif [ "$left" -gt 0 ] && { [ "$code" = 124 ] || [ "$code" = 137 ]; }; then
        status=1
        echo "- $name: STOPPED at the time box ($((SECONDS - began)) s; see $name.log)" >>"$summary.steps"
    else
        status=1
        echo "- $name: FAILED (exit $code, $((SECONDS - began)) s; see $name.log)" >>"$summary.steps"
    fi
}

: >"$summary.steps"
parity() {  # parity PRECISION: L1-L5 of the mlp, recorded under --out/matrix
    step "parity-$1" env TLX_GAN_MATRIX_DIR="$out/matrix" "$python" -m tlx_gan parity --backends torch \
        --device "$device" --precision "$1" --steps "$parity_steps" --batch-size "$parity_batch" \
        --outcome-steps 0 --record
}
bench() {  # bench MODEL PRECISION
    step "bench-$1-$2" env TLX_GAN_MATRIX_DIR="$out/matrix" "$python" -m tlx_gan bench --backends torch \
        --device "$device" --model "$1" --precision "$2" --modes "$modes" --batch-sizes "$bench_batches" \
        --warmup "$warmup" --steps "$bench_steps" --repeats "$bench_repeats" --gemm-size "$gemm" \
        --out "$out/bench-$1-$2" --record
}
# The most telling steps first, so that a time box cuts the least telling ones.
step info "$python" -m tlx_gan info --backend torch --json
parity fp32
bench mlp fp32
if [ "$device" = gpu ]; then  # the data-parallel engine on the GPU: nccl, 2 ranks, each on its own GPU
    gpus=$("$python" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
    if [ "${gpus:-0}" -ge 2 ]; then
        step train-nccl "$python" -m tlx_gan train --backend torch --device gpu --nproc 2 --steps 50 \
            --no-progress --out "$out/train-nccl"
    elif [ -z "$only" ] || [ "${only#*,train-nccl,}" != "$only" ]; then
        echo "- train-nccl: not run (this machine has ${gpus:-0} GPU: nccl needs one per rank)" >>"$summary.steps"
    fi
fi
parity bf16
bench mlp bf16
bench dcgan fp32  # the dcgan's bf16 cells: beyond the 10 minutes of one call
if [ "$device" = gpu ]; then  # TF32 and fp16 are for tensor cores only
    parity tf32
    parity fp16
fi

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
