"""``python -m nbops``: run a classifier with nbops, or train it from scratch, no PyTorch needed.

The default demo builds an MLP with ``nbops.nn`` (Linear, BatchNorm1d, ReLU,
Dropout, Linear, scored with CrossEntropyLoss), loads the checkpoint shipped
in the package (a PyTorch ``state_dict`` saved as NumPy arrays by
``tools/train_mlp_checkpoint.py``), classifies held-out synthetic data
generated from a seed (nothing is downloaded), prints the loss and accuracy,
and times each op in nbops, NumPy and (when installed) PyTorch.

``python -m nbops train`` trains the same MLP from scratch with ``nbops.nn``
and ``nbops.optim`` (Adam, a cosine learning-rate schedule, the loop a PyTorch
user writes), with a progress bar, saves its ``state_dict`` to ``--out``
(``python -m nbops --checkpoint FILE`` then evaluates it, and
``torch.nn`` modules load it), and with ``--plot FILE.png`` draws the loss
and accuracy curves (needs matplotlib).

``--tour`` shows the older tour instead: every activation on a sample array,
the ops inside a user's ``@njit`` function, and a speed comparison with NumPy.

The first run in a fresh install compiles the kernels it uses (a few seconds
per op; cached on disk afterwards, so later runs take about a second).
"""

import argparse
import importlib.util
import os
import time

import numpy as np

import nbops

SAMPLE = np.array([-3.0, -1.0, -0.1, 0.0, 0.1, 1.0, 3.0, np.inf, np.nan], dtype=np.float32)

# nbops op -> NumPy one-liner computing the same thing (the baseline to beat)
NUMPY_EQUIVALENTS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softplus": lambda x: np.logaddexp(x, 0),
    "logsigmoid": lambda x: -np.logaddexp(-x, 0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
}


def _best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _per_call(fn, repeat, budget=0.002):
    """Best-of-``repeat`` time of one call, looping enough calls to fill ``budget`` s."""
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    number = max(1, min(10_000, int(budget / max(once, 1e-7))))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


# ---------------------------------------------------------------------------
# the tour (``--tour``)
# ---------------------------------------------------------------------------

def show_activations():
    print(f"input: {SAMPLE}")
    print("(float32 in, float32 out; NaN and inf follow PyTorch)\n")
    from nbops._ops import table

    for entry in table.elementwise_entries():  # every activation of the op table
        name = entry.name
        if name == "prelu":
            y = entry.function(SAMPLE, np.array([0.25], dtype=np.float32))
        else:  # the required arguments (threshold's) take the table's examples
            y = entry.function(SAMPLE, *entry.required_args())
        print(f"  {name:<11} {np.array2string(y, precision=3, max_line_width=200)}")


def show_njit():
    from numba import njit

    @njit
    def two_layer(x):  # nbops ops called by name inside user code
        return nbops.tanh(nbops.leaky_relu(x, 0.1))

    print("\ninside @njit: tanh(leaky_relu(x, 0.1)) =",
          np.array2string(two_layer(SAMPLE[:7]), precision=3))


def show_speed(size, repeat):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(size).astype(np.float32)
    print(f"\nspeed on {size:,} float32 elements (best of {repeat}):")
    print(f"  {'op':<11} {'nbops ms':>9} {'NumPy ms':>9} {'speed-up':>9}")
    for name, np_fn in NUMPY_EQUIVALENTS.items():
        fn = getattr(nbops, name)
        fn(x)  # compile or load from the cache
        # the lambdas are timed and dropped inside this iteration
        t_nb = _best_time(lambda: fn(x), repeat)  # noqa: B023
        t_np = _best_time(lambda: np_fn(x), repeat)  # noqa: B023
        print(f"  {name:<11} {t_nb * 1e3:9.2f} {t_np * 1e3:9.2f} {t_np / t_nb:8.1f}x")


def tour(args):
    show_activations()
    show_njit()
    if not args.no_timing:
        show_speed(args.size, args.repeat)


# ---------------------------------------------------------------------------
# the MLP demo (default)
# ---------------------------------------------------------------------------

