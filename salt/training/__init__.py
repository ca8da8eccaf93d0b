"""Training: the LightningModule, callbacks, and the `train(cfg)` entry point."""
