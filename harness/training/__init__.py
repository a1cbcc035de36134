"""The training engine: in-memory device batches, augmentation, optimisers, the train/eval loop."""
