"""Converts the authors' saved discriminators (`disc_chosen.pt`, `disc_rejected.pt`, written by
`save_dual_discriminators` in GANPO_trl.py) to the safetensors files `[ganpo] init_from` reads.

    python tools/convert_authors_disc.py disc_ckpts/ [OUT_DIR]

OUT_DIR defaults to the input directory. Keys stay the torch `state_dict` names (parameters and
spectral-norm `weight_u` / `weight_v`); ganpo checks them against `[ganpo.discriminator]` when it
loads them. The one-line equivalent for a single file:

    python -c "import sys,torch,safetensors.torch as s; s.save_file({k: v.contiguous() for k, v in torch.load(sys.argv[1], map_location='cpu').items()}, sys.argv[2])" disc_chosen.pt disc_chosen.safetensors
"""

import os
import sys

import safetensors.torch
import torch


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = sys.argv[1]
    dst = sys.argv[2] if len(sys.argv) == 3 else src
    os.makedirs(dst, exist_ok=True)
    for side in ("chosen", "rejected"):
        path = os.path.join(src, f"disc_{side}.pt")
        state = torch.load(path, map_location="cpu", weights_only=True)
        # FSDP's full state dict can keep the wrapper's prefix; the names ganpo expects have none.
        state = {k.replace("_fsdp_wrapped_module.", ""): v.float().contiguous() for k, v in state.items()}
        out = os.path.join(dst, f"disc_{side}.safetensors")
        safetensors.torch.save_file(state, out)
        print(f"{path} -> {out} ({len(state)} tensors)")


if __name__ == "__main__":
    main()
