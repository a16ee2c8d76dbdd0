"""transformers' `generate` on the prompts `ganpo generate` gets, timed the same way, plus the
machine's memory bandwidth: what tools/bench/generate_side_by_side.sh compares ganpo against.

- model: a GGUF file (transformers dequantizes it to f32, as ganpo does) or a Hugging Face
  directory, f32, eager attention, `torch.set_num_threads(--threads)`;
- prompts: a JSONL file with a `prompt` field per line (what `ganpo generate --prompts` reads),
  encoded with the tokenizer's special tokens as `ganpo generate` encodes plain prompts, left-padded
  in batches of --batch-size in file order;
- decoding: exactly --new-tokens per row (`min_new_tokens = max_new_tokens`, so no row stops at
  EOS), greedy at --temperature 0, else sampling with no top-k/top-p (transformers' default top_k
  of 50 switched off); timed from the first batch's call to the last one's return, prefill
  included, after one untimed warm-up batch;
- bandwidth: the best of five `sum()`s over a 1 GiB f32 tensor with the same threads (read
  bandwidth); the weight-streaming limit of batch-1 decoding is that bandwidth divided by the
  model's f32 parameter bytes (every weight is read once per token; a tied embedding once, by the
  LM head).

    python3 tools/bench/hf_generate.py --model SmolLM2-135M-Instruct.Q4_1.gguf \
        --prompts prompts.jsonl --batch-size 32 --new-tokens 32 --threads 2 --output hf.json

`--write-prompts N FILE` instead writes N prompts, the first ten words of the sentences of the
committed Brown-corpus excerpt (tests/fixtures/study/brown), repeated if N is larger.
Not part of CI.
"""

import argparse
import glob
import json
import os
import platform
import time

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures",
                       "study", "brown")


def write_prompts(n, path):
    """The first ten words of each tagged Brown sentence (`word/tag` tokens), n of them."""
    starts = []
    for name in sorted(glob.glob(os.path.join(FIXTURE, "*"))):
        for line in open(name, encoding="utf-8"):
            words = [tok.rsplit("/", 1)[0] for tok in line.split()]
            words = [w for w in words if w not in ("``", "''")]
            if len(words) >= 12:
                starts.append(" ".join(words[:10]))
    if not starts:
        raise SystemExit(f"no sentences in {FIXTURE}")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"prompt": starts[i % len(starts)]}) + "\n")


def bandwidth_gbs(threads):
    import torch
    torch.set_num_threads(threads)
    x = torch.ones(1 << 28, dtype=torch.float32)  # 1 GiB
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        x.sum().item()
        best = min(best, time.perf_counter() - start)
    return x.numel() * 4 / best / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write-prompts", nargs=2, metavar=("N", "FILE"))
    ap.add_argument("--model")
    ap.add_argument("--prompts")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output")
    args = ap.parse_args()
    if args.write_prompts:
        write_prompts(int(args.write_prompts[0]), args.write_prompts[1])
        return
    if not (args.model and args.prompts):
        ap.error("--model and --prompts are required (or --write-prompts N FILE)")

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.model.endswith(".gguf"):
        where, extra = os.path.dirname(os.path.abspath(args.model)), {"gguf_file": os.path.basename(args.model)}
    else:
        where, extra = args.model, {}
    tok = AutoTokenizer.from_pretrained(where, **extra)
    model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, attn_implementation="eager", **extra)
    model.eval()
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    prompts = [json.loads(line)["prompt"] for line in open(args.prompts, encoding="utf-8") if line.strip()]
    encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    batches = [encoded[i:i + args.batch_size] for i in range(0, len(encoded), args.batch_size)]

    def run(batch, new_tokens):
        inputs = tok.pad({"input_ids": batch}, return_tensors="pt")
        sampling = dict(do_sample=True, temperature=args.temperature, top_k=0, top_p=1.0) \
            if args.temperature > 0 else dict(do_sample=False)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 pad_token_id=tok.pad_token_id, **sampling)
        return (out.shape[1] - inputs["input_ids"].shape[1]) * out.shape[0]

    run(batches[0], 2)
    start = time.perf_counter()
    new = sum(run(b, args.new_tokens) for b in batches)
    seconds = time.perf_counter() - start
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bw = bandwidth_gbs(args.threads)
    report = dict(
        tool="transformers", batch_size=args.batch_size, rows=len(prompts), new_tokens=new,
        prompt_tokens=sum(len(e) for e in encoded), seconds=seconds, tokens_per_s=new / seconds,
        temperature=args.temperature, threads=args.threads, weight_bytes=weight_bytes,
        bandwidth_gbs=bw, streaming_limit_tokens_per_s=bw * 1e9 / weight_bytes,
        versions=dict(torch=torch.__version__, transformers=transformers.__version__,
                      python=platform.python_version()),
    )
    print(json.dumps(report, indent=1))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
