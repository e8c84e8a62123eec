"""Train the demo MLP with PyTorch and save its state_dict as nbops/data/mlp_checkpoint.npz.

    python tools/train_mlp_checkpoint.py [--epochs 30] [--out nbops/data/mlp_checkpoint.npz]

Same model as ``nbops.data.mlp()`` (torch.nn.Sequential of Linear, BatchNorm1d,
ReLU, Dropout, Linear), same synthetic data (``nbops.data.make_dataset``),
trained with Adam and cross-entropy on CPU, deterministically (fixed seeds,
one thread). The file holds ``{k: v.numpy() for k, v in model.state_dict().items()}``.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from nbops import data  # noqa: E402


def torch_mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(data.N_FEATURES, data.HIDDEN),
        torch.nn.BatchNorm1d(data.HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Dropout(data.DROPOUT),
        torch.nn.Linear(data.HIDDEN, data.N_CLASSES),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--out", default=data.CHECKPOINT)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = data.make_dataset(data.N_TRAIN, data.TRAIN_SEED)
    xt, yt = data.make_dataset(data.N_TEST, data.TEST_SEED)
    x, y, xt, yt = map(torch.from_numpy, (x, y, xt, yt))
    model = torch_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            logits = model(xt)
            acc = (logits.argmax(1) == yt).float().mean().item()
            print(f"epoch {epoch + 1:3d}: test loss {loss_fn(logits, yt).item():.4f}, "
                  f"accuracy {acc:.4f}")
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    np.savez(args.out, **state)
    print(f"saved {args.out}: {', '.join(f'{k} {v.shape}' for k, v in state.items())}")


if __name__ == "__main__":
    main()
