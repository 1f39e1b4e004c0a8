"""evaluate@<set>: generate with the trained policy, score with the benchmark's protocol, baselines, Pareto.

Through `python -m vovnet.launch stages/evaluate.py --set NAME` (dvc.yaml): generation is sharded over the
launched processes and the main process scores and writes; the outputs equal one process's."""

import argparse

import this_checkout  # noqa: F401  (first: this checkout's vovnet, not the editable install's)

from vovnet import cli
from vovnet.config import load_params, revalidate
from vovnet.evaluation.core import evaluate_set
from vovnet.evaluation.interfaces import EvalProtocol
from vovnet.registry import get_protocol


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--set", required=True, help="a name under evaluation.sets")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", help="default eval/<set>")
    ap.add_argument("--max_samples", type=int)
    args = ap.parse_args()
    params = load_params(args.params)
    sets = params["evaluation"]["sets"]
    if args.set not in sets:
        raise cli.VovnetError(f"params.yaml: no evaluation set {args.set!r} (have {', '.join(sets) or 'none'})")
    if args.max_samples is not None:
        params["evaluation"]["max_samples"] = args.max_samples
        params = revalidate(params)
    protocol = get_protocol(sets[args.set]["protocol"], EvalProtocol)
    result = evaluate_set(args.set, sets[args.set], params, args.out or f"eval/{args.set}", protocol)
    if result is not None:  # the main process scored and wrote; the others only generated
        print(result["table"])
    return 0


if __name__ == "__main__":
    cli.run(main)
