"""Train on a slice: a PyTorch dataset over an exported slice, and the linear probe behind `slice_finetune`.

`SliceDataset` is imported from `dlk_assets.training.slice_dataset` (torch loads only when it is used).
"""
