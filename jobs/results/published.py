"""Figures published by the seed guide, with their basis, for side-by-side reading in reports."""

# Images/s per card at each batch size (seed section 7.1, ais_infer "throughput" = compute only).
# The Ascend 310 card carries 4 chips; the 310P and T4 figures are per card.
THROUGHPUT = {
    "Ascend 310 (card, 4 chips)": {1: 1348.024, 4: 2233.9991, 8: 2463.9302, 16: 2624.8900, 32: 2689.0490},
    "Ascend 310P (card)": {1: 1502.4291, 4: 2317.6152, 8: 3739.9555, 16: 3438.7936, 32: 3020.9916},
    "NVIDIA T4 (card)": {1: 219.2172, 4: 701.0072, 8: 1032.52, 16: 924.992, 32: 447.872},
}
