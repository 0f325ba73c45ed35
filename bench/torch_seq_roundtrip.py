"""The PyTorch half of bench/torch_seq_roundtrip.ts (run that, not this).

    python3 bench/torch_seq_roundtrip.py DIR transformer|lstm|gru

Reads what the Deno half wrote into DIR: chainrule's state dict (chainrule.safetensors), the
data (data.safetensors), chainrule's predictions and losses (chainrule.json). Builds the same
network in PyTorch, loads chainrule's state dict with strict=True, compares the predictions and
the losses of 5 Adam steps from the same weights; then writes a PyTorch-initialized and -trained
network's state dict (torch.safetensors) and its predictions (torch.json) for the Deno half to
load the other way. Needs `apt-get install python3-torch`.
"""
import json
import sys

import numpy as np
import torch

from torch_roundtrip import read_safetensors, write_safetensors

nn = torch.nn
V, T, D = 11, 12, 16


class PositionalEmbedding(nn.Module):
    """chainrule's PositionalEmbedding: a learned [max_length, dim] table added by position."""

    def __init__(self, max_length, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max_length, dim))

    def forward(self, x):
        return x + self.weight[: x.shape[1]]


class Residual(nn.Sequential):
    """chainrule's Residual: x + layers(x), named like an nn.Sequential."""

    def forward(self, x):
        return x + super().forward(x)


class SelfAttention(nn.MultiheadAttention):
    """chainrule's MultiHeadAttention: self-attention, causal when asked."""

    def __init__(self, dim, heads, causal):
        super().__init__(dim, heads, batch_first=True)
        self.causal = causal

    def forward(self, x):
        t = x.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1) if self.causal else None
        return super().forward(x, x, x, attn_mask=mask, need_weights=False)[0]


def network(name):
    if name == "transformer":
        return nn.Sequential(
            nn.Embedding(V, D), PositionalEmbedding(T, D),
            Residual(nn.LayerNorm(D), SelfAttention(D, 4, causal=True)),
            Residual(nn.LayerNorm(D), nn.Linear(D, 4 * D), nn.GELU(), nn.Linear(4 * D, D)),
            nn.LayerNorm(D), nn.Linear(D, V))
    rnn = nn.LSTM(D, 24, batch_first=True) if name == "lstm" else nn.GRU(D, 24, batch_first=True)
    return nn.Sequential(nn.Embedding(V, D), rnn, nn.Linear(24, V))


class Net(nn.Module):
    """Runs network(name), taking only the outputs of a recurrent layer."""

    def __init__(self, name):
        super().__init__()
        self.seq = network(name)

    def forward(self, x):
        for layer in self.seq:
            x = layer(x)
            if isinstance(x, tuple):
                x = x[0]
        return x


def load(net, state):
    return net.seq.load_state_dict(state, strict=True)


def adam_losses(net, x, y, steps, lr):
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-7)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x).reshape(-1, V), y.reshape(-1))
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return losses


def main(folder, name):
    torch.set_num_threads(1)
    data = read_safetensors(f"{folder}/data.safetensors")
    x, y = data["x"].to(torch.int64), data["y"].to(torch.int64)
    ours = json.load(open(f"{folder}/chainrule.json"))

    net = Net(name)
    state = read_safetensors(f"{folder}/chainrule.safetensors")
    result = load(net, state)
    print(f"  chainrule → PyTorch: load_state_dict(strict=True) of {len(state)} tensors: {result}")
    net.eval()
    with torch.no_grad():
        predictions = net(x)
    theirs = np.array(ours["predictions"], dtype=np.float32).reshape(predictions.shape)
    difference = np.abs(predictions.numpy() - theirs).max()
    print(f"    predictions {list(predictions.shape)}: max |PyTorch − chainrule| = {difference:.3g}"
          f" (largest |logit| {np.abs(theirs).max():.3g})")
    net.train()
    losses = adam_losses(net, x, y, 5, 1e-3)
    gaps = [abs(a - b) for a, b in zip(losses, ours["losses"])]
    print("    5 Adam steps from the same weights, losses PyTorch / chainrule: "
          + ", ".join(f"{a:.6f}/{b:.6f}" for a, b in zip(losses, ours["losses"]))
          + f" (max |difference| {max(gaps):.2g})")
    if difference > 1e-4 or max(gaps) > 1e-4:
        sys.exit(f"torch_seq_roundtrip.py: {name} differs")

    torch.manual_seed(1)
    other = Net(name)
    adam_losses(other, x, y, 3, 1e-2)
    other.eval()
    with torch.no_grad():
        predictions = other(x)
    write_safetensors(f"{folder}/torch.safetensors", other.seq.state_dict())
    json.dump({"predictions": predictions.flatten().tolist()}, open(f"{folder}/torch.json", "w"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