def _numpy_ops(state, eps=1e-5):
    """The same eval-mode model written as plain NumPy, op by op."""
    w0, b0 = state["0.weight"], state["0.bias"]
    scale = state["1.weight"] / np.sqrt(state["1.running_var"] + np.float32(eps))
    g, b, rm = scale, state["1.bias"], state["1.running_mean"]
    w4, b4 = state["4.weight"], state["4.bias"]

    def cross_entropy(z, y):
        m = z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
        return (lse - z[np.arange(len(y)), y]).mean()

    return {
        "linear 1": lambda x: x @ w0.T + b0,
        "batch_norm": lambda h: (h - rm) * g + b,
        "relu": lambda h: np.maximum(h, 0),
        "linear 2": lambda h: h @ w4.T + b4,
        "cross_entropy": cross_entropy,
    }


def _torch_parts(state):
    """(torch module, per-op callables) for the PyTorch column, or None."""
    import torch
    import torch.nn.functional as F

    from nbops import data
    model = torch.nn.Sequential(
        torch.nn.Linear(data.N_FEATURES, data.HIDDEN), torch.nn.BatchNorm1d(data.HIDDEN),
        torch.nn.ReLU(), torch.nn.Dropout(data.DROPOUT),
        torch.nn.Linear(data.HIDDEN, data.N_CLASSES))
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    model.eval()
    m = list(model)
    ops = {
        "linear 1": lambda x: F.linear(x, m[0].weight, m[0].bias),
        "batch_norm": lambda h: F.batch_norm(h, m[1].running_mean, m[1].running_var,
                                             m[1].weight, m[1].bias, False, 0.1, m[1].eps),
        "relu": F.relu,
        "linear 2": lambda h: F.linear(h, m[4].weight, m[4].bias),
        "cross_entropy": F.cross_entropy,
    }
    return torch, model, ops


def _timing_table(model, loss_fn, x, y, repeat, use_torch):
    from nbops import data
    layers = list(model)
    nb_ops = {
        "linear 1": layers[0], "batch_norm": layers[1], "relu": layers[2],
        "linear 2": layers[4], "cross_entropy": loss_fn,
    }
    state = model.state_dict()
    np_ops = _numpy_ops(state, layers[1].eps)
    # inputs of each op, computed once by nbops
    h0 = layers[0](x)
    h1 = layers[1](h0)
    h2 = layers[2](h1)
    z = layers[4](h2)
    inputs = {"linear 1": (x,), "batch_norm": (h0,), "relu": (h1,), "linear 2": (h2,),
              "cross_entropy": (z, y)}

    def np_model():
        h = x
        for name in ("linear 1", "batch_norm", "relu", "linear 2"):
            h = np_ops[name](h)
        return np_ops["cross_entropy"](h, y)

    rows = [(name, lambda f=nb_ops[name], a=inputs[name]: f(*a),
             lambda f=np_ops[name], a=inputs[name]: f(*a)) for name in nb_ops]
    rows.append(("whole model", lambda: loss_fn(model(x), y), np_model))

    torch_rows = None
    if use_torch:
        torch, tmodel, t_ops = _torch_parts(state)
        t_in = {k: tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in v)
                for k, v in inputs.items()}
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def t_model():
            return torch.nn.functional.cross_entropy(tmodel(tx), ty)
        torch_rows = [lambda f=t_ops[name], a=t_in[name]: f(*a) for name in t_ops]
        torch_rows.append(t_model)
        torch.set_grad_enabled(False)
        with np.errstate(all="ignore"):
            diff = float(np.max(np.abs(tmodel(tx).numpy() - model(x))))
        print(f"PyTorch {torch.__version__} on the same checkpoint: max |logits difference| "
              f"= {diff:.2e}")

    print(f"\nper-op time on a batch of {len(x):,} x {data.N_FEATURES} float32 "
          f"(eval mode, best of {repeat}, microseconds per call):")
    head = f"  {'op':<14} {'nbops':>10} {'NumPy':>10}"
    if torch_rows:
        head += f" {'PyTorch':>10}"
    print(head)
    # One library at a time, with a pause between: each keeps its own pool of
    # threads spinning for a while after a multi-threaded call (OpenBLAS's about
    # 0.1 s after NumPy's matrix products), which stalls the next multi-threaded
    # call of another library (docs/guides/performance.rst, "linear").
    columns = [[nb for _, nb, _ in rows], [npf for _, _, npf in rows]]
    if torch_rows:
        columns.append(torch_rows)
    times = []
    for fns in columns:
        time.sleep(0.3)
        times.append([_per_call(fn, repeat) for fn in fns])
    for i, (name, _, _) in enumerate(rows):
        print(f"  {name:<14}" + "".join(f" {t[i] * 1e6:10.1f}" for t in times))
    print("  (nbops runs the module objects; NumPy is the same maths as one-liners; "
          "Dropout is the identity in eval mode)")


