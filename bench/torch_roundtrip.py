"""The PyTorch half of bench/torch_roundtrip.ts (run that, not this).

    python3 bench/torch_roundtrip.py DIR

Reads what the Deno half wrote into DIR: chainrule's state dict (chainrule.safetensors), the
data (data.safetensors), chainrule's predictions and losses (chainrule.json). Builds the same
network in PyTorch, loads chainrule's state dict with strict=True, compares the predictions
and the losses of 5 Adam steps from the same weights; then writes a PyTorch-initialized and
-trained network's state dict (torch.safetensors) and its predictions (torch.json) for the
Deno half to load the other way. Needs `apt-get install python3-torch` (no safetensors
package: the format is read and written here by hand).
"""
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(array.copy())
    return out


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name, tensor in tensors.items():
        array = tensor.detach().cpu().numpy()
        raw = array.tobytes()  # row-major, whatever the strides (a 0-d tensor stays shape [])
        header[name] = {"dtype": NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def network():
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(3, stride=2),                                  # 28 → 13, overlapping
        nn.Conv2d(8, 16, (3, 2), padding="same"), nn.ReLU(),        # pads 0 left, 1 right
        nn.AvgPool2d(2, padding=1),                                 # 13 → 7, pads count
        nn.Conv2d(16, 16, 3, stride=2, padding=2, dilation=2, bias=False),  # 7 → 4
        nn.BatchNorm2d(16), nn.ReLU(),
        nn.Flatten(), nn.Linear(256, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))


def adam_losses(net, x, y, steps=5):
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return losses


def main(folder):
    torch.set_num_threads(1)
    data = read_safetensors(f"{folder}/data.safetensors")
    x, y = data["x"], data["y"].to(torch.int64)
    ours = json.load(open(f"{folder}/chainrule.json"))

    # chainrule → PyTorch
    net = network()
    state = read_safetensors(f"{folder}/chainrule.safetensors")
    result = net.load_state_dict(state, strict=True)
    print(f"chainrule → PyTorch: load_state_dict(strict=True) of {len(state)} tensors: {result}")
    net.eval()
    with torch.no_grad():
        predictions = net(x)
    theirs = np.array(ours["predictions"], dtype=np.float32).reshape(predictions.shape)
    difference = np.abs(predictions.numpy() - theirs).max()
    print(f"  predictions {list(predictions.shape)} (eval mode): max |PyTorch − chainrule| = {difference:.3g}"
          f" (largest |logit| {np.abs(theirs).max():.3g})")
    losses = adam_losses(net, x, y)
    print("  5 Adam steps from the same weights (training mode, BatchNorm on batch statistics):")
    for step, (a, b) in enumerate(zip(losses, ours["losses"])):
        print(f"    step {step}: PyTorch {a:.7f}  chainrule {b:.7f}  |difference| {abs(a - b):.2g}")
    after = read_safetensors(f"{folder}/chainrule_after.safetensors")
    gaps = {k: (after[k].double() - v.double()).abs().max().item() for k, v in net.state_dict().items()}
    worst = sorted(gaps.items(), key=lambda kv: -kv[1])
    print(f"  state after the 5 steps, max |PyTorch − chainrule| per tensor, largest first: "
          + ", ".join(f"{k} {v:.2g}" for k, v in worst[:6]) + f", … (all {len(gaps)} tensors)")
    print("    (0.bias and 11.bias feed a BatchNorm, which removes their effect: their gradient is 0"
          " in exact arithmetic, so both sides step on rounding noise, which Adam scales to ±lr;"
          " the running means follow them)")

    # PyTorch → chainrule: a network PyTorch initialized and trained 3 steps.
    torch.manual_seed(1)
    other = network()
    adam_losses(other, x, y, steps=3)
    other.eval()
    with torch.no_grad():
        predictions = other(x)
    write_safetensors(f"{folder}/torch.safetensors", other.state_dict())
    json.dump({"predictions": predictions.flatten().tolist()}, open(f"{folder}/torch.json", "w"))
    dtypes = sorted({str(v.dtype).replace("torch.", "") for v in other.state_dict().values()})
    print(f"PyTorch → chainrule: wrote its state dict ({len(other.state_dict())} tensors, {', '.join(dtypes)}) "
          f"and predictions; torch {torch.__version__}")


if __name__ == "__main__":
    main(sys.argv[1])
