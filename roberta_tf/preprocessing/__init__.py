"""Model-input packing: token ids of one or two segments -> `token_ids` and `padding_mask`."""
