"""Runs every benchmark and prints its table: normalize vs floor, DVC store vs loose files, model steps.

python benchmarks/run_all.py            # full sizes (about 15 minutes on 2 CPUs)
python benchmarks/run_all.py --quick    # small sizes, a smoke run
"""

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    runs = [
        (
            "1. normalize vs floor (MMBench TSV)",
            ["bench_normalize.py", "--sizes", *(["1000"] if args.quick else ["1000", "10000", "50000"])],
        ),
        (
            "1. normalize vs floor (TextVQA parquet)",
            ["bench_normalize.py", "--format", "textvqa", "--sizes", *(["1000"] if args.quick else ["1000", "5000"])],
        ),
        ("2. DVC: image store vs loose files", ["bench_dvc.py", "--images", "5000" if args.quick else "100000"]),
        ("3-5. training step, evaluation, data loader", ["bench_model.py"]),
        ("7. adaptive inference: predict per policy vs evaluation's all-branch pass", ["bench_predict.py"]),
        (
            "7d. image processor: torchvision vs PIL backend",
            ["bench_image_processor.py", "--reps", "5" if args.quick else "20"],
        ),
        ("8. a pipeline with nothing to do: dvc status / repro, download@ checks", ["bench_dvc_noop.py"]),
        (
            "9. prompt order: image_first vs text_first",
            ["bench_prompt_order.py", *(["--reps", "1"] if args.quick else [])],
        ),
    ]
    for title, cmd in runs:
        print(f"\n== {title} ==", flush=True)
        subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]], check=True)


if __name__ == "__main__":
    main()
