"""Checks that a model directory written by ganpo (`save_hf`, a checkpoint's `policy/`, or a run's
`final/`) loads in transformers and gives the logits ganpo gives.

Usage:  python tools/check_saved_model.py MODEL_DIR [EXPECTED_LOGITS_JSON]
Runs ids [5, 9, 17, 33] and prints the greedy next token (compare with
`ganpo generate --model MODEL_DIR --prompt "w5 w9 w17 w33" --max-new-tokens 1` on the tiny fixtures)
and, given a JSON list of ganpo's last-position logits, the relative error against them.
"""

import json
import sys

import torch
import transformers


def main():
    path = sys.argv[1]
    model = transformers.AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    ids = torch.tensor([[5, 9, 17, 33]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1]
    out = {"model_type": model.config.model_type, "vocab": len(tok), "argmax": int(logits.argmax()),
           "logits_head": [round(float(x), 6) for x in logits[:5]]}
    if len(sys.argv) > 2:
        expected = json.load(open(sys.argv[2]))
        err = float((logits - torch.tensor(expected)).abs().max() / torch.tensor(expected).abs().max())
        out["relative_error_vs_ganpo"] = err
    print(json.dumps(out))


if __name__ == "__main__":
    main()
