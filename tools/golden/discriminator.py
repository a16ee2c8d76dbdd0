"""Golden fixtures for ganpo's GANPO discriminator, running means and adversarial losses.

The reference is a PyTorch port of the authors' code (github.com/enyijiang/GANPO, GANPO_trl.py):
`TransformerDiscriminator` (with `torch.nn.utils.spectral_norm`), `QuadGANDPOTrainer.compute_loss_disc`
(the six training-mode scores, the running-mean update, the quad relativistic losses) and the
generator term of `compute_loss` (frozen discriminators in eval mode). Two deliberate changes:
`max_seq_len` replaces the literal 2048 in `forward`, and the loss functions accept padding masks
(passed to the discriminator as `mask`, i.e. `src_key_padding_mask` + masked mean) where the authors
pass none; with `mask=None` they are the authors' code path.

Two tiny discriminators (D+ for chosen, D- for rejected) are initialized by the authors' code in
float32 (so every initial value is exact in f32 and f64), then converted to float64 for all
computations. Written to tests/fixtures/ganpo/:
  disc_plus.safetensors, disc_minus.safetensors  initial state_dicts (parameters and the spectral
                                                  norm u/v vectors), PyTorch key names
  golden.safetensors                              inputs, logits, u/v after training-mode forwards,
                                                  scores, running means, losses and gradients
  golden.json                                     versions, seed, shapes, key glossary

Run from the repository root:  python tools/golden/discriminator.py
"""

import copy
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.utils.spectral_norm as spectral_norm
from safetensors.torch import save_file

SEED = 2601
D_IN, WIDTH, DEPTH, HEADS, MAX_POS = 16, 32, 2, 4, 12
BATCH, SEQ = 3, 10
MOMENTUM = 0.9
OUT = os.path.join("tests", "fixtures", "ganpo")
SN_LAYERS = ["project_in", "head.0", "head.2"]

# Padding masks: full, right-padded and left+right-padded rows.
CHOSEN_MASK = [[1] * 10, [1] * 7 + [0] * 3, [0] * 3 + [1] * 5 + [0] * 2]
REJECTED_MASK = [[1] * 4 + [0] * 6, [1] * 10, [0] * 2 + [1] * 8]


