"""Cross-Entropy, Executed: the library the book's chapters run.

Modules, one idea each:

- :mod:`lib.device`     where tensors live, and seeded random data that is the same everywhere;
- :mod:`lib.display`    printing tensors the same way on every device;
- :mod:`lib.info`       entropy, cross-entropy and KL divergence of distributions;
- :mod:`lib.functional` softmax and the losses, mirroring :mod:`torch.nn.functional`;
- :mod:`lib.memory`     the tensors a computation creates, counted operation by operation;
- :mod:`lib.plots`      the book's figures;
- :mod:`lib.lm`         the z-loss that language models add to cross-entropy;
- :mod:`lib.vocab_parallel` cross-entropy over a vocabulary split across processes (gloo);
- :mod:`lib.imbalance`  the focal loss, multi-class and binary;
- :mod:`lib.calibration` expected calibration error and temperature scaling.
"""

__all__ = ["calibration", "device", "display", "functional", "imbalance", "info", "lm", "memory", "plots",
           "vocab_parallel"]
