"""train: two-stage VoVNet training (LoRA warm-up, then the value-of-vision policy) -> models/vovnet/.

Through `python -m vovnet.launch stages/train.py` (dvc.yaml): one process directly, more under accelerate
launch (launch.* in params.yaml). Run alone, it is one process.
"""

import argparse

import this_checkout  # noqa: F401  (first: this checkout's vovnet, not the editable install's)

from vovnet import cli
from vovnet.config import load_params, revalidate
from vovnet.io_utils import write_json
from vovnet.training.trainer import train


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--metrics", default="metrics/train.json")
    # how this launch ran (processes, seconds): a log beside the outputs, never hashed into dvc.lock
    ap.add_argument("--launch-log", default="logs/train_launch.json")
    ap.add_argument("--lr", type=float, help="override train.lr")
    ap.add_argument(
        "--config",
        action=cli.refused(
            "there is no configs/*.yaml here; every setting is a key of params.yaml (`python -m vovnet preset "
            "paper`, `dvc exp run -S train.lr=1e-5`), and training runs as `dvc repro train` on every visible GPU"
        ),
    )
    args = ap.parse_args()
    params = load_params(args.params)
    if args.lr is not None:
        params["train"]["lr"] = args.lr
        params = revalidate(params)
    summary, launch_facts = train(params)
    from accelerate import PartialState

    if PartialState().is_main_process:
        write_json(args.metrics, summary)
        write_json(args.launch_log, launch_facts)
        print(f"train: launch {launch_facts}", flush=True)
    return 0


if __name__ == "__main__":
    cli.run(main)
