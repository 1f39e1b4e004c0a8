"""`python -m vovnet preset NAME`, `schema`, `download-model`, `doctor`, `plan`, `predict`, `exps`, `deps`,
`plots-template` and `demo-report`."""

from __future__ import annotations

import argparse
import sys

from vovnet import VovnetError, actions, cli, prepare


def main(argv=None) -> int:
    if too_old := cli.python_too_old():  # before any command, doctor included, imports what needs 3.11
        print(f"error: {too_old}", file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser(prog="python -m vovnet")
    sub = ap.add_subparsers(dest="cmd", required=True)
    prepare.add_parser(sub)  # the server guide's prepare_all.py (docs/zh/)
    pr = sub.add_parser("preset", help="switch params.yaml to a preset: sample | fast_dev | paper")
    pr.add_argument("name")
    pr.add_argument("--params", default="params.yaml")
    dm = sub.add_parser("download-model", help="snapshot a model (safetensors) from the hub into models/<name>")
    dm.add_argument("repo", help="e.g. Qwen/Qwen3-VL-8B-Instruct")
    dm.add_argument("--revision", help="a commit hash or tag to pin")
    dm.add_argument("--out", required=True, help="e.g. models/qwen3-vl-8b-instruct")
    for cmd, what in (("update", "recheck external sources (dvc repro -f download@...)"), ("pin", "pin hub commits")):
        sp = sub.add_parser(cmd, help=f"{what}; names default to every dataset (update: the external ones)")
        sp.add_argument("names", nargs="*")
        sp.add_argument("--params", default="params.yaml")
    sc = sub.add_parser("schema", help="write the JSON schema of params.yaml (for editors) to params.schema.json")
    sc.add_argument("--out", default="params.schema.json")
    dr = sub.add_parser("doctor", help="what is missing before a long run")
    dr.add_argument("--params", default="params.yaml")
    pl = sub.add_parser("plan", help="parameters, LoRA matches and per-GPU memory (DDP, ZeRO-2, ZeRO-3), no GPU needed")
    pl.add_argument("--params", default="params.yaml")
    pl.add_argument("--gpus", type=int, default=None, help="GPUs in the run (default: those visible, else 8)")
    pl.add_argument("--gpu-memory", type=float, default=None, help="GiB per GPU (default: the visible GPU's, else 32)")
    pl.add_argument("--dtype", default=None, help="float16 | bfloat16 | float32 (default: model.dtype)")
    pl.add_argument("--sm", type=int, default=None, help="compute capability, 70 = V100 (default: the visible GPUs')")
    pd = sub.add_parser("predict", help="answer questions with only the branch the policy chooses")
    pd.add_argument("--model-dir", default="models/vovnet")
    pd.add_argument("--input", required=True, help="JSONL: processed records or {id, question, image, choices?, hint?}")
    pd.add_argument("--output", required=True, help="JSONL answers, in input order (rejects: OUTPUT.rejects.jsonl)")
    pd.add_argument("--policy", default="learned", choices=["learned", *actions.CLI], help="or one action for all")
    pd.add_argument("--cost-shift", type=float, help="default: policy.cost_shift")
    pd.add_argument("--batch-size", type=int, help="default: evaluation.batch_size")
    pd.add_argument("--max-new-tokens", type=int, help="default: evaluation.max_new_tokens")
    pd.add_argument("--image-root", help="where request image paths live (default: the input file's folder)")
    pd.add_argument("--processed-root", default="data/processed", help="image stores of processed records")
    pd.add_argument("--params", default="params.yaml")
    ex = sub.add_parser("exps", help="experiments side by side: changed params, accuracy and vision tokens per set")
    ex.add_argument("--all-commits", action="store_true", help="every commit's experiments, not only HEAD's")
    sub.add_parser("deps", help="the code deps each dvc.yaml stage should list (its static imports), and what differs")
    sub.add_parser("plots-template", help="rewrite .dvc/offline_plots.html, the offline page of `dvc plots show`")
    dp = sub.add_parser("demo-report", help="a demo's figures after `dvc repro`: targets, per-family table, plot")
    dp.add_argument("--set", default="demo", help="the evaluation set that ran: demo | easy_vqa")
    dp.add_argument("--out-dir", default="docs/figures", help="where <set>_report.json and <set>_pareto.svg go")
    dp.add_argument("--shifts", help="the learned curve's cost shifts, comma-separated (default: a sweep -1 to 10)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "preset":
            from vovnet.presets import write_preset

            write_preset(args.name, args.params)
            print(f"params.yaml now uses the {args.name} preset; run `dvc repro`")
            return 0
        if args.cmd == "prepare":
            return prepare.run_prepare(args.mode)
        if args.cmd == "schema":
            from vovnet.config import write_json_schema

            write_json_schema(args.out)
            print(f"wrote {args.out}")
            return 0
        if args.cmd == "download-model":
            from vovnet.model.download import download_model

            commit = download_model(args.repo, args.out, args.revision)
            print(f"{args.out}: complete at commit {commit}; track it with `dvc add {args.out}` and `dvc push`")
            return 0
        if args.cmd in ("update", "pin"):
            from vovnet.sources import run_pin, run_update

            return (run_update if args.cmd == "update" else run_pin)(args.names, args.params)
        if args.cmd == "plan":
            from vovnet.doctor import run_plan

            return run_plan(args.params, args.gpus, args.gpu_memory, args.dtype, sm=args.sm)
        if args.cmd == "predict":
            return _predict(args, sys.argv[1:] if argv is None else list(argv))
        if args.cmd == "plots-template":
            from vovnet.plots_template import write_offline_page

            print(f"wrote {write_offline_page()}")
            return 0
        if args.cmd == "deps":
            from vovnet.deps import run_deps

            return run_deps()
        if args.cmd == "demo-report":
            from vovnet.evaluation.demo_report import DEFAULT_SHIFTS, run_demo_report
            from vovnet.evaluation.interfaces import EvalProtocol
            from vovnet.registry import get_protocol

            protocol = lambda name: get_protocol(name, EvalProtocol)  # noqa: E731  the CLI resolves the plugin
            return run_demo_report(args.set, protocol, args.out_dir, args.shifts or DEFAULT_SHIFTS)
        if args.cmd == "exps":
            from vovnet.experiments import run_exps

            return run_exps(args.all_commits)
        from vovnet.doctor import run_doctor

        return run_doctor(args.params)
    except VovnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, unwritable folder: outputs are written atomically, none is partial
        print(f"error: {exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}", file=sys.stderr)
        return 1


def _predict(args, argv: list[str]) -> int:
    import logging
    import subprocess

    from vovnet.config import load_params
    from vovnet.inference.predict import PredictOptions, predict_file, summary_line
    from vovnet.launch import is_worker, resolve_launch

    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    params = load_params(args.params)
    if not is_worker():  # launch.* as for the heavy stages; predict shards its input itself
        launch = resolve_launch(params["launch"])
        if launch.processes > 1:
            print(f"launch: {launch.describe()}", file=sys.stderr, flush=True)
            return subprocess.call(launch.command(["-m", "vovnet", *argv]), env=launch.env())
    ecfg, pcfg = params["evaluation"], params["policy"]
    opts = PredictOptions(
        policy=args.policy,
        cost_shift=pcfg["cost_shift"] if args.cost_shift is None else args.cost_shift,
        cost_norm=pcfg["cost_norm"],
        batch_size=args.batch_size or ecfg["batch_size"],
        max_new_tokens=args.max_new_tokens or ecfg["max_new_tokens"],
        thinking_max_new_tokens=ecfg["thinking_max_new_tokens"],
    )
    summary = predict_file(args.model_dir, args.input, args.output, params, opts, args.image_root, args.processed_root)
    if summary is not None:
        print(summary_line(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
