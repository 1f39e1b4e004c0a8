"""Run by tests/test_deepspeed.py under `accelerate launch` with a ZeRO-3 config: builds the model exactly as
training does (vovnet.model.factory.build_vovnet) and prints, as one JSON line per rank, the most parameter
bytes this rank held at any moment the loader gathered a module, next to its share and the largest module.

The observation points are transformers' ZeRO-3 loader (which receives the model) and DeepSpeed's
GatheredParameters (every un-partitioning goes through it); both are wrapped here, from outside."""

import json
import sys

import deepspeed
import torch
from transformers import modeling_utils

from vovnet.config import load_params
from vovnet.launch import process_state
from vovnet.model.factory import build_vovnet

seen = {"model": None, "peak": 0}


def bytes_held(model) -> int:
    """A parameter's whole data where it is gathered (or never partitioned), plus its ZeRO-3 partition."""
    total = 0
    for p in model.parameters():
        total += p.data.numel() * p.element_size()
        part = getattr(p, "ds_tensor", None)
        total += 0 if part is None else part.numel() * part.element_size()
    return total


def observe_loader():
    load = modeling_utils._load_state_dict_into_zero3_model
    enter = deepspeed.zero.GatheredParameters.__enter__

    def loading(model_to_load, *args, **kwargs):
        seen["model"] = model_to_load
        return load(model_to_load, *args, **kwargs)

    def entered(self):
        out = enter(self)
        if seen["model"] is not None:
            seen["peak"] = max(seen["peak"], bytes_held(seen["model"]))
        return out

    modeling_utils._load_state_dict_into_zero3_model = loading
    deepspeed.zero.GatheredParameters.__enter__ = entered


def main() -> None:
    state = process_state()
    from accelerate import Accelerator

    accelerator = Accelerator(mixed_precision="bf16")
    params = load_params(sys.argv[1] if len(sys.argv) > 1 else "params.yaml")
    params["model"]["dtype"] = "bfloat16"
    observe_loader()
    model, _ = build_vovnet(params, device=accelerator.device)
    base = seen["model"]
    partitioned = [p for p in base.parameters() if hasattr(p, "ds_tensor")]
    elsize = torch.tensor([], dtype=torch.bfloat16).element_size()
    largest = max(
        sum(p.ds_numel for p in m.parameters(recurse=False) if hasattr(p, "ds_tensor")) for m in base.modules()
    )
    print(
        json.dumps(
            {
                "rank": state.process_index,
                "peak_bytes": seen["peak"],
                "share_bytes": sum(p.ds_tensor.numel() * p.ds_tensor.element_size() for p in partitioned),
                "whole_bytes": sum(p.ds_numel for p in partitioned) * elsize,
                "largest_module_bytes": largest * elsize,
                "partitioned": len(partitioned),
                "parameters": sum(1 for _ in base.parameters()),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