@nbops.no_grad()  # evaluation: the modules keep nothing for a backward
def mlp_demo(args):
    from nbops import data, nn

    model = data.mlp(rng=0)
    loss_fn = nn.CrossEntropyLoss()
    state = data.load_checkpoint(args.checkpoint or data.CHECKPOINT)
    result = model.load_state_dict(state)
    model.eval()
    print(f"model (PyTorch's module names and keys, NumPy arrays inside):\n{model}\n")
    print(f"loaded {os.path.basename(args.checkpoint or data.CHECKPOINT)} "
          f"({sum(p.size for p in model.parameters()):,} parameters): {result}")

    x, y = data.make_dataset(args.samples, args.seed)
    t0 = time.perf_counter()
    logits = model(x)
    loss = loss_fn(logits, y)
    first = time.perf_counter() - t0
    acc = float(np.mean(np.argmax(logits, axis=1) == y))
    print(f"\neval on {len(x):,} synthetic samples (seed {args.seed}, {data.N_CLASSES} classes): "
          f"loss {float(loss):.4f}, accuracy {acc:.2%}")
    print(f"  (first forward pass: {first:.2f} s, including kernel compilation or cache load)")
    ref = x
    for fn in list(_numpy_ops(model.state_dict(), model[1].eps).values())[:4]:
        ref = fn(ref)
    print(f"  max |nbops - NumPy| on the logits: {float(np.max(np.abs(logits - ref))):.2e}")

    if args.no_timing:
        return
    use_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    if args.batch != len(x):
        x, y = data.make_dataset(args.batch, args.seed)
    if use_torch:
        print()
    _timing_table(model, loss_fn, x, y, args.repeat, use_torch)
    if not use_torch and not args.no_torch:
        print("  (PyTorch is not installed: no PyTorch column)")


# ---------------------------------------------------------------------------
# the training demo (``train``)
# ---------------------------------------------------------------------------

def _progress(epoch, epochs, step, steps, loss, acc, rate, width=24):
    """One progress-bar line: epoch, bar, running loss and accuracy, samples per second."""
    done = int(width * step / steps)
    return (f"epoch {epoch:>3}/{epochs} [{'#' * done}{'.' * (width - done)}] "
            f"loss {loss:.4f}  acc {acc:6.2%}  {rate:>9,.0f} samples/s")


def _evaluate(model, loss_fn, x, y):
    with nbops.no_grad():
        model.eval()
        logits = model(x)
        loss = float(loss_fn(logits, y))
        model.train()
    return loss, float(np.mean(np.argmax(logits, axis=1) == y))


