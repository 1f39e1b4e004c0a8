"""model: build the tiny random Qwen3-VL (the embedded default) into models/<name>/ from params; its tokenizer
also learns the generated demo set's words (vovnet/tasks/shapes_vqa), which this stage hands down."""

import argparse

import this_checkout  # noqa: F401  (first: this checkout's vovnet, not the editable install's)

from vovnet import cli
from vovnet.config import load_params
from vovnet.model.tiny import build_tiny_model
from vovnet.tasks.shapes_vqa import adapter as shapes_vqa


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="models/tiny-qwen3-vl")
    args = ap.parse_args()
    build_tiny_model(args.out, load_params(args.params)["model"], shapes_vqa.vocabulary())
    return 0


if __name__ == "__main__":
    cli.run(main)
