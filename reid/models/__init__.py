"""Torch ReID networks: OSNet (Zhou et al., ICCV 2019) and ResNet-50 with a BNNeck (Luo et al., CVPRW 2019)."""