class TransformerDiscriminator(nn.Module):
    """The authors' discriminator, with `max_seq_len` in place of their literal 2048 in forward."""

    def __init__(self, input_dim=4096, hidden_dim=512, num_layers=2, num_heads=8, max_seq_len=2048, dropout=0.1):
        super().__init__()
        self.max_seq_len = max_seq_len
        self.project_in = spectral_norm(nn.Linear(input_dim, hidden_dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, max_seq_len, hidden_dim) * 0.02)
        encoder_layer = nn.TransformerEncoderLayer(
            d_model=hidden_dim, nhead=num_heads, dim_feedforward=hidden_dim * 4, dropout=dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(encoder_layer, num_layers=num_layers)
        self.head = nn.Sequential(
            spectral_norm(nn.Linear(hidden_dim, hidden_dim)), nn.GELU(), spectral_norm(nn.Linear(hidden_dim, 1))
        )
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward(self, hidden_states, mask=None):
        _, seq_len, _ = hidden_states.size()
        x = self.project_in(hidden_states)
        if seq_len < self.max_seq_len:
            x = x + self.pos_embedding[:, :seq_len, :]
        else:
            x = x[:, : self.max_seq_len, :] + self.pos_embedding
        src_key_padding_mask = None
        if mask is not None:
            src_key_padding_mask = mask == 0
        x = self.transformer(x, src_key_padding_mask=src_key_padding_mask)
        if mask is not None:
            mask_expanded = mask.unsqueeze(-1).expand_as(x)
            sum_embeddings = torch.sum(x * mask_expanded, dim=1)
            sum_mask = mask.sum(dim=1, keepdim=True).clamp(min=1e-9)
            pooled_output = sum_embeddings / sum_mask
        else:
            pooled_output = x.mean(dim=1)
        return self.head(pooled_output)


MEAN_KEYS = ["plus_policy", "plus_ref_chosen", "plus_ref_rejected",
             "minus_policy", "minus_ref_chosen", "minus_ref_rejected"]


class AuthorsObjective:
    """compute_loss_disc and the generator part of compute_loss, with the six running means."""

    def __init__(self, momentum):
        self.momentum = momentum
        self.means = None
        self.bce = nn.BCEWithLogitsLoss()

    def disc_losses(self, dp, dm, h_policy, h_policy_rejected, h_pos, h_neg, mask_c=None, mask_r=None):
        dp.train()
        dm.train()
        # Call order matters: every training-mode call advances the spectral-norm u/v.
        s_policy = dp(h_policy, mask_c)
        s_pos = dp(h_pos, mask_c)
        s_neg = dp(h_neg, mask_r)
        s_policy_rejected_rej = dm(h_policy_rejected, mask_r)
        s_pos_rej = dm(h_pos, mask_c)
        s_neg_rej = dm(h_neg, mask_r)
        scores = dict(zip(MEAN_KEYS, [s_policy, s_pos, s_neg, s_policy_rejected_rej, s_pos_rej, s_neg_rej]))
        curr = {k: v.mean().detach() for k, v in scores.items()}
        if self.means is None:
            self.means = curr
        else:
            self.means = {k: self.momentum * self.means[k] + (1 - self.momentum) * curr[k] for k in MEAN_KEYS}
        m = self.means
        ones, zeros = torch.ones_like(s_pos), torch.zeros_like(s_pos)
        bce = self.bce
        d_loss_real_policy = bce(s_pos - m["plus_policy"], ones) + bce(s_policy - m["plus_ref_chosen"], zeros)
        d_loss_policy_neg = bce(s_policy - m["plus_ref_rejected"], ones) + bce(s_neg - m["plus_policy"], zeros)
        d_loss_real_policy_rej = (bce(s_neg_rej - m["minus_policy"], ones)
                                  + bce(s_policy_rejected_rej - m["minus_ref_rejected"], zeros))
        d_loss_policy_neg_rej = (bce(s_policy_rejected_rej - m["minus_ref_chosen"], ones)
                                 + bce(s_pos_rej - m["minus_policy"], zeros))
        loss_plus = (d_loss_real_policy + d_loss_policy_neg) / 4.0
        loss_minus = (d_loss_real_policy_rej + d_loss_policy_neg_rej) / 4.0
        return scores, loss_plus, loss_minus

    def gen_loss(self, dp, dm, h_policy, h_policy_rejected, mask_c=None, mask_r=None):
        dp.eval()
        dm.eval()
        for p in list(dp.parameters()) + list(dm.parameters()):
            p.requires_grad_(False)
        s_policy = dp(h_policy, mask_c)
        s_policy_rejected = dm(h_policy_rejected, mask_r)
        ones = torch.ones_like(s_policy)
        loss = (self.bce(s_policy - self.means["plus_ref_chosen"], ones)
                + self.bce(s_policy_rejected - self.means["minus_ref_rejected"], ones)) / 2.0
        for p in list(dp.parameters()) + list(dm.parameters()):
            p.requires_grad_(True)
        return loss


def sn_state(model, prefix):
    return {f"{prefix}.{name}.weight_{uv}": getattr(model.get_submodule(name), f"weight_{uv}").detach().clone()
            for name in SN_LAYERS for uv in "uv"}


def grads(model, prefix):
    return {f"{prefix}.{n}": p.grad.detach().clone() for n, p in model.named_parameters()}


def main():
    torch.manual_seed(SEED)
    dp = TransformerDiscriminator(D_IN, WIDTH, DEPTH, HEADS, MAX_POS, dropout=0.0)
    dm = TransformerDiscriminator(D_IN, WIDTH, DEPTH, HEADS, MAX_POS, dropout=0.0)
    os.makedirs(OUT, exist_ok=True)
    for model, name in [(dp, "disc_plus"), (dm, "disc_minus")]:
        # torch's layout: in_proj_weight is shared by deep copy, everything else drawn per layer.
        layers = model.transformer.layers
        assert torch.equal(layers[0].self_attn.in_proj_weight, layers[1].self_attn.in_proj_weight)
        assert not torch.equal(layers[0].linear1.weight, layers[1].linear1.weight)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(OUT, f"{name}.safetensors"))
    dp, dm = dp.double(), dm.double()
    gen = torch.Generator().manual_seed(SEED)
    g = {}

    def latents():
        return [torch.randn(BATCH, SEQ, D_IN, generator=gen, dtype=torch.float64) for _ in range(4)]

    mask_c = torch.tensor(CHOSEN_MASK, dtype=torch.int64)
    mask_r = torch.tensor(REJECTED_MASK, dtype=torch.int64)
    g["chosen_mask"], g["rejected_mask"] = mask_c, mask_r
    inputs = {1: latents(), 2: latents()}
    for step, xs in inputs.items():
        for key, x in zip(["policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected"], xs):
            g[f"step{step}.{key}"] = x

    # Single forwards of D+ on step 1's policy-chosen latents.
    x = inputs[1][0]
    d = copy.deepcopy(dp).eval()
    g["eval.ones.logits"] = d(x).squeeze(-1).detach()
    g["eval.masked.logits"] = d(x, mask_c).squeeze(-1).detach()
    d = copy.deepcopy(dp).train()
    g["train.ones.logits"] = d(x).squeeze(-1).detach()
    g.update(sn_state(d, "train.ones"))
    g["train.masked.logits"] = d(x, mask_c).squeeze(-1).detach()
    g.update(sn_state(d, "train.masked"))

    # Two discriminator steps (authors' unmasked path, then with padding masks), each followed by the
    # generator loss through the frozen discriminators. No optimizer step: weights stay, u/v and
    # running means move.
    obj = AuthorsObjective(MOMENTUM)
    for step, masks in [(1, (None, None)), (2, (mask_c, mask_r))]:
        dp.zero_grad()
        dm.zero_grad()
        h_pc, h_pr, h_rc, h_rr = inputs[step]
        scores, loss_plus, loss_minus = obj.disc_losses(dp, dm, h_pc, h_pr, h_rc, h_rr, *masks)
        (loss_plus + loss_minus).backward()
        for k, v in scores.items():
            g[f"step{step}.scores.{k}"] = v.squeeze(-1).detach()
            g[f"step{step}.means.{k}"] = obj.means[k].reshape(())
        g[f"step{step}.loss_plus"] = loss_plus.detach()
        g[f"step{step}.loss_minus"] = loss_minus.detach()
        g.update(grads(dp, f"step{step}.grad.plus"))
        g.update(grads(dm, f"step{step}.grad.minus"))
        g.update(sn_state(dp, f"step{step}.plus"))
        g.update(sn_state(dm, f"step{step}.minus"))
        pc = h_pc.clone().requires_grad_(True)
        pr = h_pr.clone().requires_grad_(True)
        loss_g = obj.gen_loss(dp, dm, pc, pr, *masks)
        loss_g.backward()
        g[f"gen{step}.loss"] = loss_g.detach()
        g[f"gen{step}.grad.policy_chosen"] = pc.grad
        g[f"gen{step}.grad.policy_rejected"] = pr.grad

    save_file({k: v.contiguous() for k, v in g.items()}, os.path.join(OUT, "golden.safetensors"))
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump({
            "generator": "tools/golden/discriminator.py",
            "reference": "github.com/enyijiang/GANPO GANPO_trl.py (TransformerDiscriminator, compute_loss_disc, compute_loss)",
            "seed": SEED,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
            "dtype": "initial weights float32 (exact), all computation float64",
            "config": dict(input_dim=D_IN, width=WIDTH, depth=DEPTH, heads=HEADS, max_positions=MAX_POS,
                           dropout=0.0, momentum=MOMENTUM, batch=BATCH, seq=SEQ),
            "keys": {
                "eval.*.logits": "D+ eval-mode logits on step1.policy_chosen; ones = mask None, masked = chosen_mask",
                "train.*": "fresh D+ in training mode: logits and u/v after the ones call, then after the masked call",
                "stepN.scores/means/loss_*": "compute_loss_disc; step1 unmasked, step2 with chosen/rejected masks",
                "stepN.grad.{plus,minus}.<param>": "d(loss_plus + loss_minus)/d param",
                "stepN.{plus,minus}.<sn>.weight_{u,v}": "u/v after the step's six training-mode calls",
                "genN.*": "generator loss after step N (eval mode, frozen) and its gradient w.r.t. the policy latents",
            },
        }, f, indent=1)
    print(f"step2 loss_plus {g['step2.loss_plus']:.6f} loss_minus {g['step2.loss_minus']:.6f} gen2 {g['gen2.loss']:.6f}")


if __name__ == "__main__":
    main()
