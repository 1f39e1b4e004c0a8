"""`python -m vovnet preset NAME`, `download-model`, `doctor` and `plan`."""
from __future__ import annotations

import argparse
import sys

from vovnet import VovnetError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vovnet")
    sub = ap.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("preset", help="switch params.yaml to a preset: sample | fast_dev | paper")
    pr.add_argument("name")
    pr.add_argument("--params", default="params.yaml")
    dm = sub.add_parser("download-model", help="snapshot a model (safetensors) from the hub into models/<name>")
    dm.add_argument("repo", help="e.g. Qwen/Qwen3-VL-8B-Instruct")
    dm.add_argument("--revision", help="a commit hash or tag to pin")
    dm.add_argument("--out", required=True, help="e.g. models/qwen3-vl-8b-instruct")
    dr = sub.add_parser("doctor", help="what is missing before a long run")
    dr.add_argument("--params", default="params.yaml")
    pl = sub.add_parser("plan", help="parameters, LoRA matches and per-GPU memory (DDP, ZeRO-2, ZeRO-3), no GPU needed")
    pl.add_argument("--params", default="params.yaml")
    pl.add_argument("--gpus", type=int, default=None, help="GPUs in the run (default: those visible, else 8)")
    pl.add_argument("--gpu-memory", type=float, default=None, help="GiB per GPU (default: the visible GPU's, else 32)")
    pl.add_argument("--dtype", default=None, help="float16 | bfloat16 | float32 (default: model.dtype)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "preset":
            from vovnet.presets import write_preset

            write_preset(args.name, args.params)
            print(f"params.yaml now uses the {args.name} preset; run `dvc repro`")
            return 0
        if args.cmd == "download-model":
            from vovnet.model.download import download_model

            download_model(args.repo, args.out, args.revision)
            print(f"{args.out}: complete; track it with `dvc add {args.out}` and `dvc push`")
            return 0
        if args.cmd == "plan":
            from vovnet.doctor import run_plan

            return run_plan(args.params, args.gpus, args.gpu_memory, args.dtype)
        from vovnet.doctor import run_doctor

        return run_doctor(args.params)
    except VovnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
