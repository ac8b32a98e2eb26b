"""FLOPs of one optimisation step: VGG19's convolutions to block5_conv2, forward and the input gradient.

The weights are frozen, so the backward pass computes only the gradient with respect to each layer's input
(one more conv of the same size per layer), never the weight gradients: a step is about 2 x the forward
MACs x 2 FLOPs. Pools, ReLUs, Grams and the losses are left out (well under 1% at these sizes).
"""

# (input channels, output channels, downsampling before the block) of each conv up to block5_conv2.
CONVS = (
    [(3, 64, 1), (64, 64, 1)]
    + [(64, 128, 2), (128, 128, 2)]
    + [(128, 256, 4)]
    + [(256, 256, 4)] * 3
    + [(256, 512, 8)]
    + [(512, 512, 8)] * 3
    + [(512, 512, 16)] * 2
)


def forward_macs(height: int, width: int) -> int:
    """Multiply-accumulates of the forward pass to block5_conv2 (3x3 kernels, 'same' padding)."""
    return sum((height // down) * (width // down) * 9 * cin * cout for cin, cout, down in CONVS)


def step_flops(height: int, width: int) -> float:
    """FLOPs of one step: forward plus input-gradient backward, 2 FLOPs per MAC."""
    return 2 * 2 * forward_macs(height, width)
