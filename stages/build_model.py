"""model: build the tiny random Qwen3-VL (the embedded default) into models/<name>/ from params."""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vovnet import cli  # noqa: E402
from vovnet.config import load_params  # noqa: E402
from vovnet.model.tiny import build_tiny_model  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="models/tiny-qwen3-vl")
    args = ap.parse_args()
    build_tiny_model(args.out, load_params(args.params)["model"])
    return 0


if __name__ == "__main__":
    cli.run(main)