def train(args):
    """Train the demo MLP from scratch with nbops.nn and nbops.optim (no PyTorch)."""
    import sys

    from nbops import data, nn, optim

    x, y = data.make_dataset(data.N_TRAIN, data.TRAIN_SEED)
    xt, yt = data.make_dataset(data.N_TEST, data.TEST_SEED)
    model = data.mlp(rng=args.init_seed)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=args.lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    order = np.random.default_rng(args.init_seed)
    steps = -(-len(x) // args.batch)
    live = sys.stdout.isatty()
    print(f"training {type(model).__name__} ({sum(p.size for p in model.parameters()):,} "
          f"parameters) on {len(x):,} synthetic samples: Adam lr {args.lr}, cosine schedule, "
          f"batch {args.batch}, {args.epochs} epochs")
    history = []
    t_start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = order.permutation(len(x))
        total = correct = seen = 0.0
        t0 = time.perf_counter()
        for step in range(steps):
            idx = perm[step * args.batch:(step + 1) * args.batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            model.backward(loss_fn.backward(), needs_input_grad=False)  # x is data
            opt.step()
            total += float(loss) * len(idx)
            correct += float(np.sum(np.argmax(logits, axis=1) == yb))
            seen += len(idx)
            if live and (step % 8 == 0 or step == steps - 1):
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                print("\r" + _progress(epoch, args.epochs, step + 1, steps, total / seen,
                                        correct / seen, rate), end="", flush=True)
        sched.step()
        rate = seen / max(time.perf_counter() - t0, 1e-9)
        test_loss, test_acc = _evaluate(model, loss_fn, xt, yt)
        history.append((epoch, total / seen, correct / seen, test_loss, test_acc))
        line = _progress(epoch, args.epochs, steps, steps, total / seen, correct / seen, rate)
        print(("\r" if live else "") + line + f" | test loss {test_loss:.4f} acc {test_acc:6.2%}")
    elapsed = time.perf_counter() - t_start
    print(f"\ntrained in {elapsed:.2f} s (the first epoch includes compiling or loading "
          f"the kernels): test loss {history[-1][3]:.4f}, accuracy {history[-1][4]:.2%}")
    state = model.state_dict()
    np.savez(args.out, **{k: np.asarray(v) for k, v in state.items()})
    print(f"saved {args.out}; evaluate it with: python -m nbops --checkpoint {args.out}")
    if args.plot:
        _plot(history, args.plot)


def _plot(history, path):
    try:
        import matplotlib
    except ImportError:
        print("--plot needs matplotlib (pip install matplotlib): no plot drawn")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epoch, train_loss, train_acc, test_loss, test_acc = map(list, zip(*history, strict=True))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epoch, train_loss, label="train")
    ax1.plot(epoch, test_loss, label="test")
    ax1.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log")
    ax2.plot(epoch, train_acc, label="train")
    ax2.plot(epoch, test_acc, label="test")
    ax2.set(xlabel="epoch", ylabel="accuracy")
    for ax in (ax1, ax2):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("nbops: the demo MLP trained from scratch")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"saved the loss and accuracy curves to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m nbops", description=__doc__.split("\n\n", 1)[1].split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=("eval", "train"), default="eval",
                        help="eval (default): run a trained checkpoint; train: train the "
                             "demo MLP from scratch with nbops.optim, save its checkpoint")
    parser.add_argument("--checkpoint", default=None,
                        help="eval: the checkpoint to run (a state_dict saved with np.savez; "
                             "default: the one shipped in the package, trained by PyTorch)")
    parser.add_argument("--epochs", type=int, default=30, help="train: epochs (default 30)")
    parser.add_argument("--lr", type=float, default=1e-2,
                        help="train: Adam's learning rate (default 1e-2)")
    parser.add_argument("--train-batch", type=int, default=128,
                        help="train: batch size (default 128)")
    parser.add_argument("--init-seed", type=int, default=0,
                        help="train: seed of the initial weights and the batch order")
    parser.add_argument("--out", default="mlp_trained.npz",
                        help="train: where to save the trained state_dict "
                             "(default mlp_trained.npz)")
    parser.add_argument("--plot", default=None, metavar="FILE.png",
                        help="train: draw the loss and accuracy curves (needs matplotlib)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the synthetic evaluation samples (default: the held-out "
                             "test seed; the task itself is fixed)")
    parser.add_argument("--samples", type=int, default=None,
                        help="number of evaluation samples (default 2000)")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size of the timing table (default: --samples)")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (default 5)")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing table")
    parser.add_argument("--no-torch", action="store_true",
                        help="leave PyTorch out of the table even if it is installed "
                             "(it is imported only for the table)")
    parser.add_argument("--tour", action="store_true",
                        help="show the activation tour instead of the MLP demo")
    parser.add_argument("--size", type=int, default=1_000_000,
                        help="--tour: elements in the speed comparison (default 1e6)")
    args = parser.parse_args(argv)
    from nbops import data
    if args.seed is None:
        args.seed = data.TEST_SEED
    if args.samples is None:
        args.samples = data.N_TEST
    if args.batch is None:
        args.batch = args.samples
    for name in ("samples", "batch", "repeat", "size", "epochs", "train_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    print(f"nbops {nbops.__version__}: PyTorch's NN ops as Numba kernels\n")
    if args.tour:
        tour(args)
    elif args.command == "train":
        args.batch = args.train_batch
        train(args)
    else:
        mlp_demo(args)


if __name__ == "__main__":
    main()
