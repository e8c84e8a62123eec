"""One training step (forward, backward, optimizer step), nbops.nn + nbops.optim
beside the same model in torch.nn + torch.optim (CPU).

``demo_mlp``: the demo's model (``python -m nbops``: Linear(16, 64),
BatchNorm1d, ReLU, Dropout(0.2), Linear(64, 4), CrossEntropyLoss) at batch 256,
where the per-call overhead decides (target: at most 0.5x PyTorch).
``mlp_784``: Linear(784, 1024), BatchNorm1d, ReLU, Dropout(0.2),
Linear(1024, 1024), BatchNorm1d, ReLU, Dropout(0.2), Linear(1024, 10) at batch
512, where the matrix products decide (target: at most 1.0x PyTorch). Both
train in float32 with Adam (lr 1e-3); PyTorch uses its default optimizer path.
"""

import numpy as np

from nbops import nn, optim

from ._common import needs_torch, random_array, torch

MODELS = {"demo_mlp": ((16, 64, 4), 256), "mlp_784": ((784, 1024, 1024, 10), 512)}


def _layers(lib, widths):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        if lib is nn:
            layers.append(nn.Linear(a, b, rng=i))
        else:
            layers.append(lib.Linear(a, b))
        if i < len(widths) - 2:
            layers += [lib.BatchNorm1d(b), lib.ReLU(),
                       nn.Dropout(0.2, rng=i) if lib is nn else lib.Dropout(0.2)]
    return layers


class TrainingStep:
    params = (list(MODELS), ["nbops", "torch"])
    param_names = ["model", "library"]
    timeout = 300

    def setup(self, model, library):
        widths, batch = MODELS[model]
        x = random_array(batch * widths[0], "float32").reshape(batch, widths[0])
        y = np.random.default_rng(1).integers(0, widths[-1], batch)
        if library == "nbops":
            net = nn.Sequential(*_layers(nn, widths))
            crit = nn.CrossEntropyLoss()
            opt = optim.Adam(net.parameters(), lr=1e-3)

            def step():
                opt.zero_grad()
                crit(net(x), y)
                net.backward(crit.backward(), needs_input_grad=False)  # as torch: x is data
                opt.step()
        else:
            needs_torch()
            net = torch.nn.Sequential(*_layers(torch.nn, widths))
            crit = torch.nn.CrossEntropyLoss()
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            x, y = torch.from_numpy(x), torch.from_numpy(y)

            def step():
                opt.zero_grad()
                crit(net(x), y).backward()
                opt.step()
        step()  # compile (or load) every kernel, create the optimizer state
        self.step = step

    def time_step(self, model, library):
        self.step()
